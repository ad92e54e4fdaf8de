import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FastPath, fastPathTableName, parseCounters, pinnedKey, renderRuleset } from '../../helper/net/fastpath.js';
import { HoldQueue } from '../../helper/net/wgproxy.js';

test('fastpath: the table is named after the interface, safely', () => {
  assert.equal(fastPathTableName('lanrage0'), 'lanrage_fp_lanrage0');
  assert.equal(fastPathTableName('wg-lab.1'), 'lanrage_fp_wg_lab_1');
  assert.equal(fastPathTableName('"; flush ruleset'), 'lanrage_fp____flush_ruleset');
});

test('fastpath: ruleset rewrites only WireGuard traffic of fast-path peers, both ways', () => {
  const r = renderRuleset('lanrage_fp_wg0', 51820, 41641, ['203.0.113.6:40001', '198.51.100.2:5']);
  assert.match(r, /^add table ip lanrage_fp_wg0\ndelete table ip lanrage_fp_wg0\ntable ip lanrage_fp_wg0 \{/);
  assert.match(r, /elements = \{ 203\.0\.113\.6 \. 40001, 198\.51\.100\.2 \. 5 \}/);
  assert.match(r, /hook output priority raw;[^}]*udp sport 51820 ip daddr \. udp dport @peers udp sport set 41641/);
  assert.match(r, /hook prerouting priority raw;[^}]*udp dport 41641 ip saddr \. udp sport @peers @th,64,32 \{ 0x03000000, 0x04000000 \} udp dport set 51820/);
  // Handshake initiations and responses from the peer are not steered past the helper: its
  // crossing guard must see them (handshake.ts), or crossed handshakes wait for the 20 s keepalive.
  const pre = r.slice(r.indexOf('chain prerouting'));
  assert.doesNotMatch(pre, /0x01000000|0x02000000/);
  const pinned = renderRuleset('lanrage_fp_wg0', 51820, 41641, [], [{ endpoint: '203.0.113.6:40001', localPort: 40100 }]);
  assert.match(pinned, /@th,64,32 \{ 0x03000000, 0x04000000 \} udp dport \. ip saddr \. udp sport @pinnedin udp dport set 51820/);
  assert.doesNotMatch(pinned.slice(pinned.indexOf('chain prerouting')), /0x01000000|0x02000000/);
  // No peers: the table only goes away.
  assert.equal(renderRuleset('lanrage_fp_wg0', 51820, 41641, []), 'add table ip lanrage_fp_wg0\ndelete table ip lanrage_fp_wg0\n');
});

test('fastpath: refuses anything that is not a plain endpoint or port', () => {
  assert.throws(() => renderRuleset('t', 51820, 41641, ['203.0.113.6:1 } ; flush ruleset ; {']));
  assert.throws(() => renderRuleset('t', 0, 41641, ['203.0.113.6:1']));
  assert.throws(() => renderRuleset('t', 51820, 70000, ['203.0.113.6:1']));
  assert.throws(() => renderRuleset('t;x', 51820, 41641, ['203.0.113.6:1']));
});

test('fastpath: installs on the first peer, updates the set, removes the table with the last', async () => {
  const runs: string[] = [];
  const fp = new FastPath({ iface: 'wg0', wgPort: () => 51820, pubPort: () => 41641, run: async (r) => void runs.push(r) });
  await fp.set('a', '203.0.113.6:40001');
  await fp.set('b', '203.0.113.10:40002');
  await fp.set('a', null);
  await fp.set('b', null);
  await fp.set('b', null); // nothing installed: nothing to run
  assert.equal(runs.length, 4);
  assert.match(runs[0] as string, /elements = \{ 203\.0\.113\.6 \. 40001 \}/);
  assert.match(runs[1] as string, /203\.0\.113\.6 \. 40001, 203\.0\.113\.10 \. 40002/);
  assert.match(runs[2] as string, /elements = \{ 203\.0\.113\.10 \. 40002 \}/);
  assert.doesNotMatch(runs[3] as string, /table ip lanrage_fp_wg0 \{/);
});

test('fastpath: a change that changes nothing runs no nft; after a failed run or a reset the same ruleset runs again', async () => {
  const runs: string[] = [];
  let fail = false;
  const fp = new FastPath({ iface: 'wg0', wgPort: () => 51820, pubPort: () => 41641, run: async (r) => { runs.push(r); if (fail) throw new Error('nft: busy'); } });
  await fp.set('a', '203.0.113.6:40001');
  await fp.set('a', '203.0.113.6:40001'); // the endpoint it has
  assert.equal(runs.length, 1);
  fail = true;
  await assert.rejects(fp.set('a', '203.0.113.6:40002'), /busy/);
  fail = false;
  await fp.set('a', '203.0.113.6:40002'); // the failed ruleset again: it is not installed, so it runs
  assert.equal(runs.length, 3);
  await fp.reset();
  await fp.set('a', '203.0.113.6:40002'); // reset removed the table: the same ruleset runs again
  assert.equal(runs.length, 5);
  assert.equal(runs[4], runs[2]);
});

test('fastpath: a failing nft is reported to the caller and does not wedge later applies', async () => {
  let fail = true;
  const fp = new FastPath({ iface: 'wg0', wgPort: () => 51820, pubPort: () => 41641, run: async () => { if (fail) throw new Error('nft: Operation not permitted'); } });
  await assert.rejects(fp.set('a', '203.0.113.6:40001'), /not permitted/);
  fail = false;
  await fp.set('a', '203.0.113.6:40001');
});

test('hold queue: keeps the last 4 packets in order', () => {
  const q = new HoldQueue();
  for (let i = 1; i <= 6; i++) q.push(Buffer.from([i]));
  assert.equal(q.dropped, 2);
  assert.deepEqual(q.take().map((b) => b[0]), [3, 4, 5, 6]);
  assert.equal(q.size, 0);
});

test('renderRuleset: a pinned peer uses its own local port both ways', () => {
  const r = renderRuleset('lanrage_fp_wg0', 51820, 41641, ['203.0.113.6:40001'], [{ endpoint: '203.0.113.10:5000', localPort: 45000 }]);
  assert.match(r, /udp sport 51820 ip daddr \. udp dport @peers udp sport set 41641/);
  assert.match(r, /elements = \{ 203\.0\.113\.10 \. 5000 : 45000 \}/);
  assert.match(r, /udp sport 51820 udp sport set ip daddr \. udp dport map @pinned/);
  // The type check comes first: only WireGuard packets are looked up, so only they are counted.
  assert.match(r, /@th,64,32 \{[^}]+\} udp dport \. ip saddr \. udp sport @pinnedin udp dport set 51820/);
  assert.match(r, /set pinnedin \{\n    type inet_service \. ipv4_addr \. inet_service\n    counter\n    elements = \{ 45000 \. 203\.0\.113\.10 \. 5000 \}/);
  // Outgoing packets of the pinned peer are counted before their source port is rewritten.
  assert.match(r, /set pinnedout \{\n    type ipv4_addr \. inet_service\n    counter\n    elements = \{ 203\.0\.113\.10 \. 5000 \}/);
  assert.match(r, /udp sport 51820 ip daddr \. udp dport @pinnedout\n    udp sport 51820 udp sport set ip daddr \. udp dport map @pinned/);
  const onlyPinned = renderRuleset('t', 51820, 41641, [], [{ endpoint: '203.0.113.10:5000', localPort: 45000 }]);
  assert.doesNotMatch(onlyPinned, /@peers/);
  assert.match(onlyPinned, /@pinned/);
  assert.throws(() => renderRuleset('t', 51820, 41641, [], [{ endpoint: '203.0.113.10:5000', localPort: 0 }]));
  assert.throws(() => renderRuleset('t', 51820, 41641, [], [{ endpoint: '203.0.113.10:5000 } ; flush ruleset', localPort: 1 }]));
});

test('fastpath: changes made while nft runs are batched into one more transaction', async () => {
  const runs: string[] = [];
  let release: () => void = () => {};
  const fp = new FastPath({
    iface: 'wg0',
    wgPort: () => 51820,
    pubPort: () => 41641,
    run: (r) => {
      runs.push(r);
      // The first run blocks until released: a slow nft on a loaded machine.
      return runs.length === 1 ? new Promise<void>((res) => (release = res)) : Promise.resolve();
    },
  });
  const first = fp.set('p0', '203.0.113.1:40000');
  await new Promise((r) => setImmediate(r));
  assert.equal(runs.length, 1);
  // A storm of peers arrives while the first transaction is still running.
  const later = Array.from({ length: 14 }, (_, i) => fp.set(`p${i + 1}`, `203.0.113.${i + 2}:40000`));
  release();
  await Promise.all([first, ...later]);
  assert.equal(runs.length, 2, 'one transaction for the whole change set, not one per peer');
  for (let i = 0; i < 15; i++) assert.match(runs[1] as string, new RegExp(`203\\.0\\.113\\.${i + 1} \\. 40000`));
  // A failing run rejects every change that rode on it, and the next change runs again.
  let fail = true;
  const fp2 = new FastPath({ iface: 'wg1', wgPort: () => 51820, pubPort: () => 41641, run: async () => { if (fail) throw new Error('nft: busy'); } });
  const a = fp2.set('x', '203.0.113.1:1');
  const b = fp2.set('y', '203.0.113.2:1');
  await assert.rejects(a, /busy/);
  await assert.rejects(b, /busy/);
  fail = false;
  await fp2.set('z', '203.0.113.3:1');
});

test('fastpath: a change made after reset() runs after it (does not ride on a run queued before)', async () => {
  const runs: string[] = [];
  let release: () => void = () => {};
  const fp = new FastPath({
    iface: 'wg2',
    wgPort: () => 51820,
    pubPort: () => 41641,
    run: (r) => {
      runs.push(r);
      return runs.length === 1 ? new Promise<void>((res) => (release = res)) : Promise.resolve();
    },
  });
  const a = fp.set('a', '203.0.113.1:40000');
  await new Promise((r) => setImmediate(r));
  const b = fp.set('b', '203.0.113.2:40000'); // queued behind the running one
  const reset = fp.reset();
  const c = fp.set('c', '203.0.113.3:40000'); // after the reset: must not join b's run
  release();
  await Promise.all([a, b, reset, c]);
  const last = runs[runs.length - 1] as string;
  assert.match(last, /203\.0\.113\.3 \. 40000/, 'the last transaction installs c: the reset did not remove it');
  assert.equal(runs.length, 4, 'a, b, the reset, c');
});

// The shape `nft -j list table` prints for a table renderRuleset made (nftables 1.0.6).
function nftJson(sets: Record<string, Array<[Array<string | number>, number, number]>>): string {
  const nftables: unknown[] = [{ metainfo: { version: '1.0.6', json_schema_version: 1 } }, { table: { family: 'ip', name: 't', handle: 1 } }];
  for (const [name, elems] of Object.entries(sets)) {
    nftables.push({ set: { family: 'ip', name, table: 't', type: ['ipv4_addr', 'inet_service'], handle: 2, flags: ['counter'], elem: elems.map(([concat, packets, bytes]) => ({ elem: { val: { concat }, counter: { packets, bytes } } })) } });
  }
  nftables.push({ map: { family: 'ip', name: 'pinned', table: 't', type: ['ipv4_addr', 'inet_service'], map: 'inet_service', elem: [[{ concat: ['203.0.113.10', 5000] }, 45000]] } });
  return JSON.stringify({ nftables });
}

test('fastpath: counters of ordinary and pinned peers are parsed apart', async () => {
  const json = nftJson({
    peers: [[['203.0.113.6', 40001], 10, 1000]],
    peersout: [[['203.0.113.6', 40001], 4, 400]],
    pinnedout: [[['203.0.113.10', 5000], 7, 700]],
    pinnedin: [[[45000, '203.0.113.10', 5000], 3, 330], [[45001, 'bogus'], 1, 1]],
  });
  const c = parseCounters(json);
  assert.deepEqual(c.get('203.0.113.6:40001'), { txPackets: 4, txBytes: 400, rxPackets: 6, rxBytes: 600 });
  assert.deepEqual(c.get(pinnedKey(45000, '203.0.113.10:5000')), { txPackets: 7, txBytes: 700, rxPackets: 3, rxBytes: 330 });
  assert.equal(c.size, 2, 'malformed elements are skipped');

  // FastPath.counters() hands them out by peer id, pinned peers included.
  const fp = new FastPath({ iface: 'wg0', wgPort: () => 51820, pubPort: () => 41641, run: async () => {}, list: async () => json });
  await fp.set('ordinary', '203.0.113.6:40001');
  await fp.set('pinned', '203.0.113.10:5000', 45000);
  const byPeer = await fp.counters();
  assert.deepEqual(byPeer.get('ordinary'), { txPackets: 4, txBytes: 400, rxPackets: 6, rxBytes: 600 });
  assert.deepEqual(byPeer.get('pinned'), { txPackets: 7, txBytes: 700, rxPackets: 3, rxBytes: 330 });
});
