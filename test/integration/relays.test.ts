// GetRelays and relayed addresses through a real control server on loopback (real gRPC), with
// real ControlClients and a raw gRPC client for what a well-behaved client would never send.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { ApiError } from '../../helper/core/api-error.js';
import { createLogger } from '../../helper/core/log.js';
import { ControlServiceClient, type GetChallengeResponse, type RegisterResponse } from '../../helper/gen/lanrage/control/v1/control.js';
import { startControlServer, type ControlServer } from '../../helper/control/server.js';
import { registrationMessage } from '../../helper/control/registration.js';
import type { RelayConfig } from '../../helper/control/relay-config.js';
import { verifyTurnCredentials } from '../../helper/control/turn-credentials.js';
import { ControlClient, type ControlClientEvents } from '../../helper/controlclient/client.js';
import { identityPublicKeyRaw } from '../../helper/controlclient/identity.js';
import { HELPER_MAIN } from '../lib/repo.js';
import { nextEvent } from '../lib/control-events.js';
import { assertMintedExpiry } from '../lib/turn-expiry.js';

const log = createLogger({ test: 'relays' }, process.env.LANRAGE_TEST_LOG ? undefined : () => {});
const dir = mkdtempSync(join(tmpdir(), 'lanrage-relays-it-'));
const clients: ControlClient[] = [];
const servers: ControlServer[] = [];
after(async () => {
  for (const c of clients) await c.close();
  for (const s of servers) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

const SECRET = randomBytes(24).toString('base64url');
const TTL_S = 90;
const RELAYS: RelayConfig = {
  relays: [
    { host: '127.0.0.1', port: 3478, transports: ['udp', 'tcp'] },
    { host: '192.0.2.7', port: 443, transports: ['tcp'] },
  ],
  secret: SECRET,
  ttlSeconds: TTL_S,
  realm: 'lanrage',
};

async function server(name: string, relays?: RelayConfig): Promise<ControlServer> {
  const s = await startControlServer({ host: '127.0.0.1', grpcPort: 0, stunPort: 0, dbFile: join(dir, `${name}.db`), log, ...(relays && { relays }) });
  servers.push(s);
  return s;
}

async function client(grpcPort: number, name: string): Promise<ControlClient> {
  const c = await ControlClient.connect({
    url: `http://127.0.0.1:${grpcPort}`,
    identity: generateKeyPairSync('ed25519').privateKey,
    name,
    wgPublicKey: randomBytes(32).toString('base64'),
    discoPublicKey: randomBytes(32).toString('base64'),
    log,
    callTimeoutMs: 3000,
  });
  clients.push(c);
  return c;
}

const next = nextEvent;

const rejectsWith = (p: Promise<unknown>, code: Status, re?: RegExp): Promise<void> =>
  assert.rejects(p, (e: ApiError | ServiceError) => {
    assert.equal(e.code, code, `expected ${Status[code]}, got ${Status[e.code]}: ${e.message}`);
    if (re) assert.match(e.message, re);
    return true;
  });

test('GetRelays: members only, one entry per configured relay, credentials the relay accepts, fresh on every call', async () => {
  const s = await server('with-relays', RELAYS);
  const host = await client(s.grpcPort, 'Host');
  await rejectsWith(host.getRelays(), Status.FAILED_PRECONDITION, /join a party first: relays are for party members/);
  await host.createParty('Relay night');
  const t0 = Date.now();
  const first = await host.getRelays();
  const t1 = Date.now();
  assert.deepEqual(
    first.map((r) => [r.host, r.port, r.transports, r.realm]),
    [
      ['127.0.0.1', 3478, ['udp', 'tcp'], 'lanrage'],
      ['192.0.2.7', 443, ['tcp'], 'lanrage'],
    ],
  );
  for (const r of first) {
    assert.ok(verifyTurnCredentials(SECRET, r.username, r.password, Date.now()), 'minted with the relay secret');
    assert.ok(r.username.endsWith(`:${host.deviceId}`), 'for this device');
    assertMintedExpiry(r.expiresAt, t0, t1, TTL_S * 1000);
    assert.ok(!verifyTurnCredentials(SECRET, r.username, r.password, r.expiresAt + 1), 'and not after');
  }
  await new Promise((r) => setTimeout(r, 1100));
  const second = await host.getRelays();
  assert.notEqual(second[0]!.username, first[0]!.username, 'fresh credentials');
  assert.ok(second[0]!.expiresAt > first[0]!.expiresAt, 'a later expiry');
  await host.leaveParty();
  await rejectsWith(host.getRelays(), Status.FAILED_PRECONDITION);
});

test('GetRelays on a server without relays: an empty list', async () => {
  const s = await server('no-relays');
  const c = await client(s.grpcPort, 'Solo');
  await rejectsWith(c.getRelays(), Status.FAILED_PRECONDITION);
  await c.createParty('Plain');
  assert.deepEqual(await c.getRelays(), []);
});

test('relayed addresses: published to the party as member_updated; too many or malformed ones refused, nothing changes', async () => {
  const s = await server('relayed', RELAYS);
  const host = await client(s.grpcPort, 'Host');
  const bob = await client(s.grpcPort, 'Bob');
  const { party, inviteSecret } = await host.createParty('Relayed');
  await bob.joinParty(party.id, inviteSecret);

  const seen = next(bob, 'member', (m) => m.deviceId === host.deviceId && m.relayed.length > 0);
  await host.updateEndpoints(['127.0.0.1:41641'], { mapping: 'endpoint-independent', portMapped: false, portDelta: 0 }, ['127.0.0.1:50000', '127.0.0.1:50001']);
  const [m] = await seen;
  assert.deepEqual(m.relayed, ['127.0.0.1:50000', '127.0.0.1:50001']);
  assert.deepEqual(m.candidates, ['127.0.0.1:41641']);
  assert.deepEqual(bob.party()?.members.find((x) => x.deviceId === host.deviceId)?.relayed, ['127.0.0.1:50000', '127.0.0.1:50001']);
  assert.deepEqual(bob.party()?.members.find((x) => x.isSelf)?.relayed, [], 'a member that published none');
  // The client refuses to send what the server would refuse.
  await rejectsWith(host.updateEndpoints([], undefined, ['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3', '127.0.0.1:4', '127.0.0.1:5']), Status.INVALID_ARGUMENT, /at most 4/);

  // A raw client in the same party, sending what ControlClient never would.
  const raw = new ControlServiceClient(`127.0.0.1:${s.grpcPort}`, credentials.createInsecure());
  try {
    const call = <T>(f: (cb: (e: ServiceError | null, r: T) => void) => void): Promise<T> => new Promise((res, rej) => f((e, r) => (e ? rej(e) : res(r))));
    const key = generateKeyPairSync('ed25519').privateKey;
    const [wg, disco] = [randomBytes(32), randomBytes(32)];
    const ch = await call<GetChallengeResponse>((cb) => raw.getChallenge({}, cb));
    const reg = await call<RegisterResponse>((cb) =>
      raw.register({ identityPublicKey: identityPublicKeyRaw(key), nonce: ch.nonce, signature: sign(null, registrationMessage(ch.nonce, wg, disco, 'Raw'), key), name: 'Raw', wireguardPublicKey: wg, discoPublicKey: disco }, cb),
    );
    const md = new Metadata();
    md.set('authorization', `Bearer ${reg.sessionToken}`);
    const joined = next(bob, 'member', (x) => x.deviceId === reg.deviceId);
    await call((cb) => raw.joinParty({ partyId: party.id, inviteSecret }, md, cb));
    await joined;
    const good = next(bob, 'member', (x) => x.deviceId === reg.deviceId && x.relayed.length === 1);
    await call((cb) => raw.updateEndpoints({ candidates: ['127.0.0.1:9'], relayed: ['127.0.0.1:60000'] }, md, cb));
    await good;
    let later = 0;
    const count = (x: { deviceId: string }): void => void (x.deviceId === reg.deviceId && later++);
    bob.on('member', count);
    for (const [bad, why] of [
      [['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3', '127.0.0.1:4', '127.0.0.1:5'], /at most 4 relayed/],
      [['[::1]:5000'], /IPv4/],
      [['127.0.0.1'], /not "ipv4:port"/],
      [['relay.example.com:3478'], /not "ipv4:port"/],
      [['224.0.0.1:5000'], /multicast/],
      [['127.0.0.1:0'], /port/],
      [['x'.repeat(100)], /too long/],
    ] as const) {
      await rejectsWith(call((cb) => raw.updateEndpoints({ candidates: ['127.0.0.1:10'], relayed: [...bad] }, md, cb)), Status.INVALID_ARGUMENT, why);
    }
    await new Promise((r) => setTimeout(r, 200));
    bob.off('member', count);
    assert.equal(later, 0, 'no member_updated for refused requests');
    const rawSeen = bob.party()?.members.find((x) => x.deviceId === reg.deviceId);
    assert.deepEqual([rawSeen?.candidates, rawSeen?.relayed], [['127.0.0.1:9'], ['127.0.0.1:60000']], 'candidates and relayed unchanged');
  } finally {
    raw.close();
  }
});

test('`lanrage helper --relay ... --turn-secret-file F --turn-ttl N`: the embedded control server hands out that relay', async () => {
  const state = mkdtempSync(join(dir, 'helper-'));
  const secretFile = join(state, 'turn-secret');
  writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
  const args = [
    HELPER_MAIN, 'helper', '--state-dir', state, '--http-port', '0', '--grpc-port', '0', '--control-port', '0', '--interface', `lrt${randomBytes(4).toString('hex')}`,
    '--relay', '127.0.0.1:3478/tcp', '--turn-secret-file', secretFile, '--turn-ttl', '45', '--turn-realm', 'lab.test',
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LANRAGE_LOG: 'info' } });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    const logs: string[] = [];
    const ready = await new Promise<{ grpcPort: number; relays: string[] }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "control server ready" in 15 s:\n${logs.join('\n')}`)), 15_000);
      createInterface({ input: child.stderr! }).on('line', (line) => {
        logs.push(line);
        try {
          const rec = JSON.parse(line) as { msg?: string; grpcPort?: number; relays?: string[] };
          if (rec.msg === 'control server ready' && rec.grpcPort) {
            clearTimeout(timer);
            resolve({ grpcPort: rec.grpcPort, relays: rec.relays ?? [] });
          }
        } catch {
          // not a log record
        }
      });
      void exited.then(() => reject(new Error(`helper exited:\n${logs.join('\n')}`)));
    });
    assert.deepEqual(ready.relays, ['127.0.0.1:3478/tcp']);
    assert.ok(!logs.join('\n').includes(SECRET) && !args.includes(SECRET), 'the secret is neither logged nor on the command line');
    const c = await client(ready.grpcPort, 'Embedded');
    await c.createParty('Embedded');
    const t0 = Date.now();
    const [r, ...rest] = await c.getRelays();
    const t1 = Date.now();
    assert.equal(rest.length, 0);
    assert.deepEqual([r?.host, r?.port, r?.transports, r?.realm], ['127.0.0.1', 3478, ['tcp'], 'lab.test']);
    assert.ok(verifyTurnCredentials(SECRET, r!.username, r!.password, Date.now()));
    assertMintedExpiry(r!.expiresAt, t0, t1, 45_000);
    await c.close();
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  }
});
