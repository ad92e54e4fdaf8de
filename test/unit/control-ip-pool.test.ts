import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status as Status } from '@grpc/grpc-js';
import { allocateAddress, isHostAddress, parsePool } from '../../helper/control/ip-pool.js';
import { ApiError } from '../../helper/core/api-error.js';

const pool = parsePool('10.66.0.0/16');
const m = (entries: Record<string, string>): Map<string, string> => new Map(Object.entries(entries));

test('the first device (the host) gets 10.66.0.1, the next ones the following addresses', () => {
  assert.equal(allocateAddress(pool, 'host', m({}), m({})), '10.66.0.1');
  assert.equal(allocateAddress(pool, 'b', m({ host: '10.66.0.1' }), m({ host: '10.66.0.1' })), '10.66.0.2');
  assert.equal(allocateAddress(pool, 'c', m({ host: '10.66.0.1', b: '10.66.0.2' }), m({ host: '10.66.0.1', b: '10.66.0.2' })), '10.66.0.3');
});

test('a device that comes back gets its old address, unless a live member holds it now', () => {
  const past = m({ host: '10.66.0.1', b: '10.66.0.2', c: '10.66.0.3' });
  // b left; it comes back while host and c are still there.
  assert.equal(allocateAddress(pool, 'b', m({ host: '10.66.0.1', c: '10.66.0.3' }), past), '10.66.0.2');
  // A newcomer does not get b's remembered address while unused ones remain.
  assert.equal(allocateAddress(pool, 'd', m({ host: '10.66.0.1', c: '10.66.0.3' }), past), '10.66.0.4');
  // b's address was reclaimed by d (pool exhausted earlier): b gets another one, never d's.
  const ip = allocateAddress(pool, 'b', m({ host: '10.66.0.1', d: '10.66.0.2' }), m({ host: '10.66.0.1', d: '10.66.0.2' }));
  assert.notEqual(ip, '10.66.0.2');
  assert.notEqual(ip, '10.66.0.1');
});

test('never the network or broadcast address; remembered addresses are reclaimed before giving up; then exhaustion', () => {
  const tiny = parsePool('10.66.0.0/29'); // .1 - .6 usable
  const live = new Map<string, string>();
  const past = new Map<string, string>();
  const got: string[] = [];
  for (let i = 0; i < 6; i++) {
    const ip = allocateAddress(tiny, `d${i}`, live, past);
    assert.ok(isHostAddress(tiny, ip), ip);
    got.push(ip);
    live.set(`d${i}`, ip);
    past.set(`d${i}`, ip);
  }
  assert.deepEqual(got, ['10.66.0.1', '10.66.0.2', '10.66.0.3', '10.66.0.4', '10.66.0.5', '10.66.0.6']);
  assert.ok(!got.includes('10.66.0.0') && !got.includes('10.66.0.7'));
  assert.throws(
    () => allocateAddress(tiny, 'late', live, past),
    (e: ApiError) => e.code === Status.RESOURCE_EXHAUSTED && /no free address/.test(e.message),
  );
  // d3 leaves: its address is reclaimed for a newcomer, and no live member's address ever is.
  live.delete('d3');
  assert.equal(allocateAddress(tiny, 'late', live, past), '10.66.0.4');
});

test('a /16 never hands out .0.0 or .255.255 even when the rest is taken', () => {
  const live = new Map<string, string>();
  for (let n = 1; n < 65534; n++) live.set(`d${n}`, `10.66.${n >> 8}.${n & 255}`);
  assert.equal(allocateAddress(pool, 'last', live, new Map()), '10.66.255.254');
  live.set('last', '10.66.255.254');
  assert.throws(() => allocateAddress(pool, 'one-too-many', live, new Map()), /no free address/);
  assert.ok(!isHostAddress(pool, '10.66.0.0'));
  assert.ok(!isHostAddress(pool, '10.66.255.255'));
  assert.ok(!isHostAddress(pool, '10.67.0.1'));
  assert.ok(isHostAddress(pool, '10.66.1.0'));
});

test('bad pools are refused', () => {
  assert.throws(() => parsePool('10.66.0.1/16'), /host bits/);
  assert.throws(() => parsePool('10.66.0.0/31'), /prefix/);
  assert.throws(() => parsePool('banana'), /CIDR/);
});
