// When the kernel backend's `wg show dump` may be skipped (helper/wg/stats-gate.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { netDevCounters, StatsGate } from '../../helper/wg/stats-gate.js';

const dev = (rx: number, tx: number): string =>
  'Inter-|   Receive                                                |  Transmit\n' +
  ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n' +
  '    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n' +
  `  lr-a:  ${rx} ${rx / 100}    0    0    0     0          0         0  ${tx} ${tx / 100}    0    0    0     0       0          0\n`;

test('stats-gate: reads this interface\'s counters only', () => {
  assert.equal(netDevCounters(dev(1000, 2000), 'lr-a'), '1000 10 2000 20');
  assert.equal(netDevCounters(dev(1000, 2000), 'lr-b'), null);
  assert.equal(netDevCounters(dev(1000, 2000), 'lr'), null);
  assert.equal(netDevCounters(dev(1000, 2000), 'a'), null, 'a suffix of another name is not the name');
  // Names of 6 characters and more start their line (no padding).
  assert.equal(netDevCounters(`${dev(1, 2)}lrabc01: 5 6 0 0 0 0 0 0 7 8 0 0 0 0 0 0\n`, 'lrabc01'), '5 6 7 8');
});

test('stats-gate: WireGuard is re-read when the counters move, after a change, or every 5 s', () => {
  const g = new StatsGate(5000);
  const c0 = netDevCounters(dev(1000, 2000), 'lr-a');
  assert.equal(g.mustRead(c0, 0), true, 'the first read');
  g.read(c0, 0);
  assert.equal(g.mustRead(c0, 1000), false, 'idle: no process');
  assert.equal(g.mustRead(c0, 4999), false);
  const c1 = netDevCounters(dev(1100, 2000), 'lr-a');
  assert.equal(g.mustRead(c1, 2000), true, 'traffic moved');
  g.read(c1, 2000);
  g.invalidate();
  assert.equal(g.mustRead(c1, 2500), true, 'a peer was added or moved');
  g.read(c1, 2500);
  assert.equal(g.mustRead(c1, 7500), true, 'never staler than 5 s');
  assert.equal(g.mustRead(null, 3000), true, 'unreadable counters: read');
});

test('stats-gate: at rest the age bound grows to 15 s; traffic or a change brings back 5 s', () => {
  const g = new StatsGate();
  const c0 = netDevCounters(dev(1000, 2000), 'lr-a');
  g.read(c0, 0);
  // Reads forced by age on a quiet interface: 5, 10, 15, 15 s apart (under the 20 s keepalive).
  let at = 0;
  for (const wait of [5000, 10_000, 15_000, 15_000]) {
    assert.equal(g.mustRead(c0, at + wait - 1), false, `quiet: no read before ${wait} ms`);
    assert.equal(g.mustRead(c0, at + wait), true, `quiet: read after ${wait} ms`);
    at += wait;
    g.read(c0, at);
  }
  const c1 = netDevCounters(dev(1100, 2000), 'lr-a');
  assert.equal(g.mustRead(c1, at + 1000), true, 'traffic: read at once');
  g.read(c1, at + 1000);
  assert.equal(g.mustRead(c1, at + 6000), true, 'after traffic: never staler than 5 s again');
  g.read(c1, at + 6000);
  assert.equal(g.mustRead(c1, at + 15_999), false, 'then quiet again: 10 s');
  g.invalidate();
  assert.equal(g.mustRead(c1, at + 7000), true, 'a change: read at once');
  g.read(c1, at + 7000);
  assert.equal(g.mustRead(c1, at + 12_000), true, 'after a change: 5 s');
});
