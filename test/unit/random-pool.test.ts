import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pooledRandomBytes } from '../../helper/core/random-pool.js';

test('pooled random bytes: the asked length, never shared between calls, across refills; bad lengths refused', () => {
  const seen = new Set<string>();
  const held = pooledRandomBytes(24);
  const copy = Buffer.from(held);
  // 2000 × 24 bytes spans about a dozen refills of the 4 KiB pool.
  for (let i = 0; i < 2000; i++) {
    const b = pooledRandomBytes(24);
    assert.equal(b.length, 24);
    seen.add(b.toString('hex'));
  }
  assert.equal(seen.size, 2000, 'no 24-byte value repeats');
  assert.deepEqual(held, copy, 'a refill does not change bytes already handed out');
  assert.equal(pooledRandomBytes(0).length, 0);
  assert.equal(pooledRandomBytes(4096).length, 4096);
  for (const bad of [-1, 4097, 1.5, Number.NaN]) assert.throws(() => pooledRandomBytes(bad), RangeError);
});
