import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, type LogFields } from '../../helper/core/log.js';
import { ControlPlane } from '../../helper/control/control-plane.js';
import { controlHandlers } from '../../helper/control/service.js';
import { watchLoad } from '../../helper/control/load-log.js';
import { SqliteControlStore } from '../../helper/control/sqlite-store.js';

// The debug load record of a join storm: calls by method and the server's own longest operation
// next to its loop lateness (a late loop with short operations is a server waiting for a CPU).

test('each second with events logs the calls answered by method and the longest operation', async (t) => {
  const prev = process.env.LANRAGE_LOG;
  process.env.LANRAGE_LOG = 'debug';
  t.after(() => (prev === undefined ? delete process.env.LANRAGE_LOG : (process.env.LANRAGE_LOG = prev)));
  const records: LogFields[] = [];
  const log = createLogger({}, (l) => void records.push(JSON.parse(l) as LogFields));
  const store = SqliteControlStore.open(':memory:');
  const plane = new ControlPlane({ store, log });
  t.after(() => (plane.close(), store.close()));
  const calls = new Map<string, number>();
  const handlers = controlHandlers({ plane, calls, stunPorts: [3478, 3479], bindHost: '127.0.0.1', shutdown: new AbortController().signal });
  t.mock.timers.enable({ apis: ['setInterval'] });
  const stop = watchLoad(plane, log, calls);
  t.after(stop);
  const challenge = handlers.getChallenge as () => unknown;
  challenge();
  challenge();
  plane.delivered += 3; // as the fan-out of a join would
  plane.runMaxMs = 12.4;
  t.mock.timers.tick(1000);
  const rec = records.find((r) => r.msg === 'control load');
  assert.ok(rec, 'a load record after a second with events');
  assert.deepEqual(rec.calls, { getChallenge: 2 });
  assert.equal(rec.events, 3);
  assert.equal(rec.opMaxMs, 12);
  assert.equal(typeof rec.gcMaxMs, 'number');
  // The next second starts from zero: nothing happened, nothing is logged.
  records.length = 0;
  t.mock.timers.tick(1000);
  assert.deepEqual(records.filter((r) => r.msg === 'control load'), []);
  assert.equal(calls.size, 0);
  assert.equal(plane.runMaxMs, 0);
});
