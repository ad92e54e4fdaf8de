import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { ManualClock } from '../../helper/core/clock.js';
import { createLogger } from '../../helper/core/log.js';
import { mintTurnCredentials } from '../../helper/control/turn-credentials.js';
import { TurnClient, TurnError, type TurnCredentials } from '../../helper/net/turn/index.js';
import { TransactionTimeout, Transactions } from '../../helper/net/turn/transactions.js';
import { encodeMessage } from '../../helper/net/turn/codec.js';
import { FakeTurnServer, SECRET, SERVER } from './turn-fake-server.js';

const silent = createLogger({}, () => {});
const PEER_A = '198.51.100.20:4000';
const PEER_B = '198.51.100.21:5000';
const PEER_C = '198.51.100.22:6000';

async function flush(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
}

interface Rig {
  clock: ManualClock;
  server: FakeTurnServer;
  client: TurnClient;
  creds: TurnCredentials[];
  events: string[];
  got: Array<[string, string]>;
  /** Moves time in steps, letting every request and answer of a step run. */
  run(ms: number, step?: number): Promise<void>;
}

function rig(mint?: (clock: ManualClock, n: number) => TurnCredentials): Rig {
  const clock = new ManualClock(1_700_000_000_000);
  const server = new FakeTurnServer(clock);
  const creds: TurnCredentials[] = [];
  const events: string[] = [];
  const got: Array<[string, string]> = [];
  const client = new TurnClient({
    server: { host: '192.0.2.10', port: 3478, transport: 'udp' },
    transport: {
      send: (b, ip, port) => {
        assert.equal(`${ip}:${port}`, SERVER);
        server.receive(Buffer.from(b));
      },
    },
    getCredentials: async () => {
      const c = mint ? mint(clock, creds.length) : mintTurnCredentials(SECRET, `dev${creds.length}`, clock.now(), 600);
      creds.push(c);
      return c;
    },
    log: silent,
    clock,
    // The fallback would open a real socket towards the fake relay's TEST-NET address.
    sharedFallback: false,
  });
  // Answers arrive asynchronously, as from a socket.
  server.deliver = (b) => queueMicrotask(() => assert.equal(client.handleDatagram(b, SERVER), true, 'the relay\'s datagram is claimed'));
  client.on('allocated', (r) => events.push(`allocated ${r}`));
  client.on('reallocated', (r, p) => events.push(`reallocated ${r} (was ${p})`));
  client.on('lost', (why) => events.push(`lost: ${why}`));
  client.on('data', (peer, d) => got.push([peer, d.toString()]));
  const run = async (ms: number, step = 500): Promise<void> => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(Math.min(step, ms - t));
      await flush();
    }
  };
  return { clock, server, client, creds, events, got, run };
}

async function started(mint?: (clock: ManualClock, n: number) => TurnCredentials): Promise<Rig> {
  const r = rig(mint);
  const p = r.client.start();
  await flush();
  assert.equal(await p, '198.51.100.1:50000');
  await flush();
  return r;
}

test('turn transactions: UDP retransmits the same bytes at +250/+500/+1000/+2000 ms and gives up 2 s later', async () => {
  const clock = new ManualClock(0);
  const tx = new Transactions(clock);
  const sent: Array<[number, Buffer]> = [];
  const msg = encodeMessage(0x0003, Buffer.alloc(12, 9));
  const p = tx.request(msg, (b) => sent.push([clock.now(), b]), false);
  const out: { err?: unknown } = {};
  p.catch((e: unknown) => (out.err = e));
  clock.advance(5749);
  await flush();
  assert.deepEqual(sent.map((s) => s[0]), [0, 250, 750, 1750, 3750]);
  assert.ok(sent.every((s) => s[1] === msg));
  assert.equal(typeof out.err, 'undefined');
  clock.advance(1);
  await flush();
  assert.ok(out.err instanceof TransactionTimeout);
  assert.equal(tx.size, 0);
});

test('turn transactions: an answer stops retransmission; TCP sends once and only times out', async () => {
  const clock = new ManualClock(0);
  const tx = new Transactions(clock);
  const sent: number[] = [];
  const msg = encodeMessage(0x0003, Buffer.alloc(12, 1));
  const p = tx.request(msg, () => sent.push(clock.now()), false);
  clock.advance(300);
  const answer = Buffer.from(msg);
  answer.writeUInt16BE(0x0113, 0);
  assert.equal(tx.handle(answer), true);
  assert.deepEqual(await p, answer);
  assert.equal(tx.handle(answer), false, 'an answer is consumed once');
  clock.advance(10_000);
  assert.deepEqual(sent, [0, 250]);
  const sent2: number[] = [];
  const q = tx.request(encodeMessage(0x0003, Buffer.alloc(12, 2)), () => sent2.push(clock.now()), true);
  const out: { err?: unknown } = {};
  q.catch((e: unknown) => (out.err = e));
  clock.advance(7999);
  await flush();
  assert.equal(typeof out.err, 'undefined');
  clock.advance(1);
  await flush();
  assert.ok(out.err instanceof TransactionTimeout);
  assert.equal(sent2.length, 1);
});

test('turn client: allocates after the 401 challenge with one fresh credential', async () => {
  const r = await started();
  assert.deepEqual(r.events, ['allocated 198.51.100.1:50000']);
  assert.equal(r.creds.length, 1);
  assert.equal(r.client.state, 'allocated');
  assert.equal(r.client.relayed, '198.51.100.1:50000');
  assert.equal(r.client.stats().mapped, '203.0.113.7:41641');
  // Probe (401), authenticated Allocate, then the first sync's probe (437: alive).
  assert.deepEqual(r.server.log, ['Allocate', 'Allocate', 'Allocate']);
  assert.equal(r.server.alloc?.username, r.creds[0]?.username);
});

test('turn client: permit() installs permissions and channels; data flows both ways only with permitted peers', async () => {
  const r = await started();
  const pending = r.client.permit([PEER_A, PEER_B]);
  // Before the channel is bound, data goes as a Send indication (dropped: no permission yet).
  assert.equal(r.client.send(PEER_A, Buffer.from('early')), true);
  assert.equal(r.client.stats().txSendIndications, 1);
  await flush();
  await pending;
  const a = r.server.alloc!;
  assert.ok(a.perms.has('198.51.100.20') && a.perms.has('198.51.100.21'));
  assert.deepEqual([...a.channels.values()].map((c) => c.peer).sort(), [PEER_A, PEER_B]);
  assert.ok(r.client.hasChannel(PEER_A));
  assert.equal(r.client.send(PEER_A, Buffer.from('hi A')), true);
  assert.equal(r.client.send(PEER_B, Buffer.from('hi B')), true);
  assert.deepEqual(r.server.toPeers.map(([p, d]) => [p, d.toString()]), [[PEER_A, 'hi A'], [PEER_B, 'hi B']]);
  assert.equal(r.client.stats().txChannelData, 2);
  r.server.peerSend(PEER_A, Buffer.from('from A'));
  r.server.peerSend('198.51.100.20:4001', Buffer.from('same IP, other port')); // the relay lets it through (per-IP permission)
  await flush();
  assert.deepEqual(r.got, [[PEER_A, 'from A']]);
  assert.equal(r.client.stats().rxDropUnknownPeer, 1);
  assert.equal(r.client.send('198.51.100.99:1', Buffer.from('x')), false, 'never to a peer outside the set');
  await assert.rejects(r.client.permit(['not-an-address']), TurnError);
});

test('turn client: permit() is the exact set: a removed peer is not sent to or heard; its channel is not reused for another', async () => {
  const r = await started();
  await r.client.permit([PEER_A, PEER_B]);
  const chB = [...r.server.alloc!.channels].find(([, c]) => c.peer === PEER_B)![0];
  await r.client.permit([PEER_A]);
  assert.deepEqual(r.client.permitted(), [PEER_A]);
  assert.equal(r.client.send(PEER_B, Buffer.from('x')), false);
  r.server.peerSend(PEER_B, Buffer.from('still bound at the relay'));
  await flush();
  assert.deepEqual(r.got, []);
  await r.client.permit([PEER_A, PEER_C]);
  const chC = [...r.server.alloc!.channels].find(([, c]) => c.peer === PEER_C)![0];
  assert.notEqual(chC, chB, 'a number the relay still binds to B is never given to C');
  // B's permission is no longer refreshed: after 5 min the relay drops its traffic too.
  await r.run(310_000, 1000);
  assert.ok((r.server.alloc!.perms.get('198.51.100.21') ?? 0) <= r.clock.now(), 'B permission expired at the relay');
  assert.ok((r.server.alloc!.perms.get('198.51.100.20') ?? 0) > r.clock.now(), 'A permission kept alive');
  await r.client.permit([PEER_A, PEER_C, PEER_B]);
  const chB2 = [...r.server.alloc!.channels].find(([, c]) => c.peer === PEER_B)![0];
  assert.equal(chB2, chB, 'B back within the quarantine gets its old number (a refresh at the relay)');
});

test('turn client: a session outlives credentials that expired seconds after the allocation (30 simulated minutes)', async () => {
  const r = await started((clock, n) => mintTurnCredentials(SECRET, `dev${n}`, clock.now(), 3));
  await r.client.permit([PEER_A]);
  for (let minute = 0; minute < 30; minute++) {
    await r.run(60_000, 1000);
    const a = r.server.alloc;
    assert.ok(a, `allocation alive at minute ${minute + 1}`);
    assert.ok((a.perms.get('198.51.100.20') ?? 0) > r.clock.now(), 'permission alive');
    assert.ok([...a.channels.values()].every((c) => c.expires > r.clock.now()), 'channel alive');
    r.server.peerSend(PEER_A, Buffer.from(`m${minute}`));
    assert.equal(r.client.send(PEER_A, Buffer.from(`c${minute}`)), true);
    await flush();
  }
  assert.equal(r.got.length, 30);
  assert.equal(r.server.toPeers.length, 30);
  assert.equal(r.creds.length, 1, 'no new credentials without a new allocation');
  assert.deepEqual(r.events, ['allocated 198.51.100.1:50000']);
  const count = (m: string): number => r.server.log.filter((x) => x === m).length;
  // Lifetime 600 s → Refresh every 300 s; probes every 10 s; permissions every 4 min; channels every 8 min.
  assert.ok(count('Refresh') >= 5 && count('Refresh') <= 6, `refreshes ${count('Refresh')}`);
  assert.ok(count('Allocate') >= 175 && count('Allocate') <= 200, `probes ${count('Allocate')}`);
  assert.ok(count('ChannelBind') >= 4 && count('ChannelBind') <= 5, `channel binds ${count('ChannelBind')}`);
  assert.ok(count('CreatePermission') >= 1 && count('CreatePermission') <= 8, `permissions ${count('CreatePermission')}`);
});

test('turn client: relay restart → the probe gets 401 → lost, re-allocated with fresh credentials, permissions back', async () => {
  const r = await started((clock, n) => mintTurnCredentials(SECRET, `dev${n}`, clock.now(), 3));
  await r.client.permit([PEER_A]);
  await r.run(60_000, 1000);
  r.server.restart();
  const before = r.server.log.length;
  await r.run(12_000, 500);
  assert.deepEqual(r.events, ['allocated 198.51.100.1:50000', 'lost: allocation gone (relay restarted, allocation expired, or our NAT mapping changed)', 'reallocated 198.51.100.1:50001 (was 198.51.100.1:50000)']);
  assert.equal(r.creds.length, 2);
  assert.notEqual(r.creds[1]?.username, r.creds[0]?.username);
  // No authenticated request with the old username reached the restarted relay (it would bind the
  // session to expired credentials and block the new allocation).
  assert.equal(r.server.log[before], 'Allocate');
  assert.ok(r.server.alloc!.perms.has('198.51.100.20'));
  assert.ok(r.client.hasChannel(PEER_A));
  r.server.peerSend(PEER_A, Buffer.from('again'));
  await flush();
  assert.deepEqual(r.got, [[PEER_A, 'again']]);
});

test('turn client: NAT rebinding (the relay sees us from a new port) → re-allocated from there at the next probe; data flows again', async () => {
  const r = await started();
  await r.client.permit([PEER_A]);
  assert.equal(r.client.send(PEER_A, Buffer.from('before')), true);
  r.server.rebind('203.0.113.7:50123');
  // The orphaned allocation swallows what we send and what the peer sends reaches the old port.
  assert.equal(r.client.send(PEER_A, Buffer.from('into the void')), true);
  r.server.peerSend(PEER_A, Buffer.from('lost'));
  await flush();
  assert.deepEqual(r.got, []);
  await r.run(10_500, 500);
  assert.deepEqual(r.events.slice(1), ['lost: allocation gone (relay restarted, allocation expired, or our NAT mapping changed)', 'reallocated 198.51.100.1:50001 (was 198.51.100.1:50000)']);
  assert.equal(r.creds.length, 2, 'fresh credentials for the new 5-tuple');
  assert.equal(r.client.stats().mapped, '203.0.113.7:50123');
  assert.ok(r.client.hasChannel(PEER_A), 'the peer\'s permission and channel are back');
  assert.equal(r.client.send(PEER_A, Buffer.from('after')), true);
  r.server.peerSend(PEER_A, Buffer.from('back'));
  await flush();
  assert.deepEqual(r.server.toPeers.map(([, d]) => d.toString()), ['before', 'after']);
  assert.deepEqual(r.got, [[PEER_A, 'back']]);
});

test('turn client: a second rebinding hands us back our first public port, where the relay still holds the allocation the first one orphaned: checkNow() tells that 437 from ours (authenticated Refresh refused) and reclaims the old allocation; data flows again', async () => {
  const r = await started();
  await r.client.permit([PEER_A]);
  r.server.rebind('203.0.113.7:50123');
  r.client.checkNow();
  await r.run(500, 50);
  assert.deepEqual(r.events.slice(1), ['lost: allocation gone (relay restarted, allocation expired, or our NAT mapping changed)', 'reallocated 198.51.100.1:50001 (was 198.51.100.1:50000)']);
  r.server.returnTo('203.0.113.7:41641');
  // The unauthenticated probe alone says "437: an allocation lives here" — the old one, not ours.
  r.client.checkNow();
  await r.run(500, 50);
  assert.equal(r.events.length, 5, r.events.join('\n'));
  assert.match(r.events[3] ?? '', /^lost: NAT rebinding onto another allocation's address \(441/);
  assert.equal(r.events[4], 'reallocated 198.51.100.1:50000 (was 198.51.100.1:50001)');
  assert.equal(r.creds.length, 2, 'the old allocation is claimed with its own credentials: none minted');
  assert.equal(r.client.send(PEER_A, Buffer.from('after')), true);
  r.server.peerSend(PEER_A, Buffer.from('back'));
  await flush();
  assert.deepEqual(r.server.toPeers.map(([, d]) => d.toString()), ['after']);
  assert.deepEqual(r.got, [[PEER_A, 'back']]);
  // With traffic answered, the keepalive does not second-guess a 437 (no extra Refresh).
  const refreshes = r.server.log.filter((m) => m === 'Refresh').length;
  await r.run(10_500, 500);
  assert.equal(r.server.log.filter((m) => m === 'Refresh').length, refreshes);
  assert.equal(r.events.length, 5);
});

test('turn client: checkNow() after unanswered traffic finds the orphaned allocation at once (mapped address moved), not at the next 10 s keepalive', async () => {
  const r = await started();
  await r.client.permit([PEER_A]);
  await r.run(2_000, 500);
  r.server.mappedInChallenges = true;
  r.server.rebind('203.0.113.7:50999');
  r.client.checkNow();
  await r.run(500, 50);
  assert.deepEqual(r.events.slice(1), ['lost: NAT rebinding (203.0.113.7:41641 → 203.0.113.7:50999)', 'reallocated 198.51.100.1:50001 (was 198.51.100.1:50000)']);
  assert.equal(r.server.orphans.length, 1);
  assert.ok(r.client.hasChannel(PEER_A));
  assert.equal(r.client.send(PEER_A, Buffer.from('after')), true);
  assert.deepEqual(r.server.toPeers.map(([, d]) => d.toString()), ['after']);
});

test('turn client: checkNow() on a healthy allocation is one probe answered 437 and one Refresh that confirms it is ours, nothing lost', async () => {
  const r = await started();
  await r.client.permit([PEER_A]);
  const before = r.server.log.length;
  r.client.checkNow();
  await r.run(500, 50);
  assert.deepEqual(r.server.log.slice(before), ['Allocate', 'Refresh']);
  assert.deepEqual(r.events, ['allocated 198.51.100.1:50000']);
});

test('turn client: a silent relay is lost after the retransmissions; when it answers again, the allocation it kept is resumed', async () => {
  const r = await started();
  await r.client.permit([PEER_A]);
  r.server.down = true;
  await r.run(10_000 + 5_750 + 500, 250);
  assert.deepEqual(r.events.slice(1), ['lost: relay silent']);
  assert.equal(r.client.state, 'recovering');
  assert.equal(r.client.send(PEER_A, Buffer.from('x')), false);
  await r.run(40_000, 500);
  r.server.down = false;
  await r.run(40_000, 500);
  assert.deepEqual(r.events.slice(2), ['reallocated 198.51.100.1:50000 (was 198.51.100.1:50000)']);
  assert.equal(r.creds.length, 1, 'resumed: no new credentials');
  assert.equal(r.client.send(PEER_A, Buffer.from('back')), true);
  assert.deepEqual(r.server.toPeers.map(([, d]) => d.toString()), ['back']);
});

test('turn client: a relay down until the allocation expired → a new allocation with fresh credentials', async () => {
  const r = await started();
  r.server.down = true;
  await r.run(610_000, 1000);
  r.server.down = false;
  await r.run(60_000, 1000);
  assert.equal(r.events.at(-1), 'reallocated 198.51.100.1:50001 (was 198.51.100.1:50000)');
  assert.equal(r.creds.length, 2);
});

test('turn client: a stale nonce (438) is replaced from the answer, without losing anything', async () => {
  const r = await started();
  r.server.nonce = 'nonce-rotated';
  await r.client.permit([PEER_A]);
  assert.ok(r.client.hasChannel(PEER_A));
  await r.run(200_000, 1000);
  assert.deepEqual(r.events, ['allocated 198.51.100.1:50000']);
});

test('turn client: expired or forged credentials → start() rejects with 401 and the client can start again', async () => {
  const expired = rig((clock) => mintTurnCredentials(SECRET, 'dev', clock.now() - 700_000, 600));
  const outcome = (p: Promise<unknown>): Promise<unknown> => p.then(() => null, (e: unknown) => e);
  const p = outcome(expired.client.start());
  await flush();
  const e1 = await p;
  assert.ok(e1 instanceof TurnError && e1.code === 401, String(e1));
  assert.equal(expired.client.state, 'idle');
  const forged = rig((clock) => {
    const c = mintTurnCredentials(SECRET, 'dev', clock.now(), 600);
    return { username: c.username, password: createHmac('sha1', 'not-the-secret').update(c.username).digest('base64') };
  });
  const q = outcome(forged.client.start());
  await flush();
  const e2 = await q;
  assert.ok(e2 instanceof TurnError && e2.code === 401, String(e2));
  const bad = rig(() => ({ username: '', password: 'x' }));
  const s = outcome(bad.client.start());
  await flush();
  assert.match(String(await s), /username/);
  // Started again with good credentials: coturn bound this 5-tuple's session to the refused
  // username, so on a fixed (shared) socket that takes until the session is forgotten (~60 s).
  let good = false;
  const again = rig((clock) => (good ? mintTurnCredentials(SECRET, 'dev', clock.now(), 600) : { username: `${Math.floor(clock.now() / 1000) - 1}:dev`, password: 'x' }));
  const first = outcome(again.client.start());
  await flush();
  assert.ok((await first) instanceof TurnError);
  good = true;
  const second = outcome(again.client.start());
  await flush();
  const e3 = await second;
  assert.ok(e3 instanceof TurnError && e3.code === 437, String(e3));
  again.clock.advance(61_000);
  const third = again.client.start();
  await flush();
  assert.equal(await third, '198.51.100.1:50000');
});

test('turn client: a peer address the relay refuses (403) makes permit() reject; the others keep working', async () => {
  const r = await started();
  await assert.rejects(r.client.permit([PEER_A, '10.1.2.3:4000']), (e: unknown) => e instanceof TurnError && e.code === 403);
  assert.ok(r.client.hasChannel(PEER_A));
  assert.equal(r.client.hasChannel('10.1.2.3:4000'), false);
});

test('turn client: close() deletes the allocation at the relay', async () => {
  const r = await started();
  const c = r.client.close();
  await flush();
  await c;
  assert.equal(r.server.alloc, null);
  assert.equal(r.client.state, 'closed');
  assert.equal(r.client.send(PEER_A, Buffer.from('x')), false);
  await assert.rejects(r.client.permit([PEER_A]), TurnError);
});

test('turn client: on the shared socket, only the relay\'s own datagrams are claimed', async () => {
  const r = await started();
  const cd = Buffer.from([0x40, 0x00, 0x00, 0x00]);
  assert.equal(r.client.handleDatagram(cd, '192.0.2.99:3478'), false, 'not from the relay');
  assert.equal(r.client.handleDatagram(Buffer.from([1, 0, 0, 0, 5, 6, 7, 8]), SERVER), false, 'WireGuard');
  const stranger = encodeMessage(0x0101, Buffer.alloc(12, 3));
  assert.equal(r.client.handleDatagram(stranger, SERVER), false, 'an answer to a transaction that is not ours (magicsock\'s STUN)');
  assert.equal(r.client.handleDatagram(cd, SERVER), true, 'ChannelData from the relay, even for an unknown channel');
});

test('turn client: configuration errors are refused up front', () => {
  const base = { getCredentials: async () => ({ username: 'u', password: 'p' }), log: silent };
  assert.throws(() => new TurnClient({ ...base, server: { host: 'relay.example', port: 3478, transport: 'udp' } }), /IPv4/);
  assert.throws(() => new TurnClient({ ...base, server: { host: '192.0.2.1', port: 0, transport: 'udp' } }), /IPv4/);
  assert.throws(() => new TurnClient({ ...base, server: { host: '192.0.2.1', port: 3478, transport: 'tcp' }, transport: { send: () => {} } }), /UDP only/);
});
