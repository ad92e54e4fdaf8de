// Port prediction for sequential symmetric NATs (helper/net/portpredict.ts) and the gating rule it
// needs in the path machine: pure, with a manual clock.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../helper/core/clock.js';
import { PathMachine } from '../../helper/net/path.js';
import { detectPortDelta, FlowLog, MAX_DETECTED_DELTA, predictionWindow, predictPort, ProbeBudget } from '../../helper/net/portpredict.js';

const IP = '203.0.113.6';

test('flow log: a new destination opens the next flow; traffic within the idle time keeps it; silence ends it', () => {
  const f = new FlowLog({ idleMs: 30_000 });
  assert.equal(f.note('203.0.113.2:3478', 0), 0);
  assert.equal(f.note('203.0.113.2:3479', 1), 1);
  assert.equal(f.note('203.0.113.2:3478', 29_000), 0, 'same flow, mapping still alive');
  assert.equal(f.note('198.51.100.2:41641', 29_001), 2);
  assert.equal(f.indexOf('203.0.113.2:3479', 30_001), 1);
  assert.equal(f.indexOf('203.0.113.2:3479', 30_002), null, 'idle past the NAT timeout: gone');
  assert.equal(f.note('203.0.113.2:3479', 40_000), 3, 'a new mapping, a new port');
  assert.equal(f.opened, 4);
  const small = new FlowLog({ idleMs: 10, maxFlows: 3 });
  for (let i = 0; i < 10; i++) small.note(`203.0.113.9:${1000 + i}`, i);
  assert.equal(small.indexOf('203.0.113.9:1009', 9), 9, 'bounded, newest kept');
  assert.equal(small.indexOf('203.0.113.9:1000', 9), null);
});

test('delta detection: a constant small step per flow is sequential; equal, random, mixed or lone samples are not', () => {
  assert.equal(detectPortDelta([{ idx: 0, ip: IP, port: 40000 }, { idx: 1, ip: IP, port: 40002 }]), 2);
  assert.equal(detectPortDelta([{ idx: 5, ip: IP, port: 40010 }, { idx: 2, ip: IP, port: 40004 }]), 2, 'order of answers does not matter');
  assert.equal(detectPortDelta([{ idx: 3, ip: IP, port: 40006 }, { idx: 7, ip: IP, port: 40014 }]), 2, 'flows between the samples are counted');
  assert.equal(detectPortDelta([{ idx: 0, ip: IP, port: 5000 }, { idx: 1, ip: IP, port: 4999 }]), -1, 'downwards');
  assert.equal(detectPortDelta([{ idx: 0, ip: IP, port: 40000 }, { idx: 1, ip: IP, port: 40000 }]), 0, 'one mapping: not symmetric');
  assert.equal(detectPortDelta([{ idx: 0, ip: IP, port: 40000 }, { idx: 1, ip: IP, port: 51234 }]), 0, 'random');
  assert.equal(detectPortDelta([{ idx: 0, ip: IP, port: 40000 }, { idx: 1, ip: IP, port: 40000 + MAX_DETECTED_DELTA + 1 }]), 0);
  assert.equal(detectPortDelta([{ idx: 0, ip: IP, port: 40000 }, { idx: 2, ip: IP, port: 40003 }]), 0, 'not a whole step per flow');
  assert.equal(detectPortDelta([{ idx: 0, ip: IP, port: 40000 }, { idx: 1, ip: IP, port: 40002 }, { idx: 2, ip: IP, port: 40007 }]), 0, 'steps disagree');
  assert.equal(detectPortDelta([{ idx: 0, ip: IP, port: 40000 }, { idx: 1, ip: '203.0.113.10', port: 40002 }]), 0, 'two public IPs');
  assert.equal(detectPortDelta([{ idx: 0, ip: IP, port: 40000 }]), 0);
  assert.equal(detectPortDelta([{ idx: 4, ip: IP, port: 40000 }, { idx: 4, ip: IP, port: 40000 }]), 0, 'the same flow twice is one sample');
  assert.equal(detectPortDelta([]), 0);
});

test('prediction: the port of a later flow follows from the latest sample; out of range is null', () => {
  const ref = { idx: 1, ip: IP, port: 40002 };
  assert.equal(predictPort(ref, 2, 4), 40008);
  assert.equal(predictPort(ref, 2, 0), 40000, 'earlier flows too');
  assert.equal(predictPort(ref, 0, 4), null);
  assert.equal(predictPort({ idx: 0, ip: IP, port: 65534 }, 2, 1), null);
  assert.equal(predictPort({ idx: 5, ip: IP, port: 3 }, 1, 1), null);
});

test('prediction window: the told port first, then k·delta for k = -1..8, bounded and in range', () => {
  assert.deepEqual(predictionWindow(IP, 40010, 2), [40010, 40012, 40008, 40014, 40016, 40018, 40020, 40022, 40024, 40026].map((p) => `${IP}:${p}`));
  assert.equal(predictionWindow(IP, 40010, 1).length, 10);
  assert.deepEqual(predictionWindow(IP, 65534, 1), [65534, 65535, 65533].map((p) => `${IP}:${p}`));
  assert.deepEqual(predictionWindow(IP, 40010, -1, -1, 2), [40010, 40009, 40011, 40008].map((p) => `${IP}:${p}`), 'a downward step');
  assert.deepEqual(predictionWindow(IP, 40010, 0), [], 'no delta, no guessing');
  assert.deepEqual(predictionWindow(IP, 40010, MAX_DETECTED_DELTA + 1), []);
  assert.deepEqual(predictionWindow(IP, 40010, 1.5), []);
});

test('probe budget: at most 256 per attempt, 100/s on average, two attempts per prediction, nothing after success', () => {
  const b = new ProbeBudget();
  assert.equal(b.take(0), false, 'no attempt open: nothing goes');
  assert.equal(b.begin('a'), true);
  let sent = 0;
  // Asked 1000 times per second for 10 s: the bucket lets 32 through at once, then 100/s.
  for (let t = 0; t < 10_000; t++) if (b.take(t)) sent++;
  assert.equal(sent, 256, 'capped per attempt');
  const r = new ProbeBudget();
  r.begin('x');
  let inFirstSecond = 0;
  for (let t = 0; t < 1000; t++) if (r.take(t)) inFirstSecond++;
  assert.ok(inFirstSecond >= 100 && inFirstSecond <= 132, `~100/s plus a burst of 32, got ${inFirstSecond}`);
  assert.equal(b.begin('a'), true, 'second attempt for the same prediction');
  assert.equal(b.take(20_000), true);
  assert.equal(b.begin('a'), false, 'a third is refused: stay relayed');
  assert.equal(b.take(30_000), false);
  assert.equal(b.begin('b'), true, 'a new prediction (the NAT moved) may be tried');
  b.end();
  assert.equal(b.take(40_000), false, 'after success nothing more is spent');
  assert.equal(b.begin('b'), true, 'after a success the same prediction may be tried again (path lost)');
  assert.ok(b.refused > 0 && b.attempts === 4);
});

function machine(opens: boolean) {
  const clock = new ManualClock(0);
  const sent: Array<{ ep: string; lowTtl: boolean; txid: Buffer }> = [];
  const m = new PathMachine(
    {
      clock,
      gate: true,
      isLan: () => false,
      peerCallOpensGate: () => opens,
      localNat: () => 'endpoint-dependent',
      peerNat: () => 'endpoint-independent',
      io: { ping: (ep, txid, lowTtl) => sent.push({ ep, lowTtl, txid }), callMeMaybe: () => {}, state: () => {} },
    },
    ['203.0.113.6:41641'],
  );
  return { clock, sent, m };
}

test('path gate behind a sequential NAT: the peer\'s call-me-maybe does not open it, the peer\'s ping does', () => {
  const h = machine(false);
  h.m.start();
  h.m.callMeMaybe(['203.0.113.6:41641']);
  h.clock.advance(2000);
  assert.ok(h.sent.length > 2);
  assert.ok(h.sent.every((s) => s.lowTtl), 'only priming packets until the peer reached our port');
  assert.equal(h.m.peerHasPunched, false);
  const n = h.sent.length;
  h.m.onPing('203.0.113.6:41641');
  assert.ok(h.sent.length > n && h.sent.slice(n).every((s) => !s.lowTtl), 'the ping opens it at once');
  // Default (any other NAT): call-me-maybe opens it, as before.
  const d = machine(true);
  d.m.start();
  d.m.callMeMaybe(['203.0.113.6:41641']);
  assert.equal(d.m.peerHasPunched, true);
  assert.equal(d.sent.at(-1)?.lowTtl, false);
});

test('path: a direct path through an endpoint the peer named only in call-me-maybe survives its published list', () => {
  const h = machine(true);
  h.m.start();
  h.m.callMeMaybe(['203.0.113.6:40014']);
  const ping = [...h.sent].reverse().find((x) => x.ep === '203.0.113.6:40014');
  assert.ok(ping && !ping.lowTtl);
  h.clock.advance(3);
  assert.equal(h.m.onPong('203.0.113.6:40014', ping.txid), 3);
  assert.equal(h.m.state().endpoint, '203.0.113.6:40014');
  // The peer's published list (its STUN port) never names the predicted port: the path stays.
  h.m.setCandidates(['203.0.113.6:40000', '198.51.100.2:41641']);
  assert.deepEqual([h.m.state().kind, h.m.state().endpoint], ['direct', '203.0.113.6:40014']);
  // A published endpoint in use that the list drops is still left at once (unchanged rule).
  const g = machine(true);
  g.m.start();
  const p2 = g.sent.find((x) => x.ep === '203.0.113.6:41641')!;
  g.m.onPong('203.0.113.6:41641', p2.txid);
  assert.equal(g.m.state().kind, 'direct');
  g.m.setCandidates(['203.0.113.6:50000']);
  assert.equal(g.m.state().kind, 'connecting');
});

test('path: endpoints named only in call-me-maybe outlive a published-list update for one call-me-maybe interval', () => {
  const h = machine(true);
  h.m.start();
  h.m.callMeMaybe(['203.0.113.6:40014']);
  h.m.setCandidates(['203.0.113.6:40000']);
  assert.ok(h.m.candidates().includes('203.0.113.6:40014'), 'kept right after');
  h.clock.advance(30_001);
  h.m.setCandidates(['203.0.113.6:40000']);
  assert.ok(!h.m.candidates().includes('203.0.113.6:40014'), 'forgotten once not told again');
  // Named in both: it is a published candidate like any other.
  h.m.callMeMaybe(['203.0.113.6:40000']);
  h.clock.advance(60_000);
  h.m.setCandidates(['203.0.113.6:40000']);
  assert.ok(h.m.candidates().includes('203.0.113.6:40000'));
});
