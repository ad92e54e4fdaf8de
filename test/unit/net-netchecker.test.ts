// When the NAT report is made: not before a control server is known, once when its STUN servers
// arrive (not again for the same list), every 5 minutes, on request (concurrent requests share one
// run), and every report goes to the live stream.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../helper/core/clock.js';
import { createLogger } from '../../helper/core/log.js';
import { ApiError } from '../../helper/core/api-error.js';
import { Netchecker, NETCHECK_CHANGE_MIN_GAP_MS, NETCHECK_INTERVAL_MS, NETCHECK_SNAPSHOT_MIN_AGE_MS } from '../../helper/net/netchecker.js';
import type { NetcheckResult } from '../../helper/net/netcheck-run.js';

const log = createLogger({}, () => {});
const flush = () => new Promise((r) => setImmediate(r));

function setup() {
  const clock = new ManualClock();
  let servers: string[] = [];
  const runs: string[][] = [];
  const published: NetcheckResult[] = [];
  const nc = new Netchecker({
    stunServers: () => servers,
    run: async (s) => {
      runs.push(s);
      return { udp: 'open', mapping: 'endpoint-independent', filtering: 'address-dependent', publicAddress: `203.0.113.6:${runs.length}`, portPreserved: true, notes: [], at: new Date(), server: s[0]!, localAddresses: [], durationMs: 1 };
    },
    onReport: (r) => published.push(r),
    log,
    clock,
  });
  return { clock, nc, runs, published, setServers: (s: string[]) => (servers = s) };
}

test('no control server: nothing runs, and RunNetcheck says what is missing', async () => {
  const { clock, nc, runs } = setup();
  nc.start();
  clock.advance(NETCHECK_INTERVAL_MS * 2);
  await flush();
  assert.equal(runs.length, 0);
  assert.equal(nc.latest(), null);
  await assert.rejects(nc.runNow(), (e: unknown) => e instanceof ApiError && /create or join a party/.test(e.message));
  nc.close();
});

test('runs when STUN servers arrive, on a later reconnect or a new list, and every 5 minutes', async () => {
  const { clock, nc, runs, published, setServers } = setup();
  nc.start();
  setServers(['203.0.113.2:3478', '203.0.113.2:3479']);
  nc.serversMayHaveChanged();
  await flush();
  assert.equal(runs.length, 1);
  assert.equal(published.length, 1);
  assert.equal(nc.latest()?.publicAddress, '203.0.113.6:1');
  nc.serversMayHaveChanged(); // a snapshot soon after, same server: no new run
  await flush();
  assert.equal(runs.length, 1);
  clock.advance(NETCHECK_SNAPSHOT_MIN_AGE_MS);
  nc.serversMayHaveChanged(); // a reconnect a minute later: the network may have changed
  await flush();
  assert.equal(runs.length, 2);
  clock.advance(NETCHECK_INTERVAL_MS - NETCHECK_SNAPSHOT_MIN_AGE_MS - 1);
  await flush();
  assert.equal(runs.length, 2);
  clock.advance(1);
  await flush();
  assert.equal(runs.length, 3, 'periodic run, 5 minutes after start');
  setServers(['198.51.100.9:3478']);
  nc.serversMayHaveChanged();
  await flush();
  assert.deepEqual(runs[3], ['198.51.100.9:3478'], 'a new server is tested at once');
  assert.equal(published.length, 4);
  nc.close();
  clock.advance(NETCHECK_INTERVAL_MS * 3);
  await flush();
  assert.equal(runs.length, 4, 'nothing after close');
});

test('concurrent requests share one run', async () => {
  const { nc, runs, setServers } = setup();
  setServers(['203.0.113.2:3478']);
  const [a, b] = await Promise.all([nc.runNow(), nc.runNow()]);
  assert.equal(runs.length, 1);
  assert.equal(a, b);
  await nc.runNow();
  assert.equal(runs.length, 2, 'a request after the run finished runs again');
  nc.close();
});

test('a network change re-runs the report, at most once per 5 s, and the relays are measured alongside', async () => {
  const clock = new ManualClock();
  const runs: number[] = [];
  const nc = new Netchecker({
    stunServers: () => ['203.0.113.2:3478'],
    run: async () => {
      runs.push(clock.now());
      return { udp: 'open', mapping: 'endpoint-independent', filtering: 'address-dependent', publicAddress: '203.0.113.6:1', portPreserved: true, notes: [], at: new Date(), server: '203.0.113.2:3478', localAddresses: [], durationMs: 1 };
    },
    relays: async () => [{ relay: 'udp:203.0.113.2:3480', rttMs: 1.5, inUse: true }],
    onReport: () => {},
    log,
    clock,
  });
  await nc.runNow();
  assert.deepEqual(nc.latest()?.relays, [{ relay: 'udp:203.0.113.2:3480', rttMs: 1.5, inUse: true }]);
  nc.networkChanged();
  nc.networkChanged(); // a flapping interface: one run
  await flush();
  assert.equal(runs.length, 1, 'not within 5 s of the last run');
  clock.advance(NETCHECK_CHANGE_MIN_GAP_MS);
  await flush();
  assert.equal(runs.length, 2, 'then once');
  clock.advance(NETCHECK_CHANGE_MIN_GAP_MS * 3);
  await flush();
  assert.equal(runs.length, 2);
  nc.networkChanged();
  clock.advance(0);
  await flush();
  assert.equal(runs.length, 3, 'at once when the last run is old enough');
  nc.close();
});
