import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeProbe } from '../../helper/net/turn/liveness.js';

const KNOWN = '203.0.113.7:41641';

test('turn liveness: 437 from our own mapped address (or one the relay did not say) is our allocation, alive', () => {
  assert.equal(judgeProbe(KNOWN, { code: 437, mapped: KNOWN }), 'alive');
  assert.equal(judgeProbe(KNOWN, { code: 437, mapped: null }), 'alive');
  assert.equal(judgeProbe(null, { code: 437, mapped: KNOWN }), 'alive');
});

test('turn liveness: our mapped address moved (NAT rebinding) → orphaned, whatever the code', () => {
  assert.equal(judgeProbe(KNOWN, { code: 401, mapped: '203.0.113.7:50123' }), 'orphaned');
  assert.equal(judgeProbe(KNOWN, { code: 401, mapped: '198.51.100.9:41641' }), 'orphaned');
  // Someone else's allocation on our new port is never ours.
  assert.equal(judgeProbe(KNOWN, { code: 437, mapped: '203.0.113.7:50123' }), 'orphaned');
});

test('turn liveness: 401 with no address to compare → gone (restart, expiry or rebinding: a fresh allocation cures all)', () => {
  assert.equal(judgeProbe(KNOWN, { code: 401, mapped: null }), 'gone');
  assert.equal(judgeProbe(KNOWN, { code: 401, mapped: KNOWN }), 'gone');
  assert.equal(judgeProbe(null, { code: 401, mapped: KNOWN }), 'gone');
});
