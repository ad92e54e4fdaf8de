// When sent traffic counts as unanswered (helper/net/traffic-watch.ts), reading after reading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrafficWatch } from '../../helper/net/traffic-watch.js';

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
  const w = new TrafficWatch();
  w.update([{ key: 'a', txBytes: 5000, rxBytes: 5000 }], 0);
  assert.deepEqual(w.update([{ key: 'a', txBytes: 300, rxBytes: 0 }], 1000), [], 'counters went down: a new peer');
  assert.deepEqual(w.update([{ key: 'a', txBytes: 600, rxBytes: 0 }], 2000), []);
  assert.deepEqual(w.update([{ key: 'a', txBytes: 900, rxBytes: 0 }], 3000), ['a']);
  assert.deepEqual(w.update([], 4000), []);
  assert.deepEqual(w.update([{ key: 'a', txBytes: 2000, rxBytes: 0 }], 5000), [], 'back as a new peer');
});
