import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AllocationMachine, TurnError, afterProbe, backoffWait, checkCredentials, grantedLifetime, nextProbeAt, setLifetime, type Allocation,
} from '../../helper/net/turn/allocation.js';

const alloc = (relayed: string, mapped: string | null = '203.0.113.7:41641'): Allocation => ({
  auth: { username: 'u', realm: 'r', nonce: 'n', key: Buffer.alloc(16) },
  relayed,
  mapped,
  lifetimeS: 600,
  refreshDue: 300_000,
});

test('turn allocation: idle → allocating → allocated; start only once; a failed start may be retried', () => {
  const m = new AllocationMachine();
  assert.equal(m.state, 'idle');
  assert.equal(m.relayed, null);
  m.begin();
  assert.equal(m.state, 'allocating');
  assert.throws(() => m.begin(), (e: unknown) => e instanceof TurnError && /start\(\) in state allocating/.test(e.message));
  m.startFailed();
  assert.equal(m.state, 'idle');
  m.begin();
  const a = alloc('198.51.100.1:50000');
  assert.deepEqual(m.allocated(a), { resumed: false, previousRelayed: null });
  assert.equal(m.state, 'allocated');
  assert.equal(m.relayed, '198.51.100.1:50000');
  assert.equal(m.current, a);
});

test('turn allocation: a loss is reported once, starts a generation, keeps the allocation to resume', () => {
  const m = new AllocationMachine();
  m.begin();
  const a = alloc('198.51.100.1:50000');
  m.allocated(a);
  const g = m.gen;
  assert.equal(m.lose(true), true);
  assert.equal(m.lose(true), false, 'a second loss while recovering changes nothing');
  assert.equal(m.gen, g + 1);
  assert.equal(m.state, 'recovering');
  assert.equal(m.relayed, null, 'no relayed address while recovering: nothing is sent');
  assert.equal(m.current, null);
  assert.equal(m.previous, a);
  assert.equal(a.orphaned, undefined);
  assert.equal(m.recovering(g + 1), true);
  assert.equal(m.recovering(g), false, 'work of an older generation is stale');
  // The relay still had it: resumed, same address.
  assert.deepEqual(m.allocated(a), { resumed: true, previousRelayed: '198.51.100.1:50000' });
  assert.equal(m.previous, null);
  assert.equal(m.recovering(g + 1), false, 'recovered: the recovery loop stops');
});

test('turn allocation: an orphaned allocation (NAT rebinding) is marked so and replaced, not resumed', () => {
  const m = new AllocationMachine();
  m.begin();
  const a = alloc('198.51.100.1:50000');
  m.allocated(a);
  m.lose(false);
  assert.equal(m.previous?.orphaned, true);
  const b = alloc('198.51.100.1:50002');
  assert.deepEqual(m.allocated(b), { resumed: false, previousRelayed: '198.51.100.1:50000' });
  assert.equal(m.relayed, '198.51.100.1:50002');
});

test('turn allocation: replaced allocations are remembered (newest first, three at most) until one is claimed back, a move to a new 5-tuple or close', () => {
  const m = new AllocationMachine();
  m.begin();
  const all = [0, 1, 2, 3, 4].map((i) => alloc(`198.51.100.1:5000${i}`));
  m.allocated(all[0]!);
  for (const a of all.slice(1)) {
    m.lose(false);
    m.allocated(a);
  }
  assert.deepEqual(m.older.map((a) => a.relayed), ['198.51.100.1:50003', '198.51.100.1:50002', '198.51.100.1:50001']);
  // A rebinding back onto an older allocation's 5-tuple: it is claimed, the one it replaces is remembered.
  m.lose(false);
  assert.deepEqual(m.allocated(all[2]!), { resumed: false, previousRelayed: '198.51.100.1:50004' });
  assert.deepEqual(m.older.map((a) => a.relayed), ['198.51.100.1:50004', '198.51.100.1:50003', '198.51.100.1:50001']);
  m.lose(true);
  m.forgetPrevious();
  assert.deepEqual(m.older, []);
});

test('turn allocation: moving to a new 5-tuple forgets the previous allocation', () => {
  const m = new AllocationMachine();
  m.begin();
  m.allocated(alloc('198.51.100.1:50000'));
  m.lose(true);
  m.forgetPrevious();
  assert.equal(m.previous, null);
});

test('turn allocation: close returns the allocation to delete (current, else previous) once, and ends every generation', () => {
  const m = new AllocationMachine();
  m.begin();
  const a = alloc('198.51.100.1:50000');
  m.allocated(a);
  const g = m.gen;
  assert.equal(m.close(), a);
  assert.equal(m.state, 'closed');
  assert.equal(m.closed, true);
  assert.equal(m.close(), null);
  assert.ok(m.gen > g);
  assert.equal(m.lose(true), false);
  m.startFailed();
  assert.equal(m.state, 'closed', 'a start failing after close does not reopen');

  const r = new AllocationMachine();
  r.begin();
  r.allocated(a);
  r.lose(true);
  assert.equal(r.close(), a, 'while recovering, the previous allocation is the one to delete');
  assert.equal(r.recovering(r.gen), false);
});

test('turn allocation: lifetimes, refresh at half, probe schedule, backoff', () => {
  assert.equal(grantedLifetime(600), 600);
  assert.equal(grantedLifetime(0), 60, 'a lifetime of 0 is not trusted');
  assert.equal(grantedLifetime(null), 60);
  const a = alloc('198.51.100.1:50000');
  setLifetime(a, 600, 1000);
  assert.equal(a.lifetimeS, 600);
  assert.equal(a.refreshDue, 1000 + 300_000);
  assert.equal(nextProbeAt(1000, 10_000, a), 11_000, 'the keepalive probe comes first');
  assert.equal(nextProbeAt(295_000, 10_000, a), 301_000, 'then the refresh');
  const backoff = [0, 250, 1000];
  assert.deepEqual([0, 1, 2, 3, 9].map((n) => backoffWait(backoff, n)), [0, 250, 1000, 1000, 1000]);
  assert.equal(backoffWait([], 0), 30_000);
});

test('turn allocation: what a sync does after its probe', () => {
  const a = alloc('198.51.100.1:50000', '203.0.113.7:41641');
  assert.deepEqual(afterProbe('orphaned', a, '203.0.113.7:50123', 0), { lose: 'NAT rebinding (203.0.113.7:41641 → 203.0.113.7:50123)', resumable: false });
  const gone = afterProbe('gone', a, null, 0);
  assert.ok('lose' in gone && gone.resumable && /allocation gone/.test(gone.lose));
  assert.deepEqual(afterProbe('alive', a, null, a.refreshDue - 1), { refresh: false });
  assert.deepEqual(afterProbe('alive', a, null, a.refreshDue), { refresh: true });
});

test('turn allocation: credentials are checked before use', () => {
  assert.deepEqual(checkCredentials({ username: '1:x', password: 'p' }), { username: '1:x', password: 'p' });
  assert.deepEqual(checkCredentials({ username: '1:x', password: 'p', realm: 'lanrage' }), { username: '1:x', password: 'p', realm: 'lanrage' });
  for (const bad of [null, {}, { username: '', password: 'p' }, { username: 'a\nb', password: 'p' }, { username: 'u', password: '' }, { username: 'u', password: 'x'.repeat(513) }, { username: 'u', password: 'p', realm: 7 }]) {
    assert.throws(() => checkCredentials(bad), TurnError, JSON.stringify(bad));
  }
});
