// Random bytes for the hot path (disco nonces, transaction ids), taken from a pool filled a few KiB
// at a time: in a join storm a helper seals thousands of pings, and one crypto.randomBytes call
// each (a trip through OpenSSL for 12-24 bytes) was ~5 % of its CPU. Same CSPRNG, fewer calls.

import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let used = POOL_BYTES;

/** n fresh random bytes (n <= 4096) in a buffer of their own: no two calls share a byte. */
export function pooledRandomBytes(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > POOL_BYTES) throw new RangeError(`pooledRandomBytes: ${n} is not in 0..${POOL_BYTES}`);
  if (used + n > POOL_BYTES) {
    randomFillSync(pool);
    used = 0;
  }
  // A copy: the pool's bytes are overwritten on the next refill, a caller's must not change.
  const out = Buffer.from(pool.subarray(used, used + n));
  used += n;
  return out;
}
