import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { DiscordServiceClient } from '../../helper/gen/lanrage/v1/discord.js';
import { PartyServiceClient, type Party } from '../../helper/gen/lanrage/v1/party.js';
import { ControlClient } from '../../helper/controlclient/client.js';
import { parseInviteLink } from '../../helper/controlclient/invite.js';
import { createLogger } from '../../helper/core/log.js';
import { startHelper, removeStateDir, type HelperProcess } from '../lib/helper-process.js';
import { HELPER_MAIN, requireOrSkip } from '../lib/repo.js';
import { FakeDiscordIpc } from '../lib/fake-discord-ipc.js';

// The real `lanrage presence` agent between a real helper (its Watch stream) and a local server
// speaking Discord's IPC protocol in a temporary XDG_RUNTIME_DIR: the agent waits while Discord is
// not running, shows the party once it is, follows the party as it changes, survives junk frames
// and Discord quitting, and shows the party again when Discord comes back.

const CLIENT_ID = '345678901234567890';
let h: HelperProcess;
let runtimeDir: string;
let ipc: FakeDiscordIpc;
let agent: ChildProcess | undefined;
const agentLogs: string[] = [];
const md = new Metadata();
let party: PartyServiceClient;
let discord: DiscordServiceClient;
const friends: ControlClient[] = [];

before(async () => {
  h = await startHelper({ pwaDir: null });
  md.set('authorization', `Bearer ${h.token}`);
  party = new PartyServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  discord = new DiscordServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  runtimeDir = mkdtempSync(join(tmpdir(), 'lanrage-xdg-'));
  ipc = new FakeDiscordIpc(runtimeDir);
});
after(async () => {
  for (const f of friends) await f.close().catch(() => {});
  if (agent && agent.exitCode === null) {
    agent.kill('SIGTERM');
    await new Promise((r) => agent!.once('exit', r));
  }
  await ipc.stop();
  party.close();
  discord.close();
  await h.stop();
  removeStateDir(h.stateDir);
  rmSync(runtimeDir, { recursive: true, force: true });
});

const call = <T>(fn: (cb: (e: ServiceError | null, r: T) => void) => unknown): Promise<T> =>
  new Promise((resolve, reject) => fn((e, r) => (e ? reject(e) : resolve(r))));

async function friend(name: string, invite: string): Promise<ControlClient> {
  const link = parseInviteLink(invite);
  const c = await ControlClient.connect({ url: link.controlUrl, identity: generateKeyPairSync('ed25519').privateKey, name, wgPublicKey: randomBytes(32).toString('base64'), discoPublicKey: randomBytes(32).toString('base64'), log: createLogger({}, () => {}) });
  friends.push(c);
  await c.joinParty(link.partyId, link.secret);
  return c;
}

const details = (a: { activity: Record<string, unknown> | null } | undefined): string => (a?.activity ? `${String(a.activity['details'])} | ${String(a.activity['state'])}` : 'cleared');
const latencies: number[] = [];

test('the presence agent follows the party into Discord', { timeout: 120_000 }, async (t) => {
  if (!requireOrSkip(process.getuid?.() === 0, 'root (the party creates a WireGuard interface)', t)) return;
  await call((cb) => discord.connectDiscord({ webhookUrl: '', clientId: CLIENT_ID, richPresence: true }, md, cb));

  // Discord is not running yet: the agent waits quietly.
  agent = spawn(process.execPath, [HELPER_MAIN, 'presence', '--grpc', `127.0.0.1:${h.grpcPort}`, '--retry-ms', '300'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir, LANRAGE_LOG: 'info' },
  });
  createInterface({ input: agent.stderr! }).on('line', (l) => agentLogs.push(l));
  const until = Date.now() + 15_000;
  while (!agentLogs.some((l) => l.includes('Discord is not running')) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  // Several retries (every 300 ms) later, still one line.
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(agent.exitCode, null, `the agent exited:\n${agentLogs.join('\n')}`);
  const waiting = agentLogs.filter((l) => l.includes('Discord is not running'));
  assert.equal(waiting.length, 1, `not quiet while Discord is away:\n${agentLogs.join('\n')}`);

  // Discord starts: the agent connects with the configured application id; not in a party yet.
  await ipc.start();
  await ipc.waitFor((a) => a.length >= 1, 10_000, 'first presence');
  assert.equal(ipc.handshakes[0]?.clientId, CLIENT_ID);
  assert.equal(ipc.activities[0]!.activity, null, 'not in a party, yet a presence was shown');

  let t0 = Date.now();
  const created = await call<{ party?: Party }>((cb) => party.createParty({ name: 'LAN night' }, md, cb));
  let a = await ipc.waitFor((x) => details(x.at(-1)) === 'In a LANrage party (1 player) | LAN night', 10_000, 'party of 1');
  latencies.push(a.at - t0);

  t0 = Date.now();
  const bob = await friend('Bob', created.party!.inviteLink);
  a = await ipc.waitFor((x) => details(x.at(-1)) === 'In a LANrage party (2 players) | LAN night', 10_000, 'party of 2');
  latencies.push(a.at - t0);
  t0 = Date.now();
  await Promise.all(['Carol', 'Dave'].map((n) => friend(n, created.party!.inviteLink)));
  a = await ipc.waitFor((x) => details(x.at(-1)) === 'In a LANrage party (4 players) | LAN night', 10_000, 'party of 4');
  latencies.push(a.at - t0);
  t0 = Date.now();
  await bob.leaveParty();
  a = await ipc.waitFor((x) => details(x.at(-1)) === 'In a LANrage party (3 players) | LAN night', 10_000, 'party of 3');
  latencies.push(a.at - t0);

  // Discord quits, then comes back sending junk first: the agent shows the party again.
  await ipc.stop();
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(agent.exitCode, null, `the agent exited when Discord quit:\n${agentLogs.join('\n')}`);
  const before = ipc.activities.length;
  ipc.hostile = process.env.NOHOSTILE ? false : true;
  await ipc.start();
  a = await ipc.waitFor((x) => x.length > before && details(x.at(-1)) === 'In a LANrage party (3 players) | LAN night', 10_000, 'presence after Discord came back').catch((e: Error) => { throw new Error(`${e.message}\n${agentLogs.join('\n')}`); });
  assert.equal(agent.exitCode, null, `the agent died on junk frames:\n${agentLogs.join('\n')}`);

  t0 = Date.now();
  await call((cb) => party.leaveParty({}, md, cb));
  a = await ipc.waitFor((x) => x.at(-1)!.activity === null, 10_000, 'cleared after leaving');
  latencies.push(a.at - t0);
  console.log(`# presence update latency after a party change (ms): ${latencies.join(', ')}`);
  const errors = agentLogs.filter((l) => /"level":"(error|warn)"/.test(l) && !l.includes('runs as root'));
  assert.deepEqual(errors, [], 'the agent logged errors');
});
