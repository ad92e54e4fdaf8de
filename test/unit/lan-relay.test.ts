import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../helper/core/clock.js';
import { createLogger } from '../../helper/core/log.js';
import type { CapturedDatagram, GroupTarget } from '../../helper/lan/capture.js';
import { encodeEnvelope, parseEnvelope, type Envelope } from '../../helper/lan/envelope.js';
import type { InjectDatagram } from '../../helper/lan/inject.js';
import type { LanRelayIo, RelayIoHandlers } from '../../helper/lan/linux.js';
import { DEFAULT_GROUPS, LanRelay, type LanRelayOptions } from '../../helper/lan/relay.js';
import { OwnSenders } from '../../helper/net/own-senders.js';

const log = createLogger({ test: 'lan-relay' }, () => undefined);
const PORT = 7654;
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

class FakeIo implements LanRelayIo {
  h: RelayIoHandlers | undefined;
  sent: Array<{ msg: Buffer; ip: string; port: number }> = [];
  injected: InjectDatagram[] = [];
  targets: { ports: readonly number[]; groups: readonly GroupTarget[] } | undefined;
  closed = false;
  failInject = false;
  deliver: ((msg: Buffer, ip: string, port: number) => void) | undefined;
  async start(h: RelayIoHandlers): Promise<void> {
    this.h = h;
  }
  async setTargets(ports: readonly number[], groups: readonly GroupTarget[]): Promise<void> {
    this.targets = { ports, groups };
  }
  send(msg: Buffer, ip: string, port: number): void {
    this.sent.push({ msg, ip, port });
    this.deliver?.(msg, ip, port);
  }
  noListener = false;
  async inject(d: InjectDatagram): Promise<boolean> {
    if (this.failInject) throw new Error('no');
    if (this.noListener) return false;
    this.injected.push(d);
    return true;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  capture(d: Partial<CapturedDatagram> = {}): void {
    this.h!.onCaptured({ srcIp: '198.51.100.2', srcPort: 27005, dst: '255.255.255.255', dstPort: 27015, payload: Buffer.from('discover'), ...d });
  }
}

function relay(over: Partial<LanRelayOptions> = {}): { r: LanRelay; io: FakeIo; clock: ManualClock } {
  const io = new FakeIo();
  const clock = new ManualClock();
  const r = new LanRelay({ selfVirtualIp: '10.66.0.1', peers: () => ['10.66.0.2', '10.66.0.3'], ports: [27015], groups: DEFAULT_GROUPS, relayPort: PORT, log, clock, io, ...over });
  return { r, io, clock };
}

const env = (over: Partial<Envelope> = {}): Buffer =>
  encodeEnvelope({ origin: '10.66.0.2', srcPort: 27005, dst: '255.255.255.255', dstPort: 27015, hops: 0, id: 'aaaaaaaa00000001', payload: Buffer.from('hi'), ...over });

test('lan relay: start watches the configured ports and groups; close closes the I/O', async () => {
  const { r, io } = relay();
  await r.start();
  assert.deepEqual(io.targets?.ports, [27015]);
  assert.deepEqual(io.targets?.groups.map((g) => `${g.group}:${g.port}`), [...DEFAULT_GROUPS]);
  await r.setPorts([27015, 27016], ['224.0.2.60:4445']);
  assert.deepEqual(io.targets?.ports, [27015, 27016]);
  assert.equal(io.targets?.groups.length, 1);
  await assert.rejects(r.setPorts([PORT]), /relay's own port/);
  await assert.rejects(r.setPorts([0]), /1-65535/);
  await assert.rejects(r.setPorts([1], ['10.0.0.1:5']), /multicast-group:port/);
  await r.close();
  assert.ok(io.closed);
  assert.throws(() => relay({ selfVirtualIp: '127.0.0.1' }), /virtual IP/);
});

test('lan relay: a start that fails leaves nothing behind', async () => {
  const { r, io } = relay();
  io.setTargets = async () => {
    throw new Error('nft: Operation not permitted');
  };
  await assert.rejects(r.start(), /not permitted/);
  assert.ok(io.closed);
});

test('lan relay: a captured datagram goes once to every other member, with its origin and source port', async () => {
  const { r, io } = relay({ peers: () => ['10.66.0.2', '10.66.0.3', '10.66.0.1', 'bogus', '10.66.0.2'] });
  await r.start();
  io.capture();
  assert.deepEqual(io.sent.map((s) => `${s.ip}:${s.port}`), ['10.66.0.2:7654', '10.66.0.3:7654']);
  const p = parseEnvelope(io.sent[0]!.msg);
  assert.ok(p.ok);
  assert.deepEqual({ ...p.envelope, id: '' }, { origin: '10.66.0.1', srcPort: 27005, dst: '255.255.255.255', dstPort: 27015, hops: 0, id: '', payload: Buffer.from('discover') });
  assert.deepEqual(r.counters().captured, 1);
  assert.deepEqual(r.counters().forwarded, 2);
});

test('lan relay: copies of one datagram out of several interfaces count once; a later repeat is sent', async () => {
  const { r, io, clock } = relay();
  await r.start();
  io.capture({ srcIp: '198.51.100.2' });
  io.capture({ srcIp: '192.0.2.7' }); // same socket, another interface
  assert.equal(io.sent.length, 2);
  assert.equal(r.counters().droppedDuplicate, 1);
  clock.advance(150);
  io.capture();
  assert.equal(io.sent.length, 4);
  io.capture({ payload: Buffer.from('other') });
  assert.equal(io.sent.length, 6);
});

test('lan relay: a capture flood is cut to the burst, then to the rate', async () => {
  const { r, io, clock } = relay({ limits: { perSource: { ratePerSec: 10, burst: 20 }, captureTotal: { ratePerSec: 1000, burst: 1000 } } });
  await r.start();
  for (let i = 0; i < 500; i++) io.capture({ payload: Buffer.from(`f${i}`) });
  assert.equal(r.counters().forwarded, 2 * 20);
  assert.equal(r.counters().droppedRateLimited, 480);
  clock.advance(1000);
  for (let i = 0; i < 500; i++) io.capture({ payload: Buffer.from(`g${i}`) });
  assert.equal(r.counters().forwarded, 2 * 30);
  // Another game (another source port) is not starved by the flooder.
  io.capture({ srcPort: 40000, payload: Buffer.from('other game') });
  assert.equal(r.counters().forwarded, 2 * 31);
});

test('lan relay: an envelope from a member relay is injected with the sender as source', async () => {
  const { r, io } = relay();
  await r.start();
  io.h!.onEnvelope(env(), { address: '10.66.0.2', port: PORT });
  io.h!.onEnvelope(env({ dst: '224.0.0.251', dstPort: 5353, srcPort: 5353, id: 'aaaaaaaa00000002' }), { address: '10.66.0.2', port: PORT });
  await flush();
  assert.deepEqual(io.injected, [
    { srcIp: '10.66.0.2', srcPort: 27005, dst: '255.255.255.255', dstPort: 27015, payload: Buffer.from('hi') },
    { srcIp: '10.66.0.2', srcPort: 5353, dst: '224.0.0.251', dstPort: 5353, payload: Buffer.from('hi') },
  ]);
  assert.equal(r.counters().injected, 2);
  assert.equal(r.counters().received, 2);
});

test('lan relay: refuses envelopes that are malformed, spoofed, looping, duplicate or not enabled here', async () => {
  const { r, io } = relay();
  await r.start();
  const from = { address: '10.66.0.2', port: PORT };
  io.h!.onEnvelope(Buffer.from('garbage'), from);
  io.h!.onEnvelope(env(), { address: '10.66.0.3', port: PORT }); // origin is not the sender
  io.h!.onEnvelope(env(), { address: '10.66.0.2', port: 5000 }); // not from the relay port
  io.h!.onEnvelope(env({ origin: '10.66.0.9' }), { address: '10.66.0.9', port: PORT }); // not a member
  assert.equal(r.counters().droppedInvalid, 4);
  io.h!.onEnvelope(env({ hops: 1 }), from);
  io.h!.onEnvelope(env({ origin: '10.66.0.1' }), { address: '10.66.0.1', port: PORT });
  assert.equal(r.counters().droppedLoop, 2);
  io.h!.onEnvelope(env({ dstPort: 9999 }), from);
  io.h!.onEnvelope(env({ dst: '239.1.2.3', dstPort: 5353 }), from);
  assert.equal(r.counters().droppedPolicy, 2);
  io.h!.onEnvelope(env(), from);
  io.h!.onEnvelope(env(), from);
  assert.equal(r.counters().droppedDuplicate, 1);
  await flush();
  assert.equal(io.injected.length, 1);
  assert.equal(r.counters().received, 10);
  io.noListener = true;
  io.h!.onEnvelope(env({ id: 'aaaaaaaa000000fe' }), from);
  await flush();
  assert.equal(r.counters().droppedNoListener, 1);
  io.noListener = false;
  io.failInject = true;
  io.h!.onEnvelope(env({ id: 'aaaaaaaa000000ff' }), from);
  await flush();
  assert.equal(r.counters().errors, 1);
  assert.equal(r.counters().injected, 1);
});

test('lan relay: per-origin limit on receipt', async () => {
  const { r, io, clock } = relay({ limits: { perOrigin: { ratePerSec: 5, burst: 10 } } });
  await r.start();
  for (let i = 0; i < 100; i++) io.h!.onEnvelope(env({ id: `bbbbbbbb${i.toString(16).padStart(8, '0')}` }), { address: '10.66.0.2', port: PORT });
  for (let i = 0; i < 3; i++) io.h!.onEnvelope(env({ origin: '10.66.0.3', id: `cccccccc${i.toString(16).padStart(8, '0')}` }), { address: '10.66.0.3', port: PORT });
  await flush();
  assert.equal(r.counters().injected, 13);
  assert.equal(r.counters().droppedRateLimited, 90);
  clock.advance(1000);
  io.h!.onEnvelope(env({ id: 'dddddddd00000000' }), { address: '10.66.0.2', port: PORT });
  await flush();
  assert.equal(r.counters().injected, 14);
});

test('lan relay: four members: one broadcast reaches each other member exactly once, and nothing more moves', async () => {
  const ips = ['10.66.0.1', '10.66.0.2', '10.66.0.3', '10.66.0.4'];
  const nodes = ips.map((ip) => relay({ selfVirtualIp: ip, peers: () => ips.filter((x) => x !== ip) }));
  const byIp = new Map(nodes.map((n, i) => [ips[i]!, n]));
  for (const [i, n] of nodes.entries()) {
    n.io.deliver = (msg, ip, port) => byIp.get(ip)?.io.h?.onEnvelope(msg, { address: ips[i]!, port });
    // A local game that answers every injected discovery with a broadcast of its own: the worst
    // case for loops. Its answer is captured like any local datagram.
    const inject = n.io.inject.bind(n.io);
    n.io.inject = async (d) => {
      const sent = await inject(d);
      if (d.payload.toString() === 'discover') n.io.capture({ payload: Buffer.from(`answer from ${ips[i]}`) });
      return sent;
    };
  }
  await Promise.all(nodes.map((n) => n.r.start()));
  nodes[0]!.io.capture();
  for (let k = 0; k < 5; k++) await flush();
  const discover = nodes.map((n) => n.io.injected.filter((d) => d.payload.toString() === 'discover').length);
  assert.deepEqual(discover, [0, 1, 1, 1]);
  // Each answer reaches the three others once; nobody answers an answer.
  const answers = nodes.map((n) => n.io.injected.filter((d) => d.payload.toString().startsWith('answer')).length);
  assert.deepEqual(answers, [3, 2, 2, 2]);
  const wire = nodes.reduce((s, n) => s + n.io.sent.length, 0);
  assert.equal(wire, 3 + 3 * 3); // N-1 envelopes per captured datagram
  for (const n of nodes) assert.equal(n.r.counters().droppedLoop + n.r.counters().droppedInvalid, 0);
});

test("lan relay: the helper's own discovery searches (port mapper's SSDP) are not carried, a game's from another socket are", async () => {
  const own = new OwnSenders();
  const { r, io } = relay({ ownSenders: own });
  await r.start();
  const search = { srcIp: '198.51.100.2', srcPort: 41000, dst: '239.255.255.250', dstPort: 1900, payload: Buffer.from('M-SEARCH * HTTP/1.1\r\n\r\n') };
  const release = own.add('198.51.100.2', 41000);
  io.capture(search);
  assert.equal(io.sent.length, 0, 'our own search stays home');
  assert.equal(r.counters().captured, 0, 'and is not counted as a game datagram');
  io.capture({ ...search, srcPort: 41001 });
  assert.equal(io.sent.length, 2, "a game's search from another socket goes to both peers");
  release();
  release();
  assert.equal(own.has('198.51.100.2', 41000), false, 'released once its socket closed');
  io.capture({ ...search, payload: Buffer.from('M-SEARCH * HTTP/1.1\r\nMX: 2\r\n\r\n') });
  assert.equal(io.sent.length, 4, 'a later socket on that port is somebody else');
  await r.close();
});

test('own senders: counted per socket, so one closing leaves another on the same address registered', () => {
  const own = new OwnSenders();
  const a = own.add('192.0.2.1', 5000);
  const b = own.add('192.0.2.1', 5000);
  a();
  assert.equal(own.has('192.0.2.1', 5000), true);
  b();
  assert.equal(own.has('192.0.2.1', 5000), false);
  assert.equal(own.has('192.0.2.1', 5001), false);
});
