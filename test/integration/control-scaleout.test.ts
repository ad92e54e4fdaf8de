import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createLogger } from '../../helper/core/log.js';
import { ControlClient, type ControlClientEvents } from '../../helper/controlclient/client.js';
import type { MemberAnnouncement } from '../../helper/gen/lanrage/control/v1/control.js';
import { havePostgres, TestPostgres } from '../lib/postgres.js';
import { requireOrSkip } from '../lib/repo.js';
import { runControlExpectingExit, startControlProcess, type ControlProcess } from '../lib/control-process.js';
import { nextEvent } from '../lib/control-events.js';
import { eventually } from '../lib/wait.js';

// Two real `lanrage control` processes on one PostgreSQL database serve one party: members on
// different instances hear each other, a member whose instance is killed moves to the other
// one and stays in the party, announcements made on one instance reach members on the others
// (also an instance started later), and a database restart under load loses no membership.

const log = createLogger({ test: 'control-scaleout' }, process.env.LANRAGE_TEST_LOG ? undefined : () => {});
const NEED = 'PostgreSQL server (Debian package postgresql) and root';
let db: TestPostgres | undefined;
const procs: ControlProcess[] = [];
const clients: ControlClient[] = [];
after(async () => {
  for (const c of clients) await c.close();
  for (const p of procs) await p.stop('SIGKILL');
  await db?.destroy();
});

async function control(): Promise<ControlProcess> {
  const p = await startControlProcess(['--db', db!.url()]);
  procs.push(p);
  return p;
}

async function member(name: string, url: string, fallback: string[]): Promise<ControlClient> {
  const c = await ControlClient.connect({
    url,
    fallbackUrls: fallback,
    identity: generateKeyPairSync('ed25519').privateKey,
    name,
    wgPublicKey: randomBytes(32).toString('base64'),
    discoPublicKey: randomBytes(32).toString('base64'),
    log,
    backoff: { initialMs: 100, maxMs: 500 },
    callTimeoutMs: 8000,
  });
  clients.push(c);
  return c;
}

const next = <K extends keyof ControlClientEvents>(c: ControlClient, name: K, pred?: (...args: ControlClientEvents[K]) => boolean, ms = 10_000): Promise<ControlClientEvents[K]> => nextEvent(c, name, pred, ms);

const until = eventually;

test('a bad or unreachable --db URL: lanrage control says what is wrong and exits non-zero', async (t) => {
  const bad = await runControlExpectingExit(['--db', 'mysql://root@127.0.0.1/x']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--db must be a postgres:\/\//);
  if (!requireOrSkip(havePostgres(), NEED, t)) return;
  const down = await runControlExpectingExit(['--db', 'postgres://lanrage:s3cret@127.0.0.1:1/lanrage']);
  assert.notEqual(down.code, 0);
  assert.match(down.stderr, /cannot use the PostgreSQL database postgres:\/\/lanrage:\*\*\*@127\.0\.0\.1:1\/lanrage: .*ECONNREFUSED.*check --db/);
  assert.doesNotMatch(down.stderr, /s3cret/);
});

test('two control instances on one database serve one party; a member survives its instance dying; a database restart loses nobody', async (t) => {
  if (!requireOrSkip(havePostgres(), NEED, t)) return;
  try {
    await scaleOut(t);
  } catch (err) {
    for (const p of procs) process.stderr.write(`--- control ${p.pid} log:\n${p.log().slice(-6000)}\n`);
    throw err;
  }
});

async function scaleOut(t: { diagnostic(msg: string): void }): Promise<void> {
  db ??= await TestPostgres.start();
  const a = await control();
  const b = await control();

  const alice = await member('Alice', a.url, [b.url]);
  const bob = await member('Bob', b.url, [a.url]);
  const { party, inviteSecret } = await alice.createParty('LAN night');

  // Bob, on instance B, joins the party Alice made on A: both see it.
  const aliceSeesBob = next(alice, 'member', (m, change) => m.deviceId === bob.deviceId && change === 'joined');
  const joined = await bob.joinParty(party.id, inviteSecret);
  assert.deepEqual(joined.members.map((m) => m.name).sort(), ['Alice', 'Bob']);
  await aliceSeesBob;

  // Endpoint updates cross instances both ways.
  const bobSeesAliceEp = next(bob, 'member', (m) => m.deviceId === alice.deviceId && m.candidates.includes('203.0.113.10:41641'));
  await alice.updateEndpoints(['203.0.113.10:41641']);
  await bobSeesAliceEp;
  const aliceSeesBobEp = next(alice, 'member', (m) => m.deviceId === bob.deviceId && m.candidates.includes('203.0.113.20:41641'));
  await bob.updateEndpoints(['203.0.113.20:41641']);
  await aliceSeesBobEp;

  // Call-me-maybe from B to a member held by A.
  const cmm = next(alice, 'callMeMaybe', (m) => m.fromDeviceId === bob.deviceId);
  assert.equal(await bob.callMeMaybe(alice.deviceId, ['203.0.113.20:41641']), true, 'delivered: Alice is online on the other instance');
  assert.deepEqual((await cmm)[0].candidates, ['203.0.113.20:41641']);

  // Announcements (party-wide game discovery ports, hosted servers) from A reach B's members.
  const game = { udpPorts: [27015], multicastGroups: ['239.255.1.1:4445'], servers: [], gameProfileIds: ['openarena'] };
  const hasGame = (list: MemberAnnouncement[]): boolean => list.some((x) => x.deviceId === alice.deviceId && x.announcement?.udpPorts.includes(27015) === true && x.announcement.gameProfileIds.includes('openarena'));
  const bobHearsGame = next(bob, 'announcements', (list) => hasGame(list));
  await alice.announce(game);
  await bobHearsGame;

  // Instance A dies (SIGKILL by PID): Alice reconnects to B and is still in the party.
  const bobLeft: string[] = [];
  bob.on('memberLeft', (l) => bobLeft.push(l.deviceId));
  const back = next(alice, 'reconnected', () => true, 20_000);
  // B's snapshot for Alice already holds what she announced on A (B kept it from the bus).
  const bSnapshotHasGame = next(alice, 'announcements', (list, replace) => replace && hasGame(list), 20_000);
  process.kill(a.pid, 'SIGKILL');
  await a.exited;
  await back;
  await bSnapshotHasGame;
  assert.equal(alice.url, b.url, 'Alice moved to instance B');
  assert.deepEqual(alice.party()?.members.map((m) => m.name).sort(), ['Alice', 'Bob']);
  const bobSeesAliceAgain = next(bob, 'member', (m) => m.deviceId === alice.deviceId && m.candidates.includes('203.0.113.11:41641'));
  await alice.updateEndpoints(['203.0.113.11:41641']);
  await bobSeesAliceAgain;
  assert.deepEqual(bobLeft, [], 'Bob never saw Alice leave');

  // A fresh instance C joins the pool; more members on both B and C, under load, while the
  // database restarts.
  const c = await control();
  // C started after Alice announced: it learns what B holds in memory when they meet on the bus.
  await until('C heard from B', () => /another control instance is up/.test(c.log()));
  await new Promise((r) => setTimeout(r, 500));
  const crowd: ControlClient[] = [];
  for (let i = 0; i < 8; i++) {
    const m = await member(`Crowd${i}`, i % 2 ? b.url : c.url, [i % 2 ? c.url : b.url]);
    const seesGame = next(m, 'announcements', (list, replace) => replace && hasGame(list));
    await m.joinParty(party.id, inviteSecret);
    await seesGame; // in the snapshot of its join, whether it is on B or on C
    crowd.push(m);
  }
  const everyone = [alice, bob, ...crowd];
  await until('everyone sees 10 members', () => everyone.every((m) => m.party()?.members.length === 10));

  let stop = false;
  let updates = 0;
  let failures = 0;
  const load = Promise.all(
    everyone.map(async (m, i) => {
      for (let k = 0; !stop; k++) {
        try {
          await m.updateEndpoints([`203.0.113.${30 + i}:${10000 + (k % 1000)}`]);
          updates++;
        } catch {
          failures++;
          await new Promise((r) => setTimeout(r, 200));
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }),
  );
  await until('load running', () => updates > 50);
  const resynced = everyone.map((m) => next(m, 'snapshot', (p) => p?.id === party.id, 30_000));
  await db.stopServer();
  await new Promise((r) => setTimeout(r, 1500));
  await db.startServer();
  await Promise.all(resynced);
  const before = updates;
  await until('updates flow again after the restart', () => updates > before + 50, 20_000);
  stop = true;
  await load;
  t.diagnostic(`updates: ${updates}, failed while the database was down: ${failures}`);

  const rows = await db.query<{ n: string }>('SELECT count(*) AS n FROM members WHERE party_id = $1', [party.id]);
  assert.equal(Number(rows[0]!.n), 10, 'no membership lost in the database');
  for (const m of everyone) assert.equal(m.party()?.members.length, 10, `${m.party()?.members.find((x) => x.isSelf)?.name} still sees the whole party`);
  // The last endpoints each member sent are what the others see (nothing stale after resync).
  const last = everyone.map((m) => m.party()!.members.find((x) => x.isSelf)!.deviceId);
  await until('endpoints converge', async () => {
    const dev = await db!.query<{ id: string; candidates: string }>('SELECT id, candidates FROM devices WHERE id = ANY($1)', [last]);
    const want = new Map(dev.map((r) => [r.id, JSON.parse(r.candidates) as string[]]));
    return everyone.every((m) => m.party()!.members.every((x) => JSON.stringify(x.candidates) === JSON.stringify(want.get(x.deviceId))));
  });
}
