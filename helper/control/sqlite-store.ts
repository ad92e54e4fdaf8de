import type { NatHints } from '../gen/lanrage/control/v1/control.js';
import { openDatabase, type Db } from '../store/db.js';
import type { Migration } from '../store/migrations.js';
import type { ControlStore, DeviceRecord, MemberRecord, MemberView, PartyRecord } from './store.js';

// Append only: a released migration is never edited (PRAGMA user_version records progress).
export const CONTROL_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'devices, parties, members, allocations',
    sql: `
    CREATE TABLE devices (
      id           TEXT PRIMARY KEY,
      identity_key BLOB NOT NULL UNIQUE,
      name         TEXT NOT NULL,
      wg_key       BLOB NOT NULL UNIQUE,
      disco_key    BLOB NOT NULL UNIQUE,
      candidates   TEXT NOT NULL,
      nat          TEXT NOT NULL,
      created_at   INTEGER NOT NULL,
      updated_at   INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE parties (
      id             TEXT PRIMARY KEY,
      name           TEXT NOT NULL,
      secret_hash    BLOB NOT NULL,
      host_device_id TEXT NOT NULL REFERENCES devices(id),
      network_cidr   TEXT NOT NULL,
      created_at     INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE members (
      party_id   TEXT NOT NULL REFERENCES parties(id) ON DELETE CASCADE,
      device_id  TEXT NOT NULL UNIQUE REFERENCES devices(id),
      virtual_ip TEXT NOT NULL,
      joined_at  INTEGER NOT NULL,
      PRIMARY KEY (party_id, device_id),
      UNIQUE (party_id, virtual_ip)
    ) STRICT;
    CREATE TABLE allocations (
      party_id   TEXT NOT NULL REFERENCES parties(id) ON DELETE CASCADE,
      device_id  TEXT NOT NULL,
      virtual_ip TEXT NOT NULL,
      PRIMARY KEY (party_id, device_id),
      UNIQUE (party_id, virtual_ip)
    ) STRICT;`,
  },
  {
    version: 2,
    name: 'devices: relayed addresses',
    sql: `ALTER TABLE devices ADD COLUMN relayed TEXT NOT NULL DEFAULT '[]';`,
  },
];

interface DeviceRow {
  id: string;
  identity_key: Buffer;
  name: string;
  wg_key: Buffer;
  disco_key: Buffer;
  candidates: string;
  nat: string;
  relayed: string;
  created_at: number;
  updated_at: number;
}
interface PartyRow {
  id: string;
  name: string;
  secret_hash: Buffer;
  host_device_id: string;
  network_cidr: string;
  created_at: number;
}
interface MemberRow {
  party_id: string;
  device_id: string;
  virtual_ip: string;
  joined_at: number;
}
interface MemberViewRow extends MemberRow {
  name: string;
  wg_key: Buffer;
  disco_key: Buffer;
  candidates: string;
  nat: string;
  relayed: string;
}

const toDevice = (r: DeviceRow): DeviceRecord => ({
  id: r.id,
  identityKey: r.identity_key,
  name: r.name,
  wgKey: r.wg_key,
  discoKey: r.disco_key,
  candidates: JSON.parse(r.candidates) as string[],
  nat: JSON.parse(r.nat) as NatHints,
  relayed: JSON.parse(r.relayed) as string[],
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});
const toParty = (r: PartyRow): PartyRecord => ({
  id: r.id,
  name: r.name,
  secretHash: r.secret_hash,
  hostDeviceId: r.host_device_id,
  networkCidr: r.network_cidr,
  createdAt: r.created_at,
});
const toMember = (r: MemberRow): MemberRecord => ({
  partyId: r.party_id,
  deviceId: r.device_id,
  virtualIp: r.virtual_ip,
  joinedAt: r.joined_at,
});

export class SqliteControlStore implements ControlStore {
  private readonly q;

  static open(file: string): SqliteControlStore {
    return new SqliteControlStore(openDatabase(file, CONTROL_MIGRATIONS));
  }

  constructor(private readonly db: Db) {
    this.q = {
      device: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE id = ?'),
      deviceByWg: db.prepare<[Buffer], { id: string }>('SELECT id FROM devices WHERE wg_key = ?'),
      deviceByDisco: db.prepare<[Buffer], { id: string }>('SELECT id FROM devices WHERE disco_key = ?'),
      saveDevice: db.prepare<[DeviceRow]>(
        `INSERT INTO devices (id, identity_key, name, wg_key, disco_key, candidates, nat, relayed, created_at, updated_at)
         VALUES (@id, @identity_key, @name, @wg_key, @disco_key, @candidates, @nat, @relayed, @created_at, @updated_at)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, wg_key = excluded.wg_key,
           disco_key = excluded.disco_key, updated_at = excluded.updated_at`,
      ),
      party: db.prepare<[string], PartyRow>('SELECT * FROM parties WHERE id = ?'),
      insertParty: db.prepare<[PartyRow]>(
        'INSERT INTO parties (id, name, secret_hash, host_device_id, network_cidr, created_at) VALUES (@id, @name, @secret_hash, @host_device_id, @network_cidr, @created_at)',
      ),
      setHost: db.prepare<[string, string]>('UPDATE parties SET host_device_id = ? WHERE id = ?'),
      deleteParty: db.prepare<[string]>('DELETE FROM parties WHERE id = ?'),
      members: db.prepare<[string], MemberViewRow>(
        `SELECT m.*, d.name, d.wg_key, d.disco_key, d.candidates, d.nat, d.relayed FROM members m JOIN devices d ON d.id = m.device_id
         WHERE m.party_id = ? ORDER BY m.joined_at, m.rowid`,
      ),
      membership: db.prepare<[string], MemberRow>('SELECT * FROM members WHERE device_id = ?'),
      allMemberships: db.prepare<[], MemberRow>('SELECT * FROM members'),
      insertMember: db.prepare<[MemberRow]>(
        'INSERT INTO members (party_id, device_id, virtual_ip, joined_at) VALUES (@party_id, @device_id, @virtual_ip, @joined_at)',
      ),
      deleteMember: db.prepare<[string]>('DELETE FROM members WHERE device_id = ?'),
      setEndpoints: db.prepare<[string, string, string, string]>('UPDATE devices SET candidates = ?, nat = ?, relayed = ? WHERE id = ?'),
      allocations: db.prepare<[string], { device_id: string; virtual_ip: string }>('SELECT device_id, virtual_ip FROM allocations WHERE party_id = ?'),
      freeIp: db.prepare<[string, string, string]>('DELETE FROM allocations WHERE party_id = ? AND virtual_ip = ? AND device_id <> ?'),
      setAllocation: db.prepare<[string, string, string]>(
        'INSERT INTO allocations (party_id, device_id, virtual_ip) VALUES (?, ?, ?) ON CONFLICT(party_id, device_id) DO UPDATE SET virtual_ip = excluded.virtual_ip',
      ),
    };
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  device(id: string): DeviceRecord | undefined {
    const r = this.q.device.get(id);
    return r && toDevice(r);
  }

  deviceByKey(kind: 'wg' | 'disco', key: Buffer): string | undefined {
    return (kind === 'wg' ? this.q.deviceByWg : this.q.deviceByDisco).get(key)?.id;
  }

  saveDevice(d: DeviceRecord): void {
    this.q.saveDevice.run({
      id: d.id,
      identity_key: d.identityKey,
      name: d.name,
      wg_key: d.wgKey,
      disco_key: d.discoKey,
      candidates: JSON.stringify(d.candidates),
      nat: JSON.stringify(d.nat),
      relayed: JSON.stringify(d.relayed),
      created_at: d.createdAt,
      updated_at: d.updatedAt,
    });
  }

  party(id: string): PartyRecord | undefined {
    const r = this.q.party.get(id);
    return r && toParty(r);
  }

  insertParty(p: PartyRecord): void {
    this.q.insertParty.run({
      id: p.id,
      name: p.name,
      secret_hash: p.secretHash,
      host_device_id: p.hostDeviceId,
      network_cidr: p.networkCidr,
      created_at: p.createdAt,
    });
  }

  setPartyHost(partyId: string, deviceId: string): void {
    this.q.setHost.run(deviceId, partyId);
  }

  deleteParty(partyId: string): void {
    this.q.deleteParty.run(partyId);
  }

  members(partyId: string): MemberView[] {
    return this.q.members.all(partyId).map((r) => ({
      ...toMember(r),
      name: r.name,
      wgKey: r.wg_key,
      discoKey: r.disco_key,
      candidates: JSON.parse(r.candidates) as string[],
      nat: JSON.parse(r.nat) as NatHints,
      relayed: JSON.parse(r.relayed) as string[],
    }));
  }

  membership(deviceId: string): MemberRecord | undefined {
    const r = this.q.membership.get(deviceId);
    return r && toMember(r);
  }

  allMemberships(): MemberRecord[] {
    return this.q.allMemberships.all().map(toMember);
  }

  insertMember(m: MemberRecord): void {
    this.q.insertMember.run({
      party_id: m.partyId,
      device_id: m.deviceId,
      virtual_ip: m.virtualIp,
      joined_at: m.joinedAt,
    });
  }

  deleteMember(deviceId: string): void {
    this.q.deleteMember.run(deviceId);
  }

  setDeviceEndpoints(deviceId: string, candidates: string[], nat: NatHints, relayed: string[]): void {
    this.q.setEndpoints.run(JSON.stringify(candidates), JSON.stringify(nat), JSON.stringify(relayed), deviceId);
  }

  allocations(partyId: string): Map<string, string> {
    return new Map(this.q.allocations.all(partyId).map((r) => [r.device_id, r.virtual_ip]));
  }

  setAllocation(partyId: string, deviceId: string, ip: string): void {
    this.transaction(() => {
      this.q.freeIp.run(partyId, ip, deviceId);
      this.q.setAllocation.run(partyId, deviceId, ip);
    });
  }

  close(): void {
    this.db.close();
  }
}
