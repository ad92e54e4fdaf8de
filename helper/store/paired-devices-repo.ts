import type { Db } from './db.js';

// Phones paired for remote access (helper/remote). Only the token's hash is stored.

export type RemoteScopeName = 'view' | 'control';

export interface PairedDeviceRow {
  deviceId: string;
  name: string;
  scope: RemoteScopeName;
  createdMs: number;
  lastSeenMs: number;
}

interface Row {
  device_id: string;
  name: string;
  scope: string;
  created_ms: number;
  last_seen_ms: number;
}

const toDevice = (r: Row): PairedDeviceRow => ({
  deviceId: r.device_id,
  name: r.name,
  scope: r.scope === 'control' ? 'control' : 'view',
  createdMs: r.created_ms,
  lastSeenMs: r.last_seen_ms,
});

export class PairedDevicesRepo {
  private readonly insertStmt;
  private readonly byHashStmt;
  private readonly listStmt;
  private readonly deleteStmt;
  private readonly seenStmt;

  constructor(db: Db) {
    this.insertStmt = db.prepare<[string, string, string, string, number, number]>(
      'INSERT INTO paired_devices(device_id, name, scope, token_hash, created_ms, last_seen_ms) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.byHashStmt = db.prepare<[string], Row>('SELECT device_id, name, scope, created_ms, last_seen_ms FROM paired_devices WHERE token_hash = ?');
    this.listStmt = db.prepare<[], Row>('SELECT device_id, name, scope, created_ms, last_seen_ms FROM paired_devices ORDER BY created_ms');
    this.deleteStmt = db.prepare<[string]>('DELETE FROM paired_devices WHERE device_id = ?');
    this.seenStmt = db.prepare<[number, string]>('UPDATE paired_devices SET last_seen_ms = ? WHERE device_id = ?');
  }

  add(d: PairedDeviceRow, tokenHash: string): void {
    this.insertStmt.run(d.deviceId, d.name, d.scope, tokenHash, d.createdMs, d.lastSeenMs);
  }

  byTokenHash(hash: string): PairedDeviceRow | undefined {
    const r = this.byHashStmt.get(hash);
    return r && toDevice(r);
  }

  list(): PairedDeviceRow[] {
    return this.listStmt.all().map(toDevice);
  }

  /** True when a device was removed. */
  remove(deviceId: string): boolean {
    return this.deleteStmt.run(deviceId).changes > 0;
  }

  seen(deviceId: string, atMs: number): void {
    this.seenStmt.run(atMs, deviceId);
  }
}
