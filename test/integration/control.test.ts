import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, credentials, Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { ApiError } from '../../helper/core/api-error.js';
import { createLogger } from '../../helper/core/log.js';
import { ControlServiceClient, type GetChallengeResponse, type RegisterResponse } from '../../helper/gen/lanrage/control/v1/control.js';
import { startControlServer, type ControlServer, type ControlServerOptions } from '../../helper/control/server.js';
import { registrationMessage } from '../../helper/control/registration.js';
import { ControlClient, type ControlClientEvents } from '../../helper/controlclient/client.js';
import { identityPublicKeyRaw } from '../../helper/controlclient/identity.js';
import type { PartyState } from '../../helper/controlclient/state.js';
import { requireOrSkip } from '../lib/repo.js';
import { nextEvent } from '../lib/control-events.js';

// In-process control server on loopback, real gRPC and UDP, real ControlClients.

const log = createLogger({ test: 'control' }, process.env.LANRAGE_TEST_LOG ? undefined : () => {});
const dir = mkdtempSync(join(tmpdir(), 'lanrage-control-it-'));
const dbFile = join(dir, 'control.db');
const clients: ControlClient[] = [];
let server: ControlServer | undefined;
after(async () => {
  for (const c of clients) await c.close();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const serverOpts = (grpcPort = 0, stunPort = 0): ControlServerOptions => ({ host: '127.0.0.1', grpcPort, stunPort, dbFile, log, awayAfterMs: 300, dropAfterMs: 700 });

async function client(name: string): Promise<ControlClient> {
  const c = await ControlClient.connect({
    url: `http://127.0.0.1:${server!.grpcPort}`,
    identity: generateKeyPairSync('ed25519').privateKey,
    name,
    wgPublicKey: randomBytes(32).toString('base64'),
    discoPublicKey: randomBytes(32).toString('base64'),
    log,
    backoff: { initialMs: 50, maxMs: 300 },
    callTimeoutMs: 3000,
  });
  clients.push(c);
  return c;
}

const next = nextEvent;

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const rejectsWith = (p: Promise<unknown>, code: Status, re?: RegExp): Promise<void> =>
  assert.rejects(p, (e: ApiError | ServiceError) => {
    assert.equal(e.code, code, `expected ${Status[code]}, got ${Status[e.code]}: ${e.message}`);
    if (re) assert.match(e.message, re);
    return true;
  });

const view = (p: PartyState | null) => p && p.members.map((m) => `${m.name}@${m.virtualIp}${m.isHost ? '*' : ''}`).join(' ');

test('control server end to end: parties, keys, call-me-maybe, kick, bad input, STUN, restart, presence', async (t) => {
  server = await startControlServer(serverOpts());
  assert.equal(server.stunPorts[1], server.stunPorts[0] + 1);
  const host = await client('Host');
  const bob = await client('Bob');
  const carol = await client('Carol');
  const dave = await client('Dave');
  assert.deepEqual(host.stunServers(), [`127.0.0.1:${server.stunPorts[0]}`, `127.0.0.1:${server.stunPorts[1]}`]);
  assert.equal(host.party(), null);

  let pid = '';
  let secret = '';

  await t.test('create, join with the right secret; a wrong secret is PERMISSION_DENIED', async () => {
    const created = await host.createParty('Friday LAN');
    pid = created.party.id;
    secret = created.inviteSecret;
    assert.equal(host.party()?.inviteSecret, secret);
    assert.equal(view(host.party()), 'Host@10.66.0.1*');
    await rejectsWith(bob.joinParty(pid, randomBytes(32).toString('base64url')), Status.PERMISSION_DENIED, /invite secret is wrong/);
    assert.equal(bob.party(), null);
    const joinedSeen = next(host, 'member', (m, kind) => kind === 'joined' && m.name === 'Bob');
    await bob.joinParty(pid, secret);
    await joinedSeen;
    await carol.joinParty(pid, secret);
    await until('host sees three members', () => host.party()?.members.length === 3);
    for (const c of [host, bob, carol]) assert.equal(view(c.party()), 'Host@10.66.0.1* Bob@10.66.0.2 Carol@10.66.0.3');
    assert.equal(bob.party()?.members.find((m) => m.isSelf)?.deviceId, bob.deviceId);
  });

  await t.test('all members see each other\'s keys, addresses and candidates', async () => {
    const eps: Record<string, string[]> = {
      [host.deviceId]: ['192.0.2.10:41641', '203.0.113.1:41641'],
      [bob.deviceId]: ['198.51.100.20:5000'],
      [carol.deviceId]: ['[2001:db8::3]:6000', '203.0.113.3:6000'],
    };
    await host.updateEndpoints(eps[host.deviceId]!, { mapping: 'endpoint-independent', portMapped: false, portDelta: 0 });
    await bob.updateEndpoints(eps[bob.deviceId]!);
    await carol.updateEndpoints(eps[carol.deviceId]!, { mapping: 'endpoint-dependent', portMapped: false, portDelta: 2 });
    const all = [host, bob, carol];
    await until('everyone has everyone\'s candidates', () => all.every((c) => c.party()!.members.every((m) => m.candidates.join() === eps[m.deviceId]!.join())));
    const wgOf = new Map(all.map((c) => [c.deviceId, (c as unknown as { wgKey: Buffer }).wgKey.toString('base64')]));
    for (const c of all) {
      for (const m of c.party()!.members) {
        assert.equal(m.wgPublicKey, wgOf.get(m.deviceId), 'WireGuard key distributed');
        assert.equal(Buffer.from(m.discoPublicKey, 'base64').length, 32);
        assert.equal(m.presence, 'online');
      }
      assert.equal(c.party()!.members.find((m) => m.deviceId === carol.deviceId)?.nat.mapping, 'endpoint-dependent');
    }
  });

  await t.test('call-me-maybe reaches only the named peer of the same party', async () => {
    await dave.createParty('Elsewhere');
    const got: string[] = [];
    for (const c of [host, carol, dave]) c.on('callMeMaybe', (m) => got.push(`${c.deviceId}<-${m.fromDeviceId}:${m.candidates.join()}`));
    const atBob = next(bob, 'callMeMaybe');
    assert.equal(await host.callMeMaybe(bob.deviceId, ['203.0.113.1:41641']), true);
    const [msg] = await atBob;
    assert.deepEqual(msg, { fromDeviceId: host.deviceId, candidates: ['203.0.113.1:41641'], spraySockets: 0, primed: [] });
    // Which of bob's candidates the caller primed reaches bob as sent.
    const primedAtBob = next(bob, 'callMeMaybe');
    assert.equal(await host.callMeMaybe(bob.deviceId, ['203.0.113.1:41641'], 0, ['198.51.100.9:5000']), true);
    assert.deepEqual((await primedAtBob)[0].primed, ['198.51.100.9:5000']);
    // A birthday call carries its socket count; a count beyond the bound is refused.
    const again = next(bob, 'callMeMaybe');
    assert.equal(await host.callMeMaybe(bob.deviceId, ['203.0.113.1:41641'], 256), true);
    assert.equal((await again)[0].spraySockets, 256);
    await assert.rejects(host.callMeMaybe(bob.deviceId, [], 257), /spray_sockets/);
    await rejectsWith(dave.callMeMaybe(bob.deviceId, ['198.51.100.9:1']), Status.NOT_FOUND);
    await rejectsWith(host.callMeMaybe(dave.deviceId), Status.NOT_FOUND);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(got, []);
    for (const c of [host, carol, dave]) c.removeAllListeners('callMeMaybe');
  });

  await t.test('kick by a non-host is PERMISSION_DENIED; leave tells the others', async () => {
    await rejectsWith(bob.kick(carol.deviceId), Status.PERMISSION_DENIED, /only the party host/);
    assert.equal(host.party()?.members.length, 3);
    const seenByHost = next(host, 'memberLeft', (l) => l.deviceId === carol.deviceId);
    const seenByBob = next(bob, 'memberLeft', (l) => l.deviceId === carol.deviceId);
    await carol.leaveParty();
    assert.equal(carol.party(), null);
    assert.equal((await seenByHost)[0].reason, 'left');
    assert.equal((await seenByBob)[0].member?.name, 'Carol');
    // She comes back with her address; the host kicks her and she is told.
    await carol.joinParty(pid, secret);
    await until('host sees Carol again', () => host.party()?.members.some((m) => m.deviceId === carol.deviceId && m.virtualIp === '10.66.0.3') === true);
    const kicked = next(carol, 'kicked');
    const kickedSeen = next(bob, 'memberLeft', (l) => l.deviceId === carol.deviceId && l.reason === 'kicked');
    await host.kick(carol.deviceId);
    assert.equal((await kicked)[0].byDeviceId, host.deviceId);
    await kickedSeen;
    await until('Carol has no party', () => carol.party() === null);
    await carol.joinParty(pid, secret);
    await until('host sees Carol back', () => host.party()?.members.length === 3);
  });

  await t.test('malformed and oversized requests get a clear status and change nothing', async () => {
    const raw = new ControlServiceClient(`127.0.0.1:${server!.grpcPort}`, credentials.createInsecure());
    const ch = await new Promise<GetChallengeResponse>((res, rej) => raw.getChallenge({}, (e, r) => (e ? rej(e) : res(r))));
    const key = generateKeyPairSync('ed25519').privateKey;
    const [wg, disco] = [randomBytes(32), randomBytes(32)];
    const reg = await new Promise<RegisterResponse>((res, rej) =>
      raw.register(
        { identityPublicKey: identityPublicKeyRaw(key), nonce: ch.nonce, signature: sign(null, registrationMessage(ch.nonce, wg, disco, 'Raw'), key), name: 'Raw', wireguardPublicKey: wg, discoPublicKey: disco },
        (e, r) => (e ? rej(e) : res(r)),
      ),
    );
    const md = new Metadata();
    md.set('authorization', `Bearer ${reg.sessionToken}`);
    const bytes = new Client(`127.0.0.1:${server!.grpcPort}`, credentials.createInsecure());
    const send = (path: string, body: Buffer): Promise<unknown> =>
      new Promise((res, rej) => bytes.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, body, md, { deadline: Date.now() + 3000 }, (e, r) => (e ? rej(e) : res(r))));
    const join = '/lanrage.control.v1.ControlService/JoinParty';
    await rejectsWith(send(join, Buffer.from([0x0a, 0x10, 0x41])), Status.INVALID_ARGUMENT, /not a valid .*JoinParty message: premature EOF/);
    await rejectsWith(send(join, Buffer.from([0x0f])), Status.INVALID_ARGUMENT, /wire type 7/);
    await rejectsWith(send('/lanrage.control.v1.ControlService/CreateParty', Buffer.concat([Buffer.from([0x0a, 0x80, 0x80, 0x05]), Buffer.alloc(81920, 0x41)])), Status.RESOURCE_EXHAUSTED, /larger than max/);
    await rejectsWith(
      new Promise((res, rej) => raw.createParty({ name: 'x'.repeat(100) }, md, (e, r) => (e ? rej(e) : res(r)))),
      Status.INVALID_ARGUMENT,
      /1-48 characters/,
    );
    await rejectsWith(
      new Promise((res, rej) => raw.updateEndpoints({ candidates: Array.from({ length: 17 }, (_, i) => `203.0.113.${i + 1}:1`), relayed: [] }, md, (e, r) => (e ? rej(e) : res(r)))),
      Status.INVALID_ARGUMENT,
      /at most 16/,
    );
    await rejectsWith(new Promise((res, rej) => raw.leaveParty({}, (e, r) => (e ? rej(e) : res(r)))), Status.UNAUTHENTICATED, /authorization: Bearer/);
    await rejectsWith(new Promise((res, rej) => raw.register({ identityPublicKey: identityPublicKeyRaw(key), nonce: ch.nonce, signature: Buffer.alloc(64), name: 'Raw', wireguardPublicKey: wg, discoPublicKey: disco }, (e, r) => (e ? rej(e) : res(r)))), Status.UNAUTHENTICATED);
    raw.close();
    bytes.close();
    assert.equal(view(host.party()), 'Host@10.66.0.1* Bob@10.66.0.2 Carol@10.66.0.3');
  });

  await t.test('STUN: both ports answer a Binding request with the client\'s address and port', async () => {
    const sock = createSocket('udp4');
    sock.bind(0, '127.0.0.1');
    await once(sock, 'listening');
    const me = sock.address().port;
    try {
      for (const port of server!.stunPorts) {
        const req = Buffer.alloc(20);
        req.writeUInt16BE(0x0001, 0);
        req.writeUInt32BE(0x2112a442, 4);
        randomBytes(12).copy(req, 8);
        sock.send(req, port, '127.0.0.1');
        const [res, rinfo] = (await once(sock, 'message')) as [Buffer, { port: number }];
        assert.equal(rinfo.port, port, 'answered from the port asked');
        assert.ok(res.subarray(8, 20).equals(req.subarray(8, 20)));
        const at = res.indexOf(Buffer.from([0x00, 0x20, 0x00, 0x08]), 20);
        assert.ok(at >= 20, 'XOR-MAPPED-ADDRESS present');
        const mappedPort = res.readUInt16BE(at + 6) ^ 0x2112;
        const mappedIp = [0, 1, 2, 3].map((i) => res[at + 8 + i]! ^ [0x21, 0x12, 0xa4, 0x42][i]!).join('.');
        assert.equal(`${mappedIp}:${mappedPort}`, `127.0.0.1:${me}`);
      }
    } finally {
      sock.close();
    }
  });

  await t.test('server restart on the same database: clients reconnect by themselves; party, members, IPs unchanged', async () => {
    const before = [host, bob, carol].map((c) => view(c.party()));
    const partyBefore = host.party()!;
    const { grpcPort, stunPorts } = server!;
    const down = Promise.all([host, bob, carol, dave].map((c) => next(c, 'disconnected')));
    const back = Promise.all([host, bob, carol, dave].map((c) => next(c, 'reconnected', () => true, 10_000)));
    await server!.close();
    await down;
    assert.equal(host.connected, false);
    server = await startControlServer(serverOpts(grpcPort, stunPorts[0]));
    const t0 = Date.now();
    await back;
    t.diagnostic(`all four clients reconnected ${Date.now() - t0} ms after the server came back`);
    assert.deepEqual([host, bob, carol].map((c) => view(c.party())), before);
    assert.equal(host.party()?.id, partyBefore.id);
    assert.equal(host.party()?.inviteSecret, secret, 'the client keeps the secret across reconnects');
    assert.equal(dave.party()?.name, 'Elsewhere');
    // The session is fully usable: calls work with the new registration, endpoints were re-sent.
    assert.equal(await host.callMeMaybe(bob.deviceId), true);
    await until('candidates survive', () => bob.party()!.members.find((m) => m.deviceId === host.deviceId)?.candidates.length === 2);
  });

  await t.test('presence: a vanished member turns away, then is dropped, and the host role passes on', async () => {
    const away = next(bob, 'member', (m) => m.deviceId === host.deviceId && m.presence === 'away');
    const left = next(bob, 'memberLeft', (l) => l.deviceId === host.deviceId);
    const promoted = next(bob, 'member', (m) => m.deviceId === bob.deviceId && m.isHost);
    await host.close();
    await away;
    assert.equal((await left)[0].reason, 'timed-out');
    await promoted;
    assert.equal(view(bob.party()), 'Bob@10.66.0.2* Carol@10.66.0.3');
    await until('Carol agrees', () => view(carol.party()) === 'Bob@10.66.0.2* Carol@10.66.0.3');
  });
});

test('TLS: an https:// client that trusts the certificate works; plaintext and untrusting clients are refused', async (t) => {
  if (!requireOrSkip(existsSync('/usr/bin/openssl'), 'openssl (Debian package openssl) to make a test certificate', t)) return;
  const tlsDir = mkdtempSync(join(tmpdir(), 'lanrage-control-tls-'));
  const keyFile = join(tlsDir, 'key.pem');
  const certFile = join(tlsDir, 'cert.pem');
  let tlsServer: ControlServer | undefined;
  const opened: ControlClient[] = [];
  try {
    await promisify(execFile)('/usr/bin/openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-keyout', keyFile, '-out', certFile, '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ]);
    tlsServer = await startControlServer({ ...serverOpts(), dbFile: join(tlsDir, 'control.db'), tls: { certFile, keyFile } });
    const base = {
      identity: generateKeyPairSync('ed25519').privateKey,
      name: 'Secure',
      wgPublicKey: randomBytes(32).toString('base64'),
      discoPublicKey: randomBytes(32).toString('base64'),
      log,
      callTimeoutMs: 2000,
    };
    const c = await ControlClient.connect({ ...base, url: `https://localhost:${tlsServer.grpcPort}`, tlsCa: readFileSync(certFile) });
    opened.push(c);
    const { party } = await c.createParty('Encrypted');
    assert.equal(party.members[0]?.virtualIp, '10.66.0.1');
    // The client reached "localhost"; the server listens on 127.0.0.1 and says so.
    assert.deepEqual(c.stunServers(), tlsServer.stunPorts.map((p) => `127.0.0.1:${p}`));
    await rejectsWith(ControlClient.connect({ ...base, url: `http://127.0.0.1:${tlsServer.grpcPort}` }), Status.UNAVAILABLE, /unreachable/);
    await rejectsWith(ControlClient.connect({ ...base, url: `https://localhost:${tlsServer.grpcPort}` }), Status.UNAVAILABLE, /unreachable/);
  } finally {
    for (const c of opened) await c.close();
    await tlsServer?.close();
    rmSync(tlsDir, { recursive: true, force: true });
  }
});
