import type { ClientBase } from 'pg';
import type { NatHints } from '../gen/lanrage/control/v1/control.js';
import { openDatabase, type Db } from '../store/db.js';
import { CONTROL_MIGRATIONS, SqliteControlStore } from './sqlite-store.js';
import type { ControlStore, DeviceRecord, MemberRecord, MemberView, PartyRecord } from './store.js';

// The control store on PostgreSQL behind the synchronous ControlStore interface.
//
// Why a synchronous façade and not an async interface: the control plane's rules (control-plane.ts)
// are written as synchronous transactions — read, decide, write, queue events — and several
// agents edit that file at once. Making every store call async would rewrite all of it. Instead
// each instance keeps the whole control state in an in-memory SQLite replica (the same schema
// and code as the embedded store: ~1 KB a device, 10 MB for 10,000), reads from it, and records
// every write as an operation. Committed operations are written through to PostgreSQL in order
// (pg-control.ts) and broadcast to the other instances, which apply them to their replicas.
// PostgreSQL stays the authority: a write it refuses (two instances gave one address at once)
// makes the instance reload its replica from it.

export type Op =
  | { op: 'saveDevice'; d: DeviceJson }
  | { op: 'setDeviceEndpoints'; id: string; candidates: string[]; nat: NatHints; relayed: string[] }
  | { op: 'insertParty'; p: PartyJson }
  | { op: 'setPartyHost'; partyId: string; deviceId: string }
  | { op: 'deleteParty'; partyId: string }
  | { op: 'insertMember'; m: MemberRecord }
  | { op: 'deleteMember'; deviceId: string }
  | { op: 'setAllocation'; partyId: string; deviceId: string; ip: string };

type DeviceJson = Omit<DeviceRecord, 'identityKey' | 'wgKey' | 'discoKey'> & { identityKey: string; wgKey: string; discoKey: string };
type PartyJson = Omit<PartyRecord, 'secretHash'> & { secretHash: string };

const b64 = (b: Buffer): string => b.toString('base64');
const unb64 = (s: string): Buffer => Buffer.from(s, 'base64');

export class PgControlStore implements ControlStore {
  private journal: Op[] | undefined;
  private depth = 0;
  /** Called with the operations of every committed outermost transaction, in commit order. */
  onCommit: (ops: Op[]) => void = () => {};

  constructor(private replica: SqliteControlStore) {}

  transaction<T>(fn: () => T): T {
    const outer = this.depth === 0;
    if (outer) this.journal = [];
    const mark = this.journal!.length;
    this.depth++;
    let result: T;
    try {
      result = this.replica.transaction(fn);
    } catch (err) {
      // A nested transaction that failed was rolled back to its savepoint: forget its writes.
      this.journal!.length = mark;
      throw err;
    } finally {
      this.depth--;
    }
    if (outer) {
      const ops = this.journal!;
      this.journal = undefined;
      if (ops.length > 0) this.onCommit(ops);
    }
    return result;
  }

  private write(op: Op, apply: () => void): void {
    this.transaction(() => {
      apply();
      this.journal!.push(op);
    });
  }

  device(id: string): DeviceRecord | undefined {
    return this.replica.device(id);
  }
  deviceByKey(kind: 'wg' | 'disco', key: Buffer): string | undefined {
    return this.replica.deviceByKey(kind, key);
  }
  saveDevice(d: DeviceRecord): void {
    this.write({ op: 'saveDevice', d: { ...d, identityKey: b64(d.identityKey), wgKey: b64(d.wgKey), discoKey: b64(d.discoKey) } }, () => this.replica.saveDevice(d));
  }
  setDeviceEndpoints(id: string, candidates: string[], nat: NatHints, relayed: string[]): void {
    this.write({ op: 'setDeviceEndpoints', id, candidates, nat, relayed }, () => this.replica.setDeviceEndpoints(id, candidates, nat, relayed));
  }
  party(id: string): PartyRecord | undefined {
    return this.replica.party(id);
  }
  insertParty(p: PartyRecord): void {
    this.write({ op: 'insertParty', p: { ...p, secretHash: b64(p.secretHash) } }, () => this.replica.insertParty(p));
  }
  setPartyHost(partyId: string, deviceId: string): void {
    this.write({ op: 'setPartyHost', partyId, deviceId }, () => this.replica.setPartyHost(partyId, deviceId));
  }
  deleteParty(partyId: string): void {
    this.write({ op: 'deleteParty', partyId }, () => this.replica.deleteParty(partyId));
  }
  members(partyId: string): MemberView[] {
    return this.replica.members(partyId);
  }
  membership(deviceId: string): MemberRecord | undefined {
    return this.replica.membership(deviceId);
  }
  allMemberships(): MemberRecord[] {
    return this.replica.allMemberships();
  }
  insertMember(m: MemberRecord): void {
    this.write({ op: 'insertMember', m }, () => this.replica.insertMember(m));
  }
  deleteMember(deviceId: string): void {
    this.write({ op: 'deleteMember', deviceId }, () => this.replica.deleteMember(deviceId));
  }
  allocations(partyId: string): Map<string, string> {
    return this.replica.allocations(partyId);
  }
  setAllocation(partyId: string, deviceId: string, ip: string): void {
    this.write({ op: 'setAllocation', partyId, deviceId, ip }, () => this.replica.setAllocation(partyId, deviceId, ip));
  }

  /** Applies another instance's committed operations (not journaled: they are in PostgreSQL already). Throws on a conflict. */
  applyRemote(ops: readonly Op[]): void {
    this.replica.transaction(() => {
      for (const o of ops) applyOp(this.replica, o);
    });
  }

  /** Swaps in a replica freshly loaded from PostgreSQL. */
  replace(replica: SqliteControlStore): void {
    const old = this.replica;
    this.replica = replica;
    old.close();
  }

  close(): void {
    this.replica.close();
  }
}

function applyOp(s: SqliteControlStore, o: Op): void {
  switch (o.op) {
    case 'saveDevice':
      return s.saveDevice({ ...o.d, identityKey: unb64(o.d.identityKey), wgKey: unb64(o.d.wgKey), discoKey: unb64(o.d.discoKey) });
    case 'setDeviceEndpoints':
      return s.setDeviceEndpoints(o.id, o.candidates, o.nat, o.relayed);
    case 'insertParty':
      if (!s.party(o.p.id)) s.insertParty({ ...o.p, secretHash: unb64(o.p.secretHash) });
      return;
    case 'setPartyHost':
      return s.setPartyHost(o.partyId, o.deviceId);
    case 'deleteParty':
      return s.deleteParty(o.partyId);
    case 'insertMember': {
      const cur = s.membership(o.m.deviceId);
      if (cur?.partyId === o.m.partyId && cur.virtualIp === o.m.virtualIp) return;
      return s.insertMember(o.m);
    }
    case 'deleteMember':
      return s.deleteMember(o.deviceId);
    case 'setAllocation':
      return s.setAllocation(o.partyId, o.deviceId, o.ip);
  }
}

// ---- PostgreSQL side ----

// Append only, like CONTROL_MIGRATIONS; lanrage_control_schema records progress.
const PG_MIGRATIONS: readonly { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
    CREATE TABLE devices (
      id           text PRIMARY KEY,
      identity_key bytea NOT NULL UNIQUE,
      name         text NOT NULL,
      wg_key       bytea NOT NULL UNIQUE,
      disco_key    bytea NOT NULL UNIQUE,
      candidates   text NOT NULL,
      nat          text NOT NULL,
      relayed      text NOT NULL DEFAULT '[]',
      created_at   bigint NOT NULL,
      updated_at   bigint NOT NULL
    );
    CREATE TABLE parties (
      id             text PRIMARY KEY,
      name           text NOT NULL,
      secret_hash    bytea NOT NULL,
      host_device_id text NOT NULL REFERENCES devices(id),
      network_cidr   text NOT NULL,
      created_at     bigint NOT NULL
    );
    CREATE TABLE members (
      seq        bigserial NOT NULL,
      party_id   text NOT NULL REFERENCES parties(id) ON DELETE CASCADE,
      device_id  text NOT NULL UNIQUE REFERENCES devices(id),
      virtual_ip text NOT NULL,
      joined_at  bigint NOT NULL,
      PRIMARY KEY (party_id, device_id),
      UNIQUE (party_id, virtual_ip)
    );
    CREATE TABLE allocations (
      party_id   text NOT NULL REFERENCES parties(id) ON DELETE CASCADE,
      device_id  text NOT NULL,
      virtual_ip text NOT NULL,
      PRIMARY KEY (party_id, device_id),
      UNIQUE (party_id, virtual_ip)
    );
    -- Bus messages too large for a NOTIFY payload (8000 bytes) travel by reference.
    CREATE TABLE control_bus (
      id      bigserial PRIMARY KEY,
      at      timestamptz NOT NULL DEFAULT now(),
      payload text NOT NULL
    );`,
  },
];

export async function migratePg(c: ClientBase): Promise<void> {
  await c.query('BEGIN');
  try {
    // Two instances starting at once: one migrates, the other waits and then finds it done.
    await c.query('SELECT pg_advisory_xact_lock(7243001)');
    await c.query('CREATE TABLE IF NOT EXISTS lanrage_control_schema (version integer NOT NULL)');
    const r = await c.query<{ v: number | null }>('SELECT max(version) AS v FROM lanrage_control_schema');
    const current = r.rows[0]?.v ?? 0;
    const newest = PG_MIGRATIONS.reduce((m, x) => Math.max(m, x.version), 0);
    if (current > newest) throw new Error(`the database is at control schema ${current}, newer than this program knows (${newest}); upgrade LANrage`);
    for (const m of PG_MIGRATIONS) {
      if (m.version <= current) continue;
      await c.query(m.sql);
      await c.query('INSERT INTO lanrage_control_schema (version) VALUES ($1)', [m.version]);
    }
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/** A PostgreSQL snapshot (pg_current_snapshot()): which transactions a load saw. */
export interface PgSnapshot {
  xmin: bigint;
  xmax: bigint;
  xip: Set<bigint>;
}

export function parseSnapshot(s: string): PgSnapshot {
  const [xmin = '0', xmax = '0', xip = ''] = s.split(':');
  return { xmin: BigInt(xmin), xmax: BigInt(xmax), xip: new Set(xip ? xip.split(',').map((x) => BigInt(x)) : []) };
}

/** Whether a transaction's effects were in the snapshot (pg_visible_in_snapshot). */
export function visibleIn(snap: PgSnapshot, xid: bigint): boolean {
  if (xid < snap.xmin) return true;
  if (xid >= snap.xmax) return false;
  return !snap.xip.has(xid);
}

/** Loads the whole control state into a fresh in-memory replica, in one consistent snapshot. */
export async function loadReplica(c: ClientBase): Promise<{ replica: SqliteControlStore; snapshot: PgSnapshot }> {
  const db: Db = openDatabase(':memory:', CONTROL_MIGRATIONS);
  await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const snap = await c.query<{ s: string }>('SELECT pg_current_snapshot()::text AS s');
    const devices = await c.query('SELECT * FROM devices');
    const parties = await c.query('SELECT * FROM parties');
    const members = await c.query('SELECT party_id, device_id, virtual_ip, joined_at FROM members ORDER BY joined_at, seq');
    const allocations = await c.query('SELECT party_id, device_id, virtual_ip FROM allocations');
    await c.query('COMMIT');
    const num = (v: unknown): number => Number(v);
    db.transaction(() => {
      const d = db.prepare(
        'INSERT INTO devices (id, identity_key, name, wg_key, disco_key, candidates, nat, relayed, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      );
      for (const r of devices.rows) d.run(r.id, r.identity_key, r.name, r.wg_key, r.disco_key, r.candidates, r.nat, r.relayed, num(r.created_at), num(r.updated_at));
      const p = db.prepare('INSERT INTO parties (id, name, secret_hash, host_device_id, network_cidr, created_at) VALUES (?, ?, ?, ?, ?, ?)');
      for (const r of parties.rows) p.run(r.id, r.name, r.secret_hash, r.host_device_id, r.network_cidr, num(r.created_at));
      const m = db.prepare('INSERT INTO members (party_id, device_id, virtual_ip, joined_at) VALUES (?, ?, ?, ?)');
      for (const r of members.rows) m.run(r.party_id, r.device_id, r.virtual_ip, num(r.joined_at));
      const a = db.prepare('INSERT INTO allocations (party_id, device_id, virtual_ip) VALUES (?, ?, ?)');
      for (const r of allocations.rows) a.run(r.party_id, r.device_id, r.virtual_ip);
    })();
    return { replica: new SqliteControlStore(db), snapshot: parseSnapshot(snap.rows[0]!.s) };
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {});
    db.close();
    throw err;
  }
}

/** Writes one operation to PostgreSQL (inside the caller's transaction). */
export async function writeOp(c: ClientBase, o: Op): Promise<void> {
  switch (o.op) {
    case 'saveDevice': {
      const d = o.d;
      await c.query(
        `INSERT INTO devices (id, identity_key, name, wg_key, disco_key, candidates, nat, relayed, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, wg_key = excluded.wg_key, disco_key = excluded.disco_key, updated_at = excluded.updated_at`,
        [d.id, unb64(d.identityKey), d.name, unb64(d.wgKey), unb64(d.discoKey), JSON.stringify(d.candidates), JSON.stringify(d.nat), JSON.stringify(d.relayed), d.createdAt, d.updatedAt],
      );
      return;
    }
    case 'setDeviceEndpoints':
      await c.query('UPDATE devices SET candidates = $1, nat = $2, relayed = $3 WHERE id = $4', [JSON.stringify(o.candidates), JSON.stringify(o.nat), JSON.stringify(o.relayed), o.id]);
      return;
    case 'insertParty':
      // Idempotent: a batch is written again when the connection broke around its COMMIT.
      await c.query(
        'INSERT INTO parties (id, name, secret_hash, host_device_id, network_cidr, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING',
        [o.p.id, o.p.name, unb64(o.p.secretHash), o.p.hostDeviceId, o.p.networkCidr, o.p.createdAt],
      );
      return;
    case 'setPartyHost':
      await c.query('UPDATE parties SET host_device_id = $1 WHERE id = $2', [o.deviceId, o.partyId]);
      return;
    case 'deleteParty':
      await c.query('DELETE FROM parties WHERE id = $1', [o.partyId]);
      return;
    case 'insertMember':
      // Same idempotence; an address or device taken by someone else still fails (a real conflict).
      await c.query(
        `INSERT INTO members (party_id, device_id, virtual_ip, joined_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (party_id, device_id) DO UPDATE SET joined_at = members.joined_at WHERE members.virtual_ip = excluded.virtual_ip`,
        [o.m.partyId, o.m.deviceId, o.m.virtualIp, o.m.joinedAt],
      );
      return;
    case 'deleteMember':
      await c.query('DELETE FROM members WHERE device_id = $1', [o.deviceId]);
      return;
    case 'setAllocation':
      await c.query('DELETE FROM allocations WHERE party_id = $1 AND virtual_ip = $2 AND device_id <> $3', [o.partyId, o.ip, o.deviceId]);
      await c.query(
        'INSERT INTO allocations (party_id, device_id, virtual_ip) VALUES ($1, $2, $3) ON CONFLICT (party_id, device_id) DO UPDATE SET virtual_ip = excluded.virtual_ip',
        [o.partyId, o.deviceId, o.ip],
      );
      return;
  }
}
