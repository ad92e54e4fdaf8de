// The Linux metrics reader's parsers (helper/metrics/proc-reader.ts) on real /proc text shapes,
// and one real read of this machine's /proc.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuPercentBetween, parseMeminfo, parseNetDev, parseProcStat, procReader } from '../../helper/metrics/proc-reader.js';

test('proc: /proc/stat busy and total, and the busy share between two readings', () => {
  const a = parseProcStat('cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\nintr 1\n');
  assert.deepEqual(a, { busy: 150, total: 1000 });
  const b = parseProcStat('cpu  160 0 90 900 50 0 0 0 0 0\n');
  assert.deepEqual(b, { busy: 250, total: 1200 });
  assert.equal(cpuPercentBetween(a, b!), 50);
  assert.equal(cpuPercentBetween(b, b!), 0, 'no time passed');
  assert.equal(parseProcStat('intr 1\n'), null);
  assert.equal(parseProcStat('cpu  x y z\n'), null);
});

test('proc: memory in use is total minus available, in bytes', () => {
  const m = parseMeminfo('MemTotal:       24683520 kB\nMemFree:        20000000 kB\nMemAvailable:   21000000 kB\nBuffers:  1 kB\n');
  assert.deepEqual(m, { total: 24683520 * 1024, used: (24683520 - 21000000) * 1024 });
  assert.equal(parseMeminfo('nothing'), null);
});

test('proc: network bytes summed over interfaces, loopback left out', () => {
  const text = [
    'Inter-|   Receive                                                |  Transmit',
    ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
    '    lo: 5000      50    0    0    0     0          0         0     5000      50    0    0    0     0       0          0',
    '  eth0: 1000      10    0    0    0     0          0         0      300       3    0    0    0     0       0          0',
    'lrabc1: 20        1    0    0    0     0          0         0       40       1    0    0    0     0       0          0',
  ].join('\n');
  assert.deepEqual(parseNetDev(text), { rx: 1020, tx: 340 });
});

test('proc: a real read of this machine gives sane figures', { skip: process.platform !== 'linux' && 'Linux only (/proc)' }, async () => {
  const r = procReader();
  await r.read();
  const x = await r.read();
  assert.ok(x.memTotal > 0 && x.memUsed > 0 && x.memUsed <= x.memTotal);
  assert.ok(x.cpuPercent >= 0 && x.cpuPercent <= 100);
  assert.ok(x.rxBytes >= 0 && x.txBytes >= 0);
  assert.ok(x.helperRss > 0);
});
