import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../helper/core/clock.js';
import { ATTEMPT_MS, SLOT_PROBES, SPRAY_PER_SECOND, SPRAY_SOCKETS, START_AFTER_MS } from '../../helper/net/birthday.js';
import { BIRTHDAY_LATEST_MS, BirthdayRunner, QUEUED_MARGIN_MS, RELAY_FIRST_MS, type BirthdayIo } from '../../helper/net/birthday-runner.js';
import { DISCO_MAGIC, DISCO_MIN_LEN } from '../../helper/net/demux.js';
import { PeerEndpoint } from '../../helper/net/endpoint.js';
import { newCounters } from '../../helper/net/magicsock-api.js';
import type { NatMapping } from '../../helper/net/stun/client.js';
import type { PublicSocket } from '../../helper/net/socket.js';
import type { SpraySockets, SpraySocketsOptions } from '../../helper/net/spraysock.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {}, child() { return quiet; } };
const KEY_A = Buffer.alloc(32, 1).toString('base64');
const KEY_B = Buffer.alloc(32, 2).toString('base64');
// Shaped like sealed disco (the runner only looks at the kind; fromPeer() stands for the box).
const DISCO = Buffer.concat([DISCO_MAGIC, Buffer.alloc(DISCO_MIN_LEN - DISCO_MAGIC.length)]);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A fake socket set: records what the runner asks of it; the test delivers datagrams. */
class FakeSockets {
  opened = false;
  primed: Array<{ ip: string; port: number }> = [];
  kept: unknown = null;
  closed = false;
  constructor(readonly o: Pick<SpraySocketsOptions, 'count' | 'primingTtl' | 'onMessage'>) {}
  async open(): Promise<number> {
    this.opened = true;
    return this.o.count;
  }
  async prime(packet: () => Buffer, targets: ReadonlyArray<{ ip: string; port: number }>): Promise<number> {
    for (let i = 0; i < this.o.count; i++) for (const t of targets) (packet(), this.primed.push(t));
    return this.o.count * targets.length;
  }
  keep(sock: unknown): void {
    this.kept = sock;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

function setup(local: NatMapping, peerNat: NatMapping) {
  const clock = new ManualClock();
  const c = newCounters();
  const peer = new PeerEndpoint(
    { id: 'bob', discoPublicKey: KEY_B, wgPublicKey: KEY_B, candidates: ['192.168.1.5:41641', '198.51.100.7:41641'], natHint: peerNat, portDelta: 0 },
    KEY_A,
    clock.now(),
  );
  const calls: Array<{ ip: string; port: number }> = [];
  const cmm: number[] = [];
  const delivered: string[] = [];
  const machineCalls: string[][] = [];
  // The peer punched at once unless a test says otherwise (peerPunchedAt).
  peer.machine = { callMeMaybe: (c: string[]) => machineCalls.push(c), peerPunchedAt: 0 } as unknown as PeerEndpoint['machine'];
  let socks: FakeSockets | null = null;
  const io: BirthdayIo = {
    clock,
    log: quiet,
    c,
    nat: () => ({ mapping: local, portDelta: 0 }),
    isLan: (ep) => ep.startsWith('192.168.'),
    closed: () => false,
    peers: () => [peer],
    ping: () => DISCO,
    send: (_b, port, ip) => calls.push({ ip, port }),
    openSockets: (o) => (socks = new FakeSockets(o)) as unknown as SpraySockets,
    primingTtl: 2,
    fromPeer: () => true,
    deliver: (_m, ip, port) => delivered.push(`${ip}:${port}`),
    callMeMaybe: (_r, n) => cmm.push(n),
    pathSent: () => ({}),
  };
  return { clock, c, peer, io, calls, cmm, delivered, machineCalls, runner: new BirthdayRunner(io), socks: () => socks };
}

test('birthday runner, hard side: opens sockets, primes towards the peer\'s public address, asks it to probe; the socket it reaches becomes the pin', async () => {
  const s = setup('endpoint-dependent', 'endpoint-independent');
  s.runner.added(s.peer);
  s.clock.advance(START_AFTER_MS);
  await tick();
  const socks = s.socks();
  assert.ok(socks?.opened);
  // Only the public candidate is primed (the LAN one would cost a packet per socket for nothing).
  assert.deepEqual([...new Set(socks.primed.map((t) => `${t.ip}:${t.port}`))], ['198.51.100.7:41641']);
  assert.deepEqual(s.cmm, [SPRAY_SOCKETS]);
  assert.equal(s.c.birthday_attempts, 1);
  const winner = { port: 50123, close: async () => {} } as unknown as PublicSocket;
  socks.o.onMessage(Buffer.from('not disco'), '198.51.100.7', 41641, winner);
  assert.equal(s.peer.pin, null, 'only disco can win the pin');
  socks.o.onMessage(DISCO, '198.51.100.9', 41641, winner);
  assert.equal(s.peer.pin, null, 'only from an endpoint the peer published');
  socks.o.onMessage(DISCO, '198.51.100.7', 41641, winner);
  const pin = s.peer.pin as PeerEndpoint['pin']; // (narrowed to null by the asserts above)
  assert.equal(pin?.key, '198.51.100.7:41641');
  assert.equal(pin?.sock, winner);
  assert.equal(socks.kept, winner);
  assert.deepEqual(s.delivered, ['198.51.100.7:41641'], 'the winning datagram goes on to the demux');
  assert.equal(s.c.birthday_hits, 1);
  // The pinned path is lost: the pin goes and a new attempt is scheduled at once.
  s.runner.pathLost(s.peer);
  assert.equal(s.peer.pin, null);
});

test('birthday runner, hard side: no probe arrives within the attempt, sockets close and it tries again later', async () => {
  const s = setup('endpoint-dependent', 'endpoint-independent');
  s.runner.added(s.peer);
  s.clock.advance(START_AFTER_MS);
  await tick();
  const first = s.socks();
  assert.ok(first);
  s.clock.advance(ATTEMPT_MS);
  assert.ok(first.closed);
  assert.equal(s.peer.spraySocks, null);
  assert.equal(s.c.birthday_failed, 1);
});

test('birthday runner, easy side: probes only an IP the peer published, paced; an answered probe hands the endpoint to the path machine', () => {
  const s = setup('endpoint-independent', 'endpoint-dependent');
  s.runner.startSpray(s.peer, ['203.0.113.9:1000'], 256);
  assert.equal(s.c.birthday_refused, 1, 'an IP the peer never published is not probed');
  s.runner.startSpray(s.peer, ['198.51.100.7:1000'], 256);
  assert.equal(s.c.birthday_attempts, 1);
  assert.ok(s.calls.length >= 1 && s.calls.every((cl) => cl.ip === '198.51.100.7'));
  s.clock.advance(1000);
  const sent = s.calls.length;
  assert.ok(sent > 200 && sent < 300, `paced at ~250/s, sent ${sent}`);
  const txid = s.peer.spray?.txid;
  assert.ok(txid);
  assert.equal(s.runner.answered(s.peer, Buffer.alloc(12), '198.51.100.7:2000'), false, 'another transaction');
  assert.equal(s.runner.answered(s.peer, txid, '198.51.100.7:2000'), true);
  assert.deepEqual(s.machineCalls, [['198.51.100.7:2000']]);
  assert.equal(s.peer.spray, null);
  s.clock.advance(1000);
  assert.equal(s.calls.length, sent, 'no probe after the hit');
});

test('birthday runner waits for a relayed path on its way (the first packet comes first), but not for ever', async () => {
  for (const relayUp of [true, false]) {
    const s = setup('endpoint-dependent', 'endpoint-independent');
    let pending = true;
    s.io.relayPending = () => pending;
    s.runner.added(s.peer);
    s.clock.advance(START_AFTER_MS);
    await tick();
    assert.equal(s.socks(), null, 'no sockets while the relayed path is being set up');
    if (relayUp) {
      pending = false;
      s.clock.advance(START_AFTER_MS);
      await tick();
      assert.ok(s.socks()?.opened, 'the upgrade starts once the relay carries the traffic');
    } else {
      // Looked at again every START_AFTER_MS; the last look before RELAY_FIRST_MS still waits.
      for (let at = START_AFTER_MS; at + START_AFTER_MS < RELAY_FIRST_MS; at += START_AFTER_MS) s.clock.advance(START_AFTER_MS), await tick();
      assert.equal(s.socks(), null);
      s.clock.advance(START_AFTER_MS);
      await tick();
      assert.ok(s.socks()?.opened, `a relay that never answers holds the upgrade ${RELAY_FIRST_MS} ms at most`);
    }
  }
});

/** Sets when the fake path machine says the peer punched (null: not yet). */
function punchedAt(peer: PeerEndpoint, at: number | null): void {
  (peer.machine as unknown as { peerPunchedAt: number | null }).peerPunchedAt = at;
}

test('birthday runner waits while a relay carries the pair: until the peer punched and our pings went unanswered START_AFTER_MS, or BIRTHDAY_LATEST_MS', async () => {
  // The peer punches at 3 s: the attempt comes START_AFTER_MS later, not before.
  const s = setup('endpoint-dependent', 'endpoint-independent');
  s.io.relayUp = () => true;
  punchedAt(s.peer, null);
  s.runner.added(s.peer);
  s.clock.advance(START_AFTER_MS);
  await tick();
  assert.equal(s.socks(), null, 'not while the relay carries the pair and the peer has not punched');
  s.clock.advance(3000 - START_AFTER_MS);
  punchedAt(s.peer, s.clock.now());
  s.clock.advance(START_AFTER_MS - 100);
  await tick();
  assert.equal(s.socks(), null, 'plain punching still has its chance');
  s.clock.advance(100);
  await tick();
  assert.ok(s.socks()?.opened, 'our pings went unanswered START_AFTER_MS after the peer punched');

  // A peer whose punch never arrives: BIRTHDAY_LATEST_MS after it was added at the latest.
  const t = setup('endpoint-dependent', 'endpoint-independent');
  t.io.relayUp = () => true;
  punchedAt(t.peer, null);
  t.runner.added(t.peer);
  for (let at = 0; at + 500 < BIRTHDAY_LATEST_MS; at += 500) t.clock.advance(500), await tick();
  assert.equal(t.socks(), null);
  t.clock.advance(500);
  await tick();
  assert.ok(t.socks()?.opened, `at ${BIRTHDAY_LATEST_MS} ms at the latest`);

  // No relay at all: birthday probing is the only way, START_AFTER_MS as before.
  const u = setup('endpoint-dependent', 'endpoint-independent');
  punchedAt(u.peer, null);
  u.runner.added(u.peer);
  u.clock.advance(START_AFTER_MS);
  await tick();
  assert.ok(u.socks()?.opened);
});

/** Every socket set the runner of `s` opens, in order. */
function recordSockets(s: ReturnType<typeof setup>): FakeSockets[] {
  const opened: FakeSockets[] = [];
  s.io.openSockets = (o) => {
    const f = new FakeSockets(o);
    opened.push(f);
    return f as unknown as SpraySockets;
  };
  return opened;
}

/** A second peer (carol) for the runner of `s`, behind the same kind of NAT as bob. */
function addPeer(s: ReturnType<typeof setup>, id: string, ip: string, nat: NatMapping): PeerEndpoint {
  const rec = new PeerEndpoint(
    { id, discoPublicKey: Buffer.alloc(32, id.length + 3).toString('base64'), wgPublicKey: KEY_B, candidates: [`${ip}:41641`], natHint: nat, portDelta: 0 },
    KEY_A,
    s.clock.now(),
  );
  rec.machine = { callMeMaybe: (c: string[]) => s.machineCalls.push(c), peerPunchedAt: 0 } as unknown as PeerEndpoint['machine'];
  return rec;
}

test('birthday runner, hard side: one attempt at a time until one succeeds; the next starts when a slot frees', async () => {
  const s = setup('endpoint-dependent', 'endpoint-independent');
  const carol = addPeer(s, 'carol', '198.51.100.8', 'endpoint-independent');
  const all = [s.peer, carol];
  s.io.peers = () => all;
  const opened = recordSockets(s);
  s.runner.added(s.peer);
  s.runner.added(carol);
  s.clock.advance(START_AFTER_MS);
  await tick();
  assert.equal(opened.length, 1, 'one attempt at a time before any succeeded');
  assert.equal(s.runner.waiting(carol), true, 'carol waits for the slot (slow priming meanwhile)');
  assert.equal(s.runner.waiting(s.peer), false, 'bob\'s attempt runs');
  // Bob's attempt succeeds: carol's starts at once, not at the next poll.
  const bobSocks = opened[0] as FakeSockets;
  bobSocks.o.onMessage(DISCO, '198.51.100.7', 41641, { port: 50123, close: async () => {} } as unknown as PublicSocket);
  assert.ok(s.peer.pin);
  await tick();
  assert.equal(opened.length, 2, 'carol\'s attempt starts when bob\'s succeeded');
  assert.equal(s.runner.waiting(s.peer), false, 'pinned: nothing to wait for');
});

test('birthday runner, hard side: a failed attempt frees the slot for the next peer, which tries the other TTL; the TTL that succeeded goes first later', async () => {
  const s = setup('endpoint-dependent', 'endpoint-independent');
  const carol = addPeer(s, 'carol', '198.51.100.8', 'endpoint-independent');
  const dave = addPeer(s, 'dave', '198.51.100.9', 'endpoint-independent');
  const all = [s.peer];
  s.io.peers = () => all;
  const opened = recordSockets(s);
  s.runner.added(s.peer);
  s.clock.advance(START_AFTER_MS);
  await tick();
  assert.equal(opened[0]?.o.primingTtl, 2);
  all.push(carol);
  s.runner.added(carol);
  s.clock.advance(START_AFTER_MS);
  await tick();
  assert.equal(opened.length, 1, 'carol waits while bob\'s attempt runs');
  s.clock.advance(ATTEMPT_MS - START_AFTER_MS);
  await tick();
  assert.ok(opened[0]?.closed, 'bob\'s first attempt failed');
  assert.equal(opened.length, 2, 'carol\'s starts as the slot frees');
  assert.equal(opened[1]?.o.primingTtl, 3, 'with the TTL that did not just fail (behind a CGNAT the usual one always fails)');
  s.clock.advance(ATTEMPT_MS);
  await tick();
  // Bob's second attempt (one hop further) ran after carol's; it succeeds.
  const bob2 = opened.find((f, i) => i >= 2 && !f.closed);
  assert.equal(bob2?.o.primingTtl, 3);
  bob2?.o.onMessage(DISCO, '198.51.100.7', 41641, { port: 50123, close: async () => {} } as unknown as PublicSocket);
  assert.ok(s.peer.pin);
  // A later peer starts with the TTL that worked.
  all.push(dave);
  s.runner.added(dave);
  s.clock.advance(START_AFTER_MS);
  await tick();
  const daves = opened.filter((f) => f.primed.some((t) => t.ip === '198.51.100.9'));
  assert.equal(daves[0]?.o.primingTtl, 3, 'the learned TTL goes first');
});

test('birthday runner, easy side: a probe request arriving while one runs is queued, then probed with the time its sockets have left', () => {
  const s = setup('endpoint-independent', 'endpoint-dependent');
  const carol = addPeer(s, 'carol', '198.51.100.8', 'endpoint-dependent');
  const dave = addPeer(s, 'dave', '198.51.100.9', 'endpoint-dependent');
  s.io.peers = () => [s.peer, carol, dave];
  s.runner.startSpray(s.peer, ['198.51.100.7:1000'], 256);
  assert.ok(s.peer.spray);
  s.runner.startSpray(carol, ['198.51.100.8:1000'], 256);
  assert.equal(carol.spray, null, 'one at a time before any succeeded');
  assert.equal(s.c.birthday_refused, 0, 'queued, not refused');
  s.clock.advance(2000);
  const txid = s.peer.spray?.txid;
  assert.ok(txid);
  s.runner.answered(s.peer, txid, '198.51.100.7:2000');
  assert.ok(carol.spray, 'carol\'s request is probed as bob\'s attempt ends');
  const expect = Math.floor(((ATTEMPT_MS - QUEUED_MARGIN_MS - 2000) * SPRAY_PER_SECOND) / 1000);
  const before = s.calls.length;
  s.clock.advance(60_000);
  assert.equal(s.calls.filter((c) => c.ip === '198.51.100.8').length, expect, 'no probes after the peer\'s sockets closed');
  assert.ok(s.calls.length - before <= expect);
  // After a success two run at once; a third waits, and one that waited too long is dropped.
  s.runner.startSpray(carol, ['198.51.100.8:1000'], 256);
  s.runner.startSpray(s.peer, ['198.51.100.7:1000'], 256);
  assert.ok(carol.spray && s.peer.spray, 'two at once after a success');
  s.runner.startSpray(dave, ['198.51.100.9:1000'], 256);
  assert.equal(dave.spray, null, 'queued');
  s.clock.advance(500);
  assert.equal(dave.spray, null);
  // A request whose sockets have (nearly) closed by its turn is dropped.
  s.runner.startSpray(dave, ['198.51.100.9:1000'], 256, s.clock.now() - ATTEMPT_MS + QUEUED_MARGIN_MS + 500);
  assert.equal(dave.spray, null, 'too late: the peer\'s sockets close within a second');
  assert.equal(s.c.birthday_refused, 1);
});

test('birthday runner, easy side: an attempt without a hit after SLOT_PROBES probes no longer holds the slot', () => {
  const s = setup('endpoint-independent', 'endpoint-dependent');
  const carol = addPeer(s, 'carol', '198.51.100.8', 'endpoint-dependent');
  s.io.peers = () => [s.peer, carol];
  s.runner.startSpray(s.peer, ['198.51.100.7:1000'], 256);
  s.runner.startSpray(carol, ['198.51.100.8:1000'], 256);
  assert.equal(carol.spray, null, 'queued');
  const at = Math.ceil(((SLOT_PROBES - 1) * 1000) / SPRAY_PER_SECOND);
  s.clock.advance(at - 100);
  assert.equal(carol.spray, null);
  s.clock.advance(200);
  assert.ok(carol.spray, 'starts once bob\'s attempt has sent SLOT_PROBES probes without a hit');
  assert.ok(s.peer.spray, 'bob\'s goes on');
  assert.equal(s.c.birthday_refused, 0);
});
