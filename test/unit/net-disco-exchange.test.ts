import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../helper/core/clock.js';
import { makePolicy } from '../../helper/net/candidates.js';
import { DiscoBox, generateDiscoKey } from '../../helper/net/disco.js';
import { discoPair } from '../lib/disco-pair.js';
import { callMeMaybeList, DiscoExchange, PendingCalls, predictedWindow, PENDING_CMM_MS, REPRIME_AFTER_MS, type DiscoExchangeIo } from '../../helper/net/disco-exchange.js';
import { PeerEndpoint } from '../../helper/net/endpoint.js';
import { newCounters } from '../../helper/net/magicsock-api.js';
import { MAX_PREDICTED_PER_PEER } from '../../helper/net/portpredict.js';
import type { NatMapping } from '../../helper/net/stun/client.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {}, child() { return quiet; } };
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('callMeMaybeList: predictions first, our public address first of all when the peer is to probe our sockets, no repeats', () => {
  const cands = ['198.51.100.1:4000', '192.168.1.2:4000'];
  assert.deepEqual(callMeMaybeList([], cands, null), cands);
  assert.deepEqual(callMeMaybeList(['198.51.100.1:4010'], cands, null), ['198.51.100.1:4010', ...cands]);
  assert.deepEqual(callMeMaybeList(['198.51.100.1:4010', '198.51.100.1:4000'], cands, '198.51.100.1:4000'), ['198.51.100.1:4000', '198.51.100.1:4010', '192.168.1.2:4000']);
});

test('predictedWindow: ports around each predicted endpoint by the NAT\'s step, deduplicated, capped', () => {
  const w = predictedWindow(['203.0.113.5:5000', 'not an endpoint'], 2);
  assert.equal(w[0], '203.0.113.5:5000');
  assert.ok(w.includes('203.0.113.5:5002'));
  assert.ok(w.every((e) => (Number(e.split(':')[1]) - 5000) % 2 === 0));
  assert.equal(new Set(w).size, w.length);
  const many = predictedWindow(['203.0.113.5:5000', '203.0.113.5:9000', '203.0.113.6:5000'], 1);
  assert.equal(many.length, MAX_PREDICTED_PER_PEER);
  assert.deepEqual(predictedWindow(['203.0.113.5:5000'], 0), [], 'no step, no window');
});

test('PendingCalls: the newest call per peer is kept, the oldest peer evicted past the cap, a stale call is dropped', () => {
  const p = new PendingCalls(2, 1000);
  p.put('a', { candidates: ['1.2.3.4:1'], opensGate: true }, 0);
  p.put('a', { candidates: ['1.2.3.4:2'], opensGate: true }, 10);
  p.put('b', { candidates: ['1.2.3.4:3'], opensGate: false }, 20);
  p.put('c', { candidates: ['1.2.3.4:4'], opensGate: true }, 30);
  assert.equal(p.size, 2);
  assert.equal(p.take('a', 40), null, 'a was the oldest: evicted');
  assert.deepEqual(p.take('b', 40), { candidates: ['1.2.3.4:3'], opensGate: false });
  assert.equal(p.take('b', 40), null, 'taken once');
  assert.equal(p.take('c', 30 + 1000), null, 'stale');
  assert.equal(p.size, 0);
});

interface Sent {
  how: 'send' | 'prime';
  to: string;
  b: Buffer;
}

function setup(o: { natHint?: NatMapping; portDelta?: number; candidates?: string[] } = {}) {
  const clock = new ManualClock();
  const c = newCounters();
  const { a: boxA, b: boxB, ka: a, kb: b } = discoPair();
  const candidates = o.candidates ?? ['192.168.1.5:41641', '198.51.100.7:41641'];
  const peerInfo = { id: 'bob', discoPublicKey: b.publicKey, wgPublicKey: b.publicKey, candidates, portDelta: o.portDelta ?? 0, ...(o.natHint ? { natHint: o.natHint } : {}) };
  const peers = new Map<string, PeerEndpoint>();
  const machine = { pings: [] as string[], pongs: [] as string[], calls: [] as string[][], gates: [] as boolean[], rtt: null as number | null };
  const makePeer = (): PeerEndpoint => {
    const rec = new PeerEndpoint(peerInfo, a.publicKey, clock.now());
    rec.machine = {
      onPing: (from: string) => machine.pings.push(from),
      onPong: (from: string) => (machine.pongs.push(from), machine.rtt),
      callMeMaybe: (cs: string[], opensGate = true) => (machine.calls.push(cs), machine.gates.push(opensGate)),
      candidates: () => candidates,
    } as unknown as PeerEndpoint['machine'];
    peers.set(rec.id, rec);
    return rec;
  };
  const sent: Sent[] = [];
  const learned: string[] = [];
  const cmmOut: Array<{ id: string; cands: string[]; n: number | undefined; primed?: string[] }> = [];
  const answered: string[] = [];
  const io: DiscoExchangeIo = {
    clock,
    log: quiet,
    c,
    policy: makePolicy({}),
    box: boxA,
    primingTtl: 2,
    closed: () => false,
    peer: (id) => peers.get(id),
    peerByDisco: (key) => [...peers.values()].find((r) => r.peer.discoPublicKey === key),
    learnAddress: (_rec, addr) => learned.push(addr),
    sockFor: () => ({ send: (buf, port, ip) => sent.push({ how: 'send', to: `${ip}:${port}`, b: buf }), prime: (buf, port, ip) => sent.push({ how: 'prime', to: `${ip}:${port}`, b: buf }) }),
    whenPrimed: () => Promise.resolve(),
    self: { isLan: (ep: string) => ep.startsWith('192.168.'), predictedTowards: () => [], publicAddress: '203.0.113.1:41641', candidates: ['192.168.1.2:41641', '203.0.113.1:41641'] },
    birthday: { answered: (_r, _t, from) => (answered.push(from), false), startSpray: () => {} },
    sendCallMeMaybe: (id, cands, n, primed) => cmmOut.push({ id, cands, n, ...(primed && { primed }) }),
  };
  return { clock, c, boxA, boxB, io, ex: new DiscoExchange(io), makePeer, machine, sent, learned, cmmOut, answered };
}

test('disco exchange: a peer\'s ping is answered with a pong to its source, which now speaks for the peer', () => {
  const s = setup();
  s.makePeer();
  const txid = Buffer.alloc(12, 7);
  s.ex.onDisco(s.boxB.seal(s.boxA.publicKey, { type: 'ping', txid }), '198.51.100.7', 41641);
  assert.deepEqual(s.learned, ['198.51.100.7:41641']);
  assert.deepEqual(s.machine.pings, ['198.51.100.7:41641']);
  assert.equal(s.sent.length, 1);
  assert.equal(s.sent[0]?.how, 'send');
  assert.equal(s.sent[0]?.to, '198.51.100.7:41641');
  const pong = s.boxB.open(s.sent[0]!.b);
  assert.ok(pong.ok && pong.message.type === 'pong');
  assert.ok(pong.message.txid.equals(txid));
  assert.equal(pong.message.type === 'pong' && pong.message.observed, '198.51.100.7:41641', 'the pong tells the peer how we see it');
  assert.equal(s.c.disco_ping_rx, 1);
  assert.equal(s.c.disco_pong_tx, 1);
});

test('disco exchange: a source inside the virtual LAN, an unknown key, a forged or malformed datagram change nothing (counted)', () => {
  const s = setup();
  s.makePeer();
  const ping = s.boxB.seal(s.boxA.publicKey, { type: 'ping', txid: Buffer.alloc(12, 1) });
  s.ex.onDisco(ping, '10.66.0.9', 41641);
  assert.equal(s.c.disco_bad_source, 1);
  const stranger = new DiscoBox(generateDiscoKey().privateKey);
  stranger.addPeer(s.boxA.publicKey);
  s.ex.onDisco(stranger.seal(s.boxA.publicKey, { type: 'ping', txid: Buffer.alloc(12, 2) }), '198.51.100.7', 41641);
  assert.equal(s.c.disco_unknown_key, 1);
  const forged = Buffer.from(ping);
  forged[forged.length - 1] = (forged[forged.length - 1] ?? 0) ^ 1;
  s.ex.onDisco(forged, '198.51.100.7', 41641);
  assert.equal(s.c.disco_bad_auth, 1);
  s.ex.onDisco(Buffer.from('hello'), '198.51.100.7', 41641);
  assert.equal(s.c.disco_malformed, 1);
  assert.deepEqual(s.sent, []);
  assert.deepEqual(s.learned, []);
});

test('disco exchange: an unmatched pong goes to birthday probing, a matched one answers the user\'s ping', async () => {
  const s = setup();
  const rec = s.makePeer();
  rec.relay = { state: () => ({ up: false }) } as unknown as PeerEndpoint['relay'];
  const txid = Buffer.alloc(12, 3);
  s.ex.onDisco(s.boxB.seal(s.boxA.publicKey, { type: 'pong', txid, observed: '203.0.113.1:41641' }), '198.51.100.7', 41641);
  assert.deepEqual(s.answered, ['198.51.100.7:41641']);
  assert.equal(s.c.disco_pong_unmatched, 1);
  // A user's ping over the active path: its pong (matched by the path machine) resolves it.
  rec.machine = Object.assign(rec.machine, { state: () => ({ endpoint: '198.51.100.7:41641' }), pingNow: () => txid });
  const done = s.ex.userPing('bob', 1, 1000);
  await tick();
  s.machine.rtt = 12;
  s.ex.onDisco(s.boxB.seal(s.boxA.publicKey, { type: 'pong', txid, observed: '203.0.113.1:41641' }), '198.51.100.7', 41641);
  assert.deepEqual(await done, [{ seq: 1, answered: true, rttMs: 12, via: '198.51.100.7:41641', path: 'direct' }]);
  await assert.rejects(s.ex.userPing('nobody', 1), /unknown peer/);
  await assert.rejects(s.ex.userPing('bob', 0), /1-100/);
});

test('disco exchange: the first ping towards an internet candidate is primed first, again after a long silence; LAN ones never', () => {
  const s = setup();
  const rec = s.makePeer();
  const txid = Buffer.alloc(12, 4);
  s.ex.probe(rec, '198.51.100.7:41641', txid, false);
  assert.deepEqual(s.sent.map((x) => x.how), ['prime', 'send']);
  s.clock.advance(REPRIME_AFTER_MS);
  s.ex.probe(rec, '198.51.100.7:41641', txid, false);
  assert.deepEqual(s.sent.map((x) => x.how), ['prime', 'send', 'send'], 'sent within the window: the mapping is still open');
  s.clock.advance(REPRIME_AFTER_MS + 1);
  s.ex.probe(rec, '198.51.100.7:41641', txid, false);
  assert.deepEqual(s.sent.slice(3).map((x) => x.how), ['prime', 'send']);
  s.sent.length = 0;
  s.ex.probe(rec, '192.168.1.5:41641', txid, false);
  assert.deepEqual(s.sent.map((x) => x.how), ['send']);
  s.ex.probe(rec, '192.168.1.5:41641', txid, true);
  assert.deepEqual(s.sent.map((x) => x.how), ['send', 'prime'], 'a low-TTL ping from the path machine is only primed');
  const opened = s.boxB.open(s.sent[0]!.b);
  assert.ok(opened.ok && opened.message.type === 'ping' && opened.message.txid.equals(txid));
  assert.equal(s.c.path_datagrams, 7);
});

test('disco exchange: a call from a peer not known yet is answered when the peer is added, unless it went stale', () => {
  const s = setup();
  s.ex.handleCallMeMaybe('bob', ['198.51.100.7:41641', '10.66.0.3:41641', 'junk']);
  s.ex.handleCallMeMaybe('bad id!', ['198.51.100.7:41641']);
  assert.equal(s.c.cmm_received, 1);
  assert.equal(s.c.cmm_buffered, 1);
  const rec = s.makePeer();
  s.ex.added(rec);
  assert.deepEqual(s.machine.calls, [['198.51.100.7:41641']], 'validated: no virtual-LAN or malformed candidate');
  s.ex.handleCallMeMaybe('carol', ['198.51.100.8:41641']);
  s.clock.advance(PENDING_CMM_MS);
  s.ex.added(Object.assign(Object.create(PeerEndpoint.prototype) as PeerEndpoint, { peer: { id: 'carol' }, machine: { callMeMaybe: () => assert.fail('stale call answered') } }));
});

test('disco exchange: a call that names which of our candidates the peer primed is a punch only if one is ours now; kept calls remember it', () => {
  const s = setup();
  s.makePeer();
  s.ex.handleCallMeMaybe('bob', ['198.51.100.7:41641'], 0, ['203.0.113.1:41641']);
  s.ex.handleCallMeMaybe('bob', ['198.51.100.7:41641'], 0, ['203.0.113.1:40000', '192.168.1.2:40000']);
  s.ex.handleCallMeMaybe('bob', ['198.51.100.7:41641']);
  assert.deepEqual(s.machine.gates, [true, false, true], 'our current port; our port before a restart; a caller that does not say');
  assert.equal(s.c.cmm_stale, 1);
  s.ex.handleCallMeMaybe('carol', ['198.51.100.8:41641'], 0, ['203.0.113.1:40000']);
  const gates: boolean[] = [];
  s.ex.added(Object.assign(Object.create(PeerEndpoint.prototype) as PeerEndpoint, { peer: { id: 'carol', candidates: [] }, machine: { callMeMaybe: (_c: string[], g: boolean) => gates.push(g) } }));
  assert.deepEqual(gates, [false]);
});

test('disco exchange: a sequential NAT\'s predicted ports are probed within a window, twice per prediction at most', () => {
  const s = setup({ natHint: 'endpoint-dependent', portDelta: 1 });
  const rec = s.makePeer();
  s.ex.handleCallMeMaybe('bob', ['198.51.100.7:41641', '198.51.100.7:50000']);
  const first = s.machine.calls[0] ?? [];
  assert.ok(first.includes('198.51.100.7:50000') && first.includes('198.51.100.7:50001'));
  assert.ok(rec.predicted.has('198.51.100.7:50001'));
  s.ex.handleCallMeMaybe('bob', ['198.51.100.7:41641', '198.51.100.7:50000']);
  s.ex.handleCallMeMaybe('bob', ['198.51.100.7:41641', '198.51.100.7:50000']);
  assert.deepEqual(s.machine.calls[2], ['198.51.100.7:41641'], 'third time: the guess is dropped');
  assert.equal(s.c.predict_refused, 1);
});

test('disco exchange: our call-me-maybe carries our candidates, our public address first when the peer is to probe our sockets', async () => {
  const s = setup();
  const rec = s.makePeer();
  await s.ex.callMeMaybe(rec);
  await s.ex.callMeMaybe(rec, 64);
  assert.deepEqual(s.cmmOut, [
    { id: 'bob', cands: ['192.168.1.2:41641', '203.0.113.1:41641'], n: 0, primed: ['192.168.1.5:41641', '198.51.100.7:41641'] },
    { id: 'bob', cands: ['203.0.113.1:41641', '192.168.1.2:41641'], n: 64, primed: ['192.168.1.5:41641', '198.51.100.7:41641'] },
  ]);
  rec.removed = true;
  await s.ex.callMeMaybe(rec);
  assert.equal(s.cmmOut.length, 2, 'a removed peer is not called');
  assert.equal(s.c.cmm_sent, 2);
});
