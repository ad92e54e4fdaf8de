import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../helper/core/log.js';
import { NatMapping } from '../../helper/gen/lanrage/control/v1/control.js';
import { SqliteControlStore } from '../../helper/control/sqlite-store.js';
import { PostgresControl } from '../../helper/control/pg-control.js';
import type { ControlStore, DeviceRecord } from '../../helper/control/store.js';
import { havePostgres, TestPostgres } from '../lib/postgres.js';
import { requireOrSkip } from '../lib/repo.js';

// One conformance suite for every ControlStore: the embedded SQLite one and the PostgreSQL one.
// Each case writes through the interface, then reopens the store (a new process would see what
// was durable) and checks what came back.

const log = createLogger({ test: 'control-store' }, process.env.LANRAGE_TEST_LOG ? undefined : () => {});
const dir = mkdtempSync(join(tmpdir(), 'lanrage-store-'));
let pgdb: TestPostgres | undefined;
after(async () => {
  await pgdb?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

interface Backend {
  open(): Promise<{ store: ControlStore; close(): Promise<void> }>;
}

let n = 0;
const sqlite = (): Backend => {
  const file = join(dir, `c${n++}.db`);
  return {
    open: async () => {
      const store = SqliteControlStore.open(file);
      return { store, close: async () => store.close() };
    },
  };
};
const postgres = async (): Promise<Backend> => {
  pgdb ??= await TestPostgres.start();
  const name = `conf${n++}`;
  await pgdb.query(`CREATE DATABASE ${name}`);
  const url = pgdb.url(name);
  return {
    open: async () => {
      const p = await PostgresControl.open({ url, log, heartbeatMs: 200 });
      return { store: p.store, close: () => p.closeGracefully() };
    },
  };
};

const device = (id: string, name = id): DeviceRecord => ({
  id,
  identityKey: randomBytes(32),
  name,
  wgKey: randomBytes(32),
  discoKey: randomBytes(32),
  candidates: [],
  nat: { mapping: NatMapping.NAT_MAPPING_UNSPECIFIED, portMapped: false, portDelta: 0 },
  relayed: [],
  createdAt: 1000,
  updatedAt: 1000,
});

async function conformance(b: Backend): Promise<void> {
  const { store, close } = await b.open();
  const a = device('dev-a', 'Alice');
  const bb = device('dev-b', 'Bob');
  const c = device('dev-c', 'Carol');
  store.transaction(() => {
    store.saveDevice(a);
    store.saveDevice(bb);
    store.saveDevice(c);
  });
  store.setDeviceEndpoints('dev-b', ['203.0.113.5:41641'], { mapping: NatMapping.NAT_MAPPING_ENDPOINT_INDEPENDENT, portMapped: true, portDelta: 1 }, ['198.51.100.1:3478']);
  // saveDevice updates name and keys but keeps endpoints.
  store.saveDevice({ ...bb, name: 'Bobby', updatedAt: 2000 });
  assert.equal(store.deviceByKey('wg', a.wgKey), 'dev-a');
  assert.equal(store.deviceByKey('disco', c.discoKey), 'dev-c');
  assert.equal(store.deviceByKey('wg', randomBytes(32)), undefined);
  store.transaction(() => {
    store.insertParty({ id: 'party-1', name: 'LAN', secretHash: Buffer.alloc(32, 7), hostDeviceId: 'dev-a', networkCidr: '10.66.0.0/16', createdAt: 5 });
    store.setAllocation('party-1', 'dev-a', '10.66.0.1');
    store.insertMember({ partyId: 'party-1', deviceId: 'dev-a', virtualIp: '10.66.0.1', joinedAt: 10 });
    store.setAllocation('party-1', 'dev-b', '10.66.0.2');
    store.insertMember({ partyId: 'party-1', deviceId: 'dev-b', virtualIp: '10.66.0.2', joinedAt: 10 });
    store.setAllocation('party-1', 'dev-c', '10.66.0.3');
    store.insertMember({ partyId: 'party-1', deviceId: 'dev-c', virtualIp: '10.66.0.3', joinedAt: 11 });
  });
  // A failed transaction leaves nothing behind.
  assert.throws(() =>
    store.transaction(() => {
      store.setPartyHost('party-1', 'dev-c');
      throw new Error('boom');
    }),
  );
  // A unique violation (an address taken) is refused.
  assert.throws(() => store.insertMember({ partyId: 'party-1', deviceId: 'dev-x', virtualIp: '10.66.0.1', joinedAt: 12 }));
  store.deleteMember('dev-c');
  // The address goes to a new owner; the former one loses it.
  store.setAllocation('party-1', 'dev-b', '10.66.0.3');
  await close();

  const again = await b.open();
  const s = again.store;
  try {
    assert.equal(s.device('dev-b')?.name, 'Bobby');
    assert.deepEqual(s.device('dev-b')?.candidates, ['203.0.113.5:41641']);
    assert.deepEqual(s.device('dev-b')?.relayed, ['198.51.100.1:3478']);
    assert.equal(s.device('dev-b')?.nat.mapping, NatMapping.NAT_MAPPING_ENDPOINT_INDEPENDENT);
    assert.ok(s.device('dev-a')?.wgKey.equals(a.wgKey));
    assert.equal(s.party('party-1')?.hostDeviceId, 'dev-a', 'the failed transaction changed nothing');
    assert.ok(s.party('party-1')?.secretHash.equals(Buffer.alloc(32, 7)));
    assert.deepEqual(
      s.members('party-1').map((m) => [m.deviceId, m.virtualIp, m.name]),
      [
        ['dev-a', '10.66.0.1', 'Alice'],
        ['dev-b', '10.66.0.2', 'Bobby'],
      ],
      'oldest member first, insertion order within one join time',
    );
    assert.equal(s.membership('dev-c'), undefined);
    assert.equal(s.membership('dev-b')?.partyId, 'party-1');
    assert.equal(s.allMemberships().length, 2);
    assert.deepEqual(
      [...s.allocations('party-1')].sort(),
      [
        ['dev-a', '10.66.0.1'],
        ['dev-b', '10.66.0.3'],
      ],
    );
    s.deleteParty('party-1');
    assert.equal(s.party('party-1'), undefined);
    assert.deepEqual(s.members('party-1'), []);
    assert.equal(s.allocations('party-1').size, 0);
  } finally {
    await again.close();
  }
  const third = await b.open();
  try {
    assert.equal(third.store.party('party-1'), undefined, 'the party deletion was durable');
    assert.equal(third.store.membership('dev-a'), undefined, 'its members went with it');
  } finally {
    await third.close();
  }
}

test('ControlStore conformance: SQLite', async () => {
  await conformance(sqlite());
});

test('ControlStore conformance: PostgreSQL', async (t) => {
  if (!requireOrSkip(havePostgres(), 'PostgreSQL server (Debian package postgresql) and root', t)) return;
  await conformance(await postgres());
});

test('PostgreSQL: a bad or unreachable URL says what is wrong', async (t) => {
  if (!requireOrSkip(havePostgres(), 'PostgreSQL server (Debian package postgresql) and root', t)) return;
  pgdb ??= await TestPostgres.start();
  await assert.rejects(PostgresControl.open({ url: 'mysql://x@127.0.0.1/db', log }), /postgres:\/\//);
  await assert.rejects(PostgresControl.open({ url: `postgres://postgres:hunter2@127.0.0.1:1/lanrage`, log, connectTimeoutMs: 2000 }), (e: Error) => {
    assert.match(e.message, /cannot use the PostgreSQL database/);
    assert.match(e.message, /ECONNREFUSED/);
    assert.doesNotMatch(e.message, /hunter2/, 'the password is not printed');
    return true;
  });
  await assert.rejects(PostgresControl.open({ url: pgdb.url('no_such_db'), log }), /does not exist/);
});
