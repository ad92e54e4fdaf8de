import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { PartyServiceClient, MemberPresence, type Party } from '../../helper/gen/lanrage/v1/party.js';
import { PeerServiceClient, type Peer } from '../../helper/gen/lanrage/v1/peer.js';
import { formatInviteLink, parseInviteLink } from '../../helper/controlclient/invite.js';
import { havePostgres, TestPostgres } from '../lib/postgres.js';
import { requireOrSkip } from '../lib/repo.js';
import { startControlProcess, type ControlProcess } from '../lib/control-process.js';
import { startHelper, removeStateDir, type HelperProcess } from '../lib/helper-process.js';
import { eventually } from '../lib/wait.js';

// Real helpers told two instances of one control service (`--control-url A,B`, and the invite
// link's alternates) on one PostgreSQL: when instance A is killed, the helper that was on A moves
// to B and its user sees nothing change — the party, its peers, and a member who joins later.

const NEED = 'PostgreSQL server (Debian package postgresql) and root (parties create WireGuard interfaces)';
let db: TestPostgres | undefined;
const procs: ControlProcess[] = [];
const helpers: HelperProcess[] = [];
const clients: { close(): void }[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const h of helpers) {
    await h.stop();
    removeStateDir(h.stateDir);
  }
  for (const p of procs) await p.stop('SIGKILL');
  await db?.destroy();
});

const call = <T>(fn: (cb: (e: ServiceError | null, r: T) => void) => unknown): Promise<T> =>
  new Promise((resolve, reject) => fn((e, r) => (e ? reject(e) : resolve(r))));

interface Api {
  h: HelperProcess;
  party(): Promise<Party | undefined>;
  peers(): Promise<Peer[]>;
  create(name: string): Promise<Party>;
  join(link: string): Promise<Party>;
}

async function helper(controlUrls?: string): Promise<Api> {
  const h = await startHelper({ pwaDir: null, extraArgs: controlUrls ? ['--control-url', controlUrls] : [] });
  helpers.push(h);
  const md = new Metadata();
  md.set('authorization', `Bearer ${h.token}`);
  const party = new PartyServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  const peers = new PeerServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  clients.push(party, peers);
  return {
    h,
    party: async () => (await call<{ party?: Party }>((cb) => party.getParty({}, cb))).party,
    peers: async () => (await call<{ peers: Peer[] }>((cb) => peers.listPeers({}, cb))).peers,
    create: async (name) => (await call<{ party?: Party }>((cb) => party.createParty({ name }, md, cb))).party!,
    join: async (inviteLink) => (await call<{ party?: Party }>((cb) => party.joinParty({ inviteLink }, md, cb))).party!,
  };
}

const selfId = (p: Party | undefined): string => p!.members.find((m) => m.isSelf)!.deviceId;
const ids = (p: Party | undefined): string[] => (p?.members ?? []).map((m) => m.deviceId).sort();

test('a helper given two control instances keeps its party when its instance is killed', { timeout: 240_000 }, async (t) => {
  if (!requireOrSkip(havePostgres() && process.getuid?.() === 0, NEED, t)) return;
  try {
    await failover();
  } catch (err) {
    for (const h of helpers) process.stderr.write(`--- helper ${h.pid} log (tail):\n${h.logs.slice(-40).join('\n')}\n`);
    throw err;
  }
});

async function failover(): Promise<void> {
  db = await TestPostgres.start();
  const a = await startControlProcess(['--db', db.url()]);
  procs.push(a);
  const b = await startControlProcess(['--db', db.url()]);
  procs.push(b);

  // Alice's helper is configured with both instances, A first.
  const alice = await helper(`${a.url},${b.url}`);
  const created = await alice.create('LAN night');
  const link = parseInviteLink(created.inviteLink);
  assert.equal(link.controlUrl, a.url, 'the invite names the instance in use');
  assert.deepEqual(link.fallbackUrls, [b.url], 'and carries the other instance');

  // Bob's helper knows nothing but the invite; Carol's enters through instance B (same party).
  const bob = await helper();
  await bob.join(created.inviteLink);
  const carol = await helper();
  await carol.join(formatInviteLink(b.url, link.partyId, link.secret, [a.url]));
  const aliceId = selfId(await alice.party());
  const bobId = selfId(await bob.party());
  const carolId = selfId(await carol.party());
  const three = [aliceId, bobId, carolId].sort();
  await eventually('everyone sees three members', async () => {
    const ps = await Promise.all([alice, bob, carol].map((x) => x.party()));
    return ps.every((p) => JSON.stringify(ids(p)) === JSON.stringify(three)) || undefined;
  }, 30_000, 200);

  // Instance A (Alice's and Bob's) dies.
  process.kill(a.pid, 'SIGKILL');
  await a.exited;

  // What Alice's user sees: still in the party with Bob and Carol, both listed as peers.
  await eventually('Alice reconnected to instance B', () => alice.h.logs.some((l) => l.includes('control server connection restored')) || undefined, 30_000, 100);
  assert.ok(alice.h.logs.some((l) => l.includes('trying another control instance') && l.includes(b.url)), 'Alice moved to B');
  assert.deepEqual(ids(await alice.party()), three);
  assert.deepEqual((await alice.peers()).map((p) => p.deviceId).sort(), [bobId, carolId].sort());
  // Her invite now names B first, A as the alternate.
  const after = parseInviteLink((await alice.party())!.inviteLink);
  assert.deepEqual([after.controlUrl, ...after.fallbackUrls], [b.url, a.url]);

  // Dave joins later through B: every helper that was on A sees him (they hear B now).
  const dave = await helper();
  await dave.join((await carol.party())!.inviteLink);
  const daveId = selfId(await dave.party());
  const four = [...three, daveId].sort();
  await eventually('Alice, Bob and Carol see Dave', async () => {
    const ps = await Promise.all([alice, bob, carol, dave].map((x) => x.party()));
    return ps.every((p) => JSON.stringify(ids(p)) === JSON.stringify(four)) || undefined;
  }, 30_000, 200);
  assert.ok((await alice.peers()).some((p) => p.deviceId === daveId), 'Dave is a peer of Alice');
  // Nobody was dropped while A's members moved: all online in everyone's view.
  await eventually('everyone online', async () => {
    const ps = await Promise.all([alice, bob, carol, dave].map((x) => x.party()));
    return ps.every((p) => p!.members.every((m) => m.presence === MemberPresence.MEMBER_PRESENCE_ONLINE)) || undefined;
  }, 30_000, 200);
}
