// When sent traffic counts as unanswered (helper/net/traffic-watch.ts), reading after reading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { carriesData, REST_SLACK_MS, TrafficWatch } from '../../helper/net/traffic-watch.js';

test('traffic-watch: traffic that gets no answer for a second is reported once', () => {
  const w = new TrafficWatch();
  assert.deepEqual(w.update([{ key: 'a', txBytes: 1000, rxBytes: 1000 }], 0), []);
  // Both directions move: fine.
  assert.deepEqual(w.update([{ key: 'a', txBytes: 2000, rxBytes: 2000 }], 1000), []);
  // The path dies: bytes go out, nothing comes back. The first reading only notes it…
  assert.deepEqual(w.update([{ key: 'a', txBytes: 3000, rxBytes: 2000 }], 2000), []);
  // …a second reading a second later reports it.
  assert.deepEqual(w.update([{ key: 'a', txBytes: 4000, rxBytes: 2000 }], 3000), ['a']);
  // Once per silence.
  assert.deepEqual(w.update([{ key: 'a', txBytes: 5000, rxBytes: 2000 }], 4000), []);
  // An answer re-arms it.
  assert.deepEqual(w.update([{ key: 'a', txBytes: 5100, rxBytes: 2100 }], 5000), []);
  assert.deepEqual(w.update([{ key: 'a', txBytes: 6000, rxBytes: 2100 }], 6000), []);
  assert.deepEqual(w.update([{ key: 'a', txBytes: 7000, rxBytes: 2100 }], 7000), ['a']);
});

test('traffic-watch: idle peers, lone keepalives and one reading in flight are not suspect', () => {
  const w = new TrafficWatch();
  w.update([{ key: 'idle', txBytes: 0, rxBytes: 0 }, { key: 'ka', txBytes: 0, rxBytes: 0 }], 0);
  for (let t = 1000; t <= 60_000; t += 1000) {
    // 'ka' sends a 32-byte WireGuard keepalive every 20 s and never hears back in between.
    const ka = 32 * Math.floor(t / 20_000);
    assert.deepEqual(w.update([{ key: 'idle', txBytes: 0, rxBytes: 0 }, { key: 'ka', txBytes: ka, rxBytes: 0 }], t), []);
  }
  // A handshake whose response was still in flight at one reading, answered by the next.
  const h = new TrafficWatch();
  h.update([{ key: 'p', txBytes: 0, rxBytes: 0 }], 0);
  assert.deepEqual(h.update([{ key: 'p', txBytes: 148, rxBytes: 0 }], 1000), []);
  assert.deepEqual(h.update([{ key: 'p', txBytes: 148, rxBytes: 92 }], 2000), []);
});

test('traffic-watch: a peer re-added (counters start over) or gone is forgotten', () => {
  // The peer never answers here: the one-way wait set to the two-way one, this test is about forgetting.
  const w = new TrafficWatch({ oneWayQuietMs: 1000 });
  w.update([{ key: 'a', txBytes: 5000, rxBytes: 5000 }], 0);
  assert.deepEqual(w.update([{ key: 'a', txBytes: 300, rxBytes: 0 }], 1000), [], 'counters went down: a new peer');
  assert.deepEqual(w.update([{ key: 'a', txBytes: 600, rxBytes: 0 }], 2000), []);
  assert.deepEqual(w.update([{ key: 'a', txBytes: 900, rxBytes: 0 }], 3000), ['a']);
  assert.deepEqual(w.update([], 4000), []);
  assert.deepEqual(w.update([{ key: 'a', txBytes: 2000, rxBytes: 0 }], 5000), [], 'back as a new peer');
});

test('traffic-watch: a one-way stream answered only by passive keepalives every 10 s is not suspect; a dead one is, after 12 s', () => {
  const w = new TrafficWatch();
  w.update([{ key: 's', txBytes: 0, rxBytes: 0 }], 0);
  // A game broadcasting 1000 B/s; the peer's WireGuard sends a 32-byte passive keepalive 10 s
  // after data arrives (and after each keepalive, as data keeps coming).
  let rx = 0;
  for (let t = 1000; t <= 60_000; t += 1000) {
    if (t % 10_000 === 0) rx += 32;
    assert.deepEqual(w.update([{ key: 's', txBytes: t, rxBytes: rx }], t), [], `t=${t}`);
  }
  // The path dies: no keepalive any more. Reported once the silence outlasts the passive keepalive.
  const out: number[] = [];
  for (let t = 61_000; t <= 80_000; t += 1000) if (w.update([{ key: 's', txBytes: t, rxBytes: rx }], t).length > 0) out.push(t);
  assert.deepEqual(out, [73_000]);
});

test('traffic-watch: two-way traffic that stops being answered is still reported after a second', () => {
  const w = new TrafficWatch();
  w.update([{ key: 'p', txBytes: 0, rxBytes: 0 }], 0);
  // A 20 pps ping: about 1700 B each way per second.
  for (let t = 1000; t <= 5000; t += 1000) assert.deepEqual(w.update([{ key: 'p', txBytes: t * 1.7, rxBytes: t * 1.7 }], t), []);
  assert.deepEqual(w.update([{ key: 'p', txBytes: 6000 * 1.7, rxBytes: 5000 * 1.7 }], 6000), []);
  assert.deepEqual(w.update([{ key: 'p', txBytes: 7000 * 1.7, rxBytes: 5000 * 1.7 }], 7000), ['p']);
});

test('traffic-watch: read often while bytes move or an answer is awaited, back off to the idle interval at rest', () => {
  const w = new TrafficWatch({ fastReadMs: 500, idleReadMs: 4000 });
  assert.equal(w.nextReadMs(), 500, 'starts fast');
  let t = 0;
  let tx = 0;
  let rx = 0;
  const read = (dtx: number, drx: number): string[] => {
    tx += dtx;
    rx += drx;
    t += w.nextReadMs();
    return w.update([{ key: 'p', txBytes: tx, rxBytes: rx }], t);
  };
  read(0, 0);
  // At rest the interval doubles up to the idle one; a lone keepalive does not wake it.
  const rest: number[] = [];
  for (let i = 0; i < 6; i++) {
    read(i === 3 ? 32 : 0, 0);
    rest.push(w.nextReadMs());
  }
  assert.deepEqual(rest, [1000, 2000, 4000, 4000, 4000, 4000]);
  // Two-way traffic: back to the fast rate at the first reading that sees it.
  read(1000, 1000);
  assert.equal(w.nextReadMs(), 500);
  // The path dies under that traffic: reported 1-1.5 s after, while the interval stays fast.
  const before = t;
  let reportedAt = -1;
  for (let i = 0; i < 6 && reportedAt < 0; i++) if (read(1000, 0).length > 0) reportedAt = t;
  assert.ok(reportedAt > 0 && reportedAt - before <= 1500, `reported ${reportedAt - before} ms after the last answer`);
  assert.equal(w.nextReadMs(), 500);
});

test('traffic-watch: two-way traffic that stops both ways at once is reported once (the side that only answers)', () => {
  const w = new TrafficWatch({ fastReadMs: 500 });
  let tx = 0;
  let rx = 0;
  const read = (t: number, dtx: number, drx: number): string[] => {
    tx += dtx;
    rx += drx;
    return w.update([{ key: 'p', txBytes: tx, rxBytes: rx }], t);
  };
  read(0, 0, 0);
  for (let t = 500; t <= 3000; t += 500) assert.deepEqual(read(t, 1000, 1000), [], 'a 20 pps ping answered both ways');
  // Nothing reaches us any more, so we answer nothing: silence both ways, a lone keepalive included.
  assert.deepEqual(read(3500, 0, 0), [], 'the first silent reading only starts the clock');
  assert.deepEqual(read(4000, 32, 0), []);
  assert.deepEqual(read(4500, 0, 0), ['p'], 'reported after a second of silence');
  assert.ok(w.stopped.has('p'), 'as a stop (weaker evidence than unanswered traffic)');
  assert.equal(w.nextReadMs(), 1000, 'and the watch slows down again');
  for (let t = 5500; t <= 20_000; t += 1000) assert.deepEqual(read(t, 0, 0), [], 'once per stop');
  // Traffic one way only is the unanswered rule's business, not a stop.
  const o = new TrafficWatch({ oneWayQuietMs: 60_000 });
  o.update([{ key: 'q', txBytes: 0, rxBytes: 0 }], 0);
  for (let t = 500, r = 0; t <= 10_000; t += 500) assert.deepEqual(o.update([{ key: 'q', txBytes: 0, rxBytes: (r += 1000) }], t), [], 'a one-way stream we only receive');
});

test('traffic-watch: a WireGuard handshake and the silence after it (a join) is no stopped flow', () => {
  // One reading's bytes each way, as wireguard-go counts them: initiation 148, response 92,
  // the keepalive (32) the initiator confirms the session with.
  const cases: Array<[string, number, number]> = [
    ['we initiate', 148 + 32, 92],
    ['the peer initiates', 92, 148 + 32],
    ['crossed handshakes', 148 + 92, 148 + 92 + 32],
    ['a retried initiation, answered', 2 * 148, 92],
    ['under load: a cookie reply, then the handshake', 148 + 148 + 32, 64 + 92],
  ];
  for (const [what, dtx, drx] of cases) {
    const w = new TrafficWatch({ fastReadMs: 500 });
    let tx = 0;
    let rx = 0;
    const read = (t: number, a: number, b: number): string[] => w.update([{ key: 'p', txBytes: (tx += a), rxBytes: (rx += b) }], t);
    read(0, 0, 0);
    read(500, dtx, drx);
    // No data yet (the party is still joining): silence both ways, for long.
    for (let t = 1000; t <= 15_000; t += 500) assert.deepEqual(read(t, 0, 0), [], `${what}: not reported at ${t} ms`);
  }
  // The same silence after data both ways is a stop, however few packets (pings, 128 bytes each).
  const w = new TrafficWatch({ fastReadMs: 500 });
  w.update([{ key: 'p', txBytes: 0, rxBytes: 0 }], 0);
  w.update([{ key: 'p', txBytes: 128, rxBytes: 128 }], 500);
  w.update([{ key: 'p', txBytes: 128, rxBytes: 128 }], 1000);
  assert.deepEqual(w.update([{ key: 'p', txBytes: 128, rxBytes: 128 }], 2000), ['p']);
  assert.ok(w.stopped.has('p'));
  // Pings (128 bytes on the wire) at any rate are data, and so is a lone handshake message's worth
  // of data messages (64, 96: one tiny packet).
  for (let n = 1; n <= 40; n++) assert.ok(carriesData(128 * n), `${n} pings`);
  for (const b of [48, 64, 96, 112]) assert.ok(carriesData(b), `${b} bytes`);
  for (const b of [0, 32, 148, 92, 180, 240, 296]) assert.ok(!carriesData(b), `${b} bytes`);
  // A handshake riding along with data is data.
  const d = new TrafficWatch({ fastReadMs: 500 });
  d.update([{ key: 'p', txBytes: 0, rxBytes: 0 }], 0);
  d.update([{ key: 'p', txBytes: 148 + 32 + 5 * 128, rxBytes: 92 + 5 * 128 }], 500);
  d.update([{ key: 'p', txBytes: 820, rxBytes: 732 }], 1000);
  assert.deepEqual(d.update([{ key: 'p', txBytes: 820, rxBytes: 732 }], 2000), ['p']);
});

test('traffic-watch: a reading handed over by the metrics round postpones the own read; at rest by a little more, so the round reads for both', () => {
  const w = new TrafficWatch();
  let t = 0;
  const at = (n: number): Array<{ key: string; txBytes: number; rxBytes: number }> => [{ key: 'p', txBytes: n, rxBytes: n }];
  assert.equal(w.dueInMs(t), 0, 'never read: due now');
  w.update(at(0), t);
  assert.equal(w.dueInMs(t), 500);
  // Rest: the interval grows to 4 s.
  for (let i = 0; i < 5; i++) {
    t += w.nextReadMs();
    w.update(at(0), t);
  }
  assert.equal(w.nextReadMs(), 4000);
  assert.equal(w.dueInMs(t), 4000 + REST_SLACK_MS, 'at rest the own read waits past the shared one');
  // The metrics round reads 3 s later: the own read moves with it.
  t += 3000;
  w.update(at(0), t);
  assert.equal(w.dueInMs(t + 1000), 3000 + REST_SLACK_MS);
  // Bytes move: fast reads, no slack.
  t += 1000;
  w.update(at(10_000), t);
  assert.equal(w.dueInMs(t), 500);
  assert.equal(w.dueInMs(t + 600), 0, 'overdue: read now');
});

test('traffic-watch: `moving` names the peers whose data moved in the latest reading, not keepalives or handshakes', () => {
  const w = new TrafficWatch();
  w.update([{ key: 'a', txBytes: 0, rxBytes: 0 }, { key: 'b', txBytes: 0, rxBytes: 0 }, { key: 'c', txBytes: 0, rxBytes: 0 }], 0);
  assert.deepEqual([...w.moving], [], 'a first reading only starts the counts');
  // a: a game's packets one way; b: one keepalive each way; c: a handshake (initiation + response).
  w.update([{ key: 'a', txBytes: 0, rxBytes: 1400 }, { key: 'b', txBytes: 32, rxBytes: 32 }, { key: 'c', txBytes: 148, rxBytes: 92 }], 1000);
  assert.deepEqual([...w.moving], ['a']);
  w.update([{ key: 'a', txBytes: 0, rxBytes: 1400 }, { key: 'b', txBytes: 64, rxBytes: 64 }, { key: 'c', txBytes: 148, rxBytes: 92 }], 5000);
  assert.deepEqual([...w.moving], [], 'nothing moved since');
});
