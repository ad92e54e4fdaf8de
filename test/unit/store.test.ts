import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../helper/store/db.js';
import { HELPER_MIGRATIONS } from '../../helper/store/migrations.js';
import { SettingsRepo } from '../../helper/store/settings-repo.js';
import { defaultSettings } from '../../helper/core/settings.js';
import { MetricsHistory } from '../../helper/metrics/history.js';

function withDb(fn: (file: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'lanrage-db-'));
  try {
    fn(join(dir, 'helper.db'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('migrations run once, in WAL mode, and a newer schema is refused', () => {
  withDb((file) => {
    const db = openDatabase(file, HELPER_MIGRATIONS);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('user_version', { simple: true }), HELPER_MIGRATIONS.length);
    db.close();
    const again = openDatabase(file, HELPER_MIGRATIONS);
    again.pragma('user_version = 99');
    again.close();
    assert.throws(() => openDatabase(file, HELPER_MIGRATIONS), /newer than this program/);
  });
});

test('settings persist across reopen; invalid settings are never stored', () => {
  withDb((file) => {
    const defaults = defaultSettings('pc');
    const db = openDatabase(file, HELPER_MIGRATIONS);
    const repo = new SettingsRepo(db, defaults);
    assert.deepEqual(repo.load(), defaults);
    repo.save({ ...defaults, deviceName: 'Persisted', broadcastPorts: [4445] });
    assert.throws(() => repo.save({ ...defaults, mtu: 1 }), /invalid settings/);
    db.close();
    const db2 = openDatabase(file, HELPER_MIGRATIONS);
    const loaded = new SettingsRepo(db2, defaults).load();
    assert.equal(loaded.deviceName, 'Persisted');
    assert.deepEqual(loaded.broadcastPorts, [4445]);
    assert.equal(loaded.mtu, defaults.mtu);
    db2.close();
  });
});

test('history averages 10 s steps and downsamples long ranges', () => {
  withDb((file) => {
    const db = openDatabase(file, HELPER_MIGRATIONS);
    const h = new MetricsHistory(db);
    const base = 1_700_000_000_000;
    const s = (atMs: number, cpu: number) => ({ atMs, cpuPercent: cpu, memUsed: 1, memTotal: 2, rxPerSec: 0, txPerSec: 0, helperCpuPercent: 0, helperRss: 3 });
    h.add(s(base, 10));
    h.add(s(base + 1000, 30));
    h.add(s(base + 10_000, 50)); // next step: flushes the first
    h.flush();
    const q = h.query(base - 1000, base + 20_000);
    assert.equal(q.stepSeconds, 10);
    assert.deepEqual(q.samples.map((x) => x.cpuPercent), [20, 50]);
    h.pruneOlderThan(base + 5000);
    assert.deepEqual(h.query(base - 1000, base + 20_000).samples.map((x) => x.cpuPercent), [50]);
    db.close();
  });
});
