import { test } from 'node:test';
import assert from 'node:assert/strict';
import { averageSamples, historyStep, toSample, type RawReading } from '../../helper/metrics/sample.js';

const r = (atMs: number, rx: number, tx: number, cpuMicros: number): RawReading => ({
  atMs, cpuPercent: 12.5, memUsed: 1000, memTotal: 4000, rxBytes: rx, txBytes: tx, helperCpuMicros: cpuMicros, helperRss: 50,
});

test('rates are bytes per second between two readings', () => {
  const s = toSample(r(0, 1000, 500, 0), r(2000, 5000, 2500, 100_000));
  assert.equal(s.rxPerSec, 2000);
  assert.equal(s.txPerSec, 1000);
  assert.equal(s.helperCpuPercent, 5); // 0.1 s of CPU over 2 s
});

test('the first reading and counter resets give zero rates, not garbage', () => {
  assert.equal(toSample(null, r(0, 1e9, 1e9, 5)).rxPerSec, 0);
  assert.equal(toSample(r(0, 5000, 5000, 0), r(1000, 10, 10, 0)).rxPerSec, 0);
});

test('averages and history steps', () => {
  const a = averageSamples([toSample(null, r(0, 0, 0, 0)), { ...toSample(null, r(1000, 0, 0, 0)), cpuPercent: 87.5 }]);
  assert.equal(a?.cpuPercent, 50);
  assert.equal(a?.atMs, 0);
  assert.equal(averageSamples([]), null);
  assert.equal(historyStep(600, 10, 720), 10);
  assert.equal(historyStep(86400, 10, 720), 120);
  assert.equal(historyStep(86401, 10, 720), 130);
});
