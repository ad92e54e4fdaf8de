import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../helper/core/clock.js';
import { ATTEMPT_MS, SPRAY_SOCKETS, START_AFTER_MS } from '../../helper/net/birthday.js';
import { BirthdayRunner, RELAY_FIRST_MS, type BirthdayIo } from '../../helper/net/birthday-runner.js';
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
  peer.machine = { callMeMaybe: (c: string[]) => machineCalls.push(c) } as unknown as PeerEndpoint['machine'];
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
