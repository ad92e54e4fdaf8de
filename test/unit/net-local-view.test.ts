import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { ManualClock } from '../../helper/core/clock.js';
import { makePolicy } from '../../helper/net/candidates.js';
import { LocalView, MAX_HELD, randomPortMove } from '../../helper/net/local-view.js';
import { newCounters } from '../../helper/net/magicsock-api.js';
import type { StunClient } from '../../helper/net/stun/client.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {}, child() { return quiet; } };
const LAN: NodeJS.Dict<NetworkInterfaceInfo[]> = {
  eth0: [{ address: '10.1.0.2', netmask: '255.255.255.0', family: 'IPv4', mac: '00:00:00:00:00:01', internal: false, cidr: '10.1.0.2/24' }],
};
const SERVERS = ['198.51.100.1:3478', '198.51.100.2:3478'];

/** A LocalView whose STUN servers answer `mapped` (both alike: one mapping per socket, or not). */
function setup() {
  const clock = new ManualClock();
  let mapped: string[] = ['203.0.113.62:39616', '203.0.113.62:39616'];
  const direct = new Set<string>();
  const published: string[][] = [];
  const stun = {
    probe: async (servers: readonly string[]) => ({
      nat: {
        mapping: mapped[0] === mapped[1] ? ('endpoint-independent' as const) : ('endpoint-dependent' as const),
        publicAddress: mapped[0] ?? null,
      },
      answers: servers.map((_, i) => mapped[i] ?? null),
    }),
  } as unknown as StunClient;
  const view = new LocalView({
    clock,
    log: quiet,
    c: newCounters(),
    policy: makePolicy({ excludeSubnets: [] }),
    stun,
    stunServers: () => SERVERS,
    bindAddress: '0.0.0.0',
    stunRefreshMs: 0,
    networkInterfaces: () => LAN,
    port: () => 41641,
    running: () => true,
    closed: () => false,
    natChanged: () => {},
    candidatesChanged: (c) => void published.push(c),
    directPeers: () => direct,
  });
  view.start();
  return {
    view,
    direct,
    published,
    moveTo(a: string, b = a) {
      mapped = [a, b];
    },
  };
}

test('a STUN move while direct paths work keeps the old address listed until those paths stop', async () => {
  const t = setup();
  await t.view.localCandidates();
  assert.deepEqual(t.view.candidates, ['10.1.0.2:41641', '203.0.113.62:39616']);
  // Per-flow NAT: the refresh's STUN flow got a new port; two peers' flows still use the old one.
  t.direct.add('bob').add('carol');
  t.moveTo('203.0.113.62:64996');
  await t.view.localCandidates();
  assert.deepEqual(t.view.candidates, ['10.1.0.2:41641', '203.0.113.62:64996', '203.0.113.62:39616'], 'new address first, old one still listed');
  assert.deepEqual(t.view.heldAddresses(), ['203.0.113.62:39616']);
  // A peer that joins later and goes direct does not keep the old address alive.
  t.direct.delete('bob');
  t.direct.add('dave');
  t.view.pathsChanged();
  assert.deepEqual(t.view.heldAddresses(), ['203.0.113.62:39616'], 'carol still uses it');
  const before = t.published.length;
  t.direct.delete('carol');
  t.view.pathsChanged();
  assert.deepEqual(t.view.heldAddresses(), []);
  assert.deepEqual(t.view.candidates, ['10.1.0.2:41641', '203.0.113.62:64996']);
  assert.equal(t.published.length, before + 1, 'peers hear of the release at once');
});

test('a STUN move with no direct path up (a real rebinding) replaces the address at once', async () => {
  const t = setup();
  await t.view.localCandidates();
  t.moveTo('203.0.113.62:50000');
  await t.view.localCandidates();
  assert.deepEqual(t.view.candidates, ['10.1.0.2:41641', '203.0.113.62:50000']);
  assert.deepEqual(t.view.heldAddresses(), []);
});

test('behind a symmetric NAT nothing is held', async () => {
  const t = setup();
  await t.view.localCandidates();
  t.direct.add('bob');
  t.moveTo('203.0.113.62:40001', '203.0.113.62:40002');
  await t.view.localCandidates();
  assert.deepEqual(t.view.heldAddresses(), []);
  assert.ok(!t.view.candidates.includes('203.0.113.62:39616'));
});

test('moving back to a held address un-holds it; at most MAX_HELD are held', async () => {
  const t = setup();
  await t.view.localCandidates();
  t.direct.add('bob');
  t.moveTo('203.0.113.62:2000');
  await t.view.localCandidates();
  t.moveTo('203.0.113.62:39616');
  await t.view.localCandidates();
  assert.deepEqual(t.view.heldAddresses(), ['203.0.113.62:2000']);
  assert.equal(t.view.candidates.filter((c) => c === '203.0.113.62:39616').length, 1, 'listed once');
  for (let p = 3000; p < 3000 + MAX_HELD + 2; p++) {
    t.moveTo(`203.0.113.62:${p}`);
    await t.view.localCandidates();
  }
  assert.equal(t.view.heldAddresses().length, MAX_HELD);
  assert.ok(t.view.candidates.length <= 2 + MAX_HELD, 'within the control server limit of 16');
});

test('nothing held: pathsChanged publishes nothing', async () => {
  const t = setup();
  await t.view.localCandidates();
  const n = t.published.length;
  t.view.pathsChanged();
  assert.equal(t.published.length, n);
});

test('behind a NAT with random ports per flow, a new STUN port alone is not published; a new address, or a port pattern, is', async () => {
  const t = setup();
  t.moveTo('203.0.113.62:40001', '203.0.113.62:51377');
  await t.view.localCandidates();
  assert.deepEqual(t.view.candidates, ['10.1.0.2:41641', '203.0.113.62:40001']);
  const before = t.published.length;
  // Every refresh at rest: STUN's flow expired, the NAT picked new random ports.
  for (const [a, b] of [['203.0.113.62:23001', '203.0.113.62:61002'], ['203.0.113.62:7003', '203.0.113.62:33004']] as const) {
    t.moveTo(a, b);
    await t.view.localCandidates();
  }
  assert.equal(t.published.length, before, 'nothing new for the party');
  assert.deepEqual(t.view.candidates, ['10.1.0.2:41641', '203.0.113.62:40001']);
  // A new public address is news.
  t.moveTo('203.0.113.99:23001', '203.0.113.99:61002');
  await t.view.localCandidates();
  assert.equal(t.published.length, before + 1);
  assert.deepEqual(t.view.candidates, ['10.1.0.2:41641', '203.0.113.99:23001']);
});

test('randomPortMove: only a port change behind a random endpoint-dependent NAT', () => {
  const ed = (a: string | null) => ({ mapping: 'endpoint-dependent' as const, publicAddress: a });
  const ei = (a: string | null) => ({ mapping: 'endpoint-independent' as const, publicAddress: a });
  assert.equal(randomPortMove(ed('203.0.113.1:1000'), ed('203.0.113.1:2000'), 0), true);
  assert.equal(randomPortMove(ed('203.0.113.1:1000'), ed('203.0.113.1:2000'), 1), false, 'sequential: the port is the prediction\'s reference');
  assert.equal(randomPortMove(ed('203.0.113.1:1000'), ed('203.0.113.2:1000'), 0), false, 'a new address');
  assert.equal(randomPortMove(ei('203.0.113.1:1000'), ei('203.0.113.1:2000'), 0), false, 'one mapping per socket: a rebinding');
  assert.equal(randomPortMove(ei('203.0.113.1:1000'), ed('203.0.113.1:2000'), 0), false, 'the NAT kind changed');
  assert.equal(randomPortMove(ed(null), ed('203.0.113.1:2000'), 0), false);
  assert.equal(randomPortMove(ed('203.0.113.1:1000'), ed('203.0.113.1:1000'), 0), false);
});
