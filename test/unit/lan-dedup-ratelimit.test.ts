import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DedupWindow } from '../../helper/lan/dedup.js';
import { RateLimiter, TokenBucket } from '../../helper/lan/ratelimit.js';

test('lan dedup: a key repeats as a duplicate only inside the window', () => {
  const d = new DedupWindow(100);
  assert.equal(d.isDuplicate('a', 1000), false);
  assert.equal(d.isDuplicate('a', 1050), true);
  assert.equal(d.isDuplicate('b', 1050), false);
  assert.equal(d.isDuplicate('a', 1099), true); // the window is not extended by duplicates
  assert.equal(d.isDuplicate('a', 1100), false); // a new sighting
  assert.equal(d.isDuplicate('a', 1150), true);
  assert.equal(d.isDuplicate('a', 900), true); // clock stepped back: still inside
});

test('lan dedup: memory is bounded and expired keys are swept', () => {
  const d = new DedupWindow(1000, 50);
  for (let i = 0; i < 500; i++) d.isDuplicate(`k${i}`, 0);
  assert.equal(d.size, 50);
  assert.equal(d.isDuplicate('k499', 1), true); // the newest are kept
  assert.equal(d.isDuplicate('k0', 1), false); // the oldest went
  d.isDuplicate('late', 5000);
  assert.equal(d.size, 1);
  assert.throws(() => new DedupWindow(0));
});

test('lan ratelimit: a bucket passes its burst, then its rate', () => {
  const b = new TokenBucket({ ratePerSec: 10, burst: 5 }, 0);
  let passed = 0;
  for (let i = 0; i < 100; i++) if (b.take(0)) passed++;
  assert.equal(passed, 5);
  assert.equal(b.take(50), false); // half a token
  assert.equal(b.take(100), true); // one token per 100 ms
  assert.equal(b.take(100), false);
  // A long quiet spell refills to the burst, not beyond.
  passed = 0;
  for (let i = 0; i < 100; i++) if (b.take(60_000)) passed++;
  assert.equal(passed, 5);
  assert.equal(b.take(0), false); // clock stepped back: no refill, no crash
});

test('lan ratelimit: per-key buckets, least recently used forgotten', () => {
  const r = new RateLimiter({ ratePerSec: 1, burst: 2 }, 3);
  assert.deepEqual([r.allow('a', 0), r.allow('a', 0), r.allow('a', 0)], [true, true, false]);
  assert.equal(r.allow('b', 0), true); // another source has its own bucket
  r.allow('c', 0);
  r.allow('d', 0); // evicts a (least recently used)
  assert.equal(r.size, 3);
  assert.equal(r.allow('a', 0), true); // a starts afresh
  assert.throws(() => new RateLimiter({ ratePerSec: 0, burst: 1 }));
  assert.throws(() => new RateLimiter({ ratePerSec: 1, burst: 0 }));
});
