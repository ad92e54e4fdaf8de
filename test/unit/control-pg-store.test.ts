import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { NatMapping } from '../../helper/gen/lanrage/control/v1/control.js';
import { openDatabase } from '../../helper/store/db.js';
import { CONTROL_MIGRATIONS, SqliteControlStore } from '../../helper/control/sqlite-store.js';
import { parseSnapshot, PgControlStore, visibleIn, type Op } from '../../helper/control/pg-store.js';
import type { DeviceRecord } from '../../helper/control/store.js';

// The PostgreSQL store's pure parts: the write journal of its synchronous façade, replaying it
// on another replica, and snapshot visibility (which notifications a reload already contains).

const replica = (): SqliteControlStore => new SqliteControlStore(openDatabase(':memory:', CONTROL_MIGRATIONS));
const device = (id: string): DeviceRecord => ({
  id,
  identityKey: randomBytes(32),
  name: id,
  wgKey: randomBytes(32),
  discoKey: randomBytes(32),
  candidates: [],
  nat: { mapping: NatMapping.NAT_MAPPING_UNSPECIFIED, portMapped: false, portDelta: 0 },
  relayed: [],
  createdAt: 1,
  updatedAt: 1,
});

test('one journal entry per committed outermost transaction; failed ones and failed nested parts leave none', () => {
  const s = new PgControlStore(replica());
  const commits: Op[][] = [];
  s.onCommit = (ops) => commits.push(ops);
  s.saveDevice(device('a'));
  s.transaction(() => {
    s.saveDevice(device('b'));
    try {
      s.transaction(() => {
        s.saveDevice(device('c'));
        throw new Error('inner');
      });
    } catch {
      // the outer transaction goes on without c
    }
    s.setDeviceEndpoints('b', ['203.0.113.1:1'], { mapping: NatMapping.NAT_MAPPING_UNSPECIFIED, portMapped: false, portDelta: 0 }, []);
  });
  assert.throws(() =>
    s.transaction(() => {
      s.saveDevice(device('d'));
      throw new Error('outer');
    }),
  );
  assert.deepEqual(
    commits.map((ops) => ops.map((o) => o.op)),
    [['saveDevice'], ['saveDevice', 'setDeviceEndpoints']],
  );
  assert.equal(s.device('c'), undefined);
  assert.equal(s.device('d'), undefined);

  // Replaying the journal on another replica (what other instances do) gives the same state.
  const other = new PgControlStore(replica());
  for (const ops of commits) other.applyRemote(JSON.parse(JSON.stringify(ops)) as Op[]);
  assert.deepEqual(other.device('b')?.candidates, ['203.0.113.1:1']);
  assert.ok(other.device('a')?.wgKey.equals(s.device('a')!.wgKey), 'keys survive the JSON trip');
});

test('a remote change that conflicts with the replica throws (the instance then reloads)', () => {
  const s = new PgControlStore(replica());
  s.saveDevice(device('a'));
  s.saveDevice(device('b'));
  s.insertParty({ id: 'p', name: 'p', secretHash: Buffer.alloc(32), hostDeviceId: 'a', networkCidr: '10.66.0.0/16', createdAt: 1 });
  s.insertMember({ partyId: 'p', deviceId: 'a', virtualIp: '10.66.0.1', joinedAt: 1 });
  assert.throws(() => s.applyRemote([{ op: 'insertMember', m: { partyId: 'p', deviceId: 'b', virtualIp: '10.66.0.1', joinedAt: 2 } }]));
  // The same change applied twice is not a conflict (a batch re-sent after a broken connection).
  s.applyRemote([{ op: 'insertMember', m: { partyId: 'p', deviceId: 'a', virtualIp: '10.66.0.1', joinedAt: 1 } }]);
  assert.equal(s.members('p').length, 1);
});

test('snapshot visibility follows pg_visible_in_snapshot', () => {
  const snap = parseSnapshot('100:105:101,103');
  assert.equal(visibleIn(snap, 99n), true);
  assert.equal(visibleIn(snap, 100n), true);
  assert.equal(visibleIn(snap, 101n), false, 'in progress when the snapshot was taken');
  assert.equal(visibleIn(snap, 102n), true);
  assert.equal(visibleIn(snap, 105n), false, 'started after');
  assert.deepEqual(parseSnapshot('7:7:'), { xmin: 7n, xmax: 7n, xip: new Set() });
});
