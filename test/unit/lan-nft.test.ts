import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGroup } from '../../helper/lan/capture.js';
import { parseDefaultRouteInterface, parseIgmpGroups } from '../../helper/lan/inject.js';
import { renderLanRuleset, renderRemoval, type LanRuleset } from '../../helper/lan/nft.js';
import { LanTable } from '../../helper/lan/table.js';

const spec: LanRuleset = {
  table: 'lanrage_lan',
  broadcast: [{ port: 27015, capturePort: 40001 }, { port: 4445, capturePort: 40002 }],
  groups: [{ group: '224.0.0.251', port: 5353, capturePort: 40003 }],
  injectors: [{ localPort: 50001, srcIp: '10.66.0.2', srcPort: 27005 }],
  relayGuard: { ip: '10.66.0.1', port: 7654, iface: 'lanrage0' },
};

test('lan nft: capture copies broadcasts and groups; injection rewrites only injector sockets', () => {
  const r = renderLanRuleset(spec);
  assert.match(r, /^add table ip lanrage_lan\ndelete table ip lanrage_lan\ntable ip lanrage_lan \{/);
  assert.match(r, /set bports \{\n\s+type inet_service;\n\s+elements = \{ 27015, 4445 \}/);
  assert.match(r, /map bcast_cap \{[^}]*elements = \{ 27015 : 40001, 4445 : 40002 \}/);
  assert.match(r, /set groups \{[^}]*elements = \{ 224\.0\.0\.251 \. 5353 \}/);
  assert.match(r, /map group_cap \{[^}]*elements = \{ 224\.0\.0\.251 \. 5353 : 40003 \}/);
  assert.match(r, /map inject_addr \{[^}]*elements = \{ 50001 : 10\.66\.0\.2 \}/);
  assert.match(r, /map inject_sport \{[^}]*elements = \{ 50001 : 27005 \}/);
  // Order matters: our own injected datagrams leave the chain before the capture rules.
  const out = /chain output \{([^}]*)\}/.exec(r)?.[1] ?? '';
  assert.ok(out.indexOf('goto inject') < out.indexOf('dup to'), out);
  assert.match(out, /hook output priority raw/);
  assert.match(out, /fib daddr type broadcast udp dport @bports dup to 127\.0\.0\.1/);
  assert.match(r, /iif "lo" ct state untracked jump captured/);
  assert.match(r, /ip daddr 10\.66\.0\.1 udp dport 7654 iifname != "lanrage0" drop/);
});

test('lan nft: empty sets are declared without elements; no guard without an interface', () => {
  const r = renderLanRuleset({ table: 't1', broadcast: [], groups: [], injectors: [], relayGuard: null });
  assert.doesNotMatch(r, /elements/);
  assert.doesNotMatch(r, /chain input/);
  assert.equal(renderRemoval('t1'), 'add table ip t1\ndelete table ip t1\n');
});

test('lan nft: refuses anything that could change the ruleset', () => {
  assert.throws(() => renderLanRuleset({ ...spec, table: 'x; flush ruleset' }));
  assert.throws(() => renderLanRuleset({ ...spec, broadcast: [{ port: 0, capturePort: 1 }] }));
  assert.throws(() => renderLanRuleset({ ...spec, broadcast: [{ port: 1, capturePort: 1 }, { port: 1, capturePort: 2 }] }));
  assert.throws(() => renderLanRuleset({ ...spec, groups: [{ group: '10.0.0.1', port: 5, capturePort: 6 }] }));
  assert.throws(() => renderLanRuleset({ ...spec, injectors: [{ localPort: 5, srcIp: '10.66.0.2 } ; flush ruleset', srcPort: 1 }] }));
  assert.throws(() => renderLanRuleset({ ...spec, relayGuard: { ip: '10.66.0.1', port: 7654, iface: 'wg" drop' } }));
});

test('lan table: changes made while a commit runs ride on one later commit', async () => {
  const runs: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const t = new LanTable({
    table: 'lt',
    run: async (r) => {
      runs.push(r);
      if (runs.length === 1) await gate;
    },
  });
  const a = t.setCapture([{ port: 1000, capturePort: 2000 }], []);
  await new Promise((r) => setImmediate(r));
  const b = t.setInjectors([{ localPort: 3000, srcIp: '10.66.0.9', srcPort: 4000 }]);
  const c = t.setRelayGuard({ ip: '10.66.0.1', port: 7654, iface: 'wg0' });
  release();
  await Promise.all([a, b, c]);
  assert.equal(runs.length, 2);
  assert.match(runs[1] as string, /3000 : 10\.66\.0\.9/);
  assert.match(runs[1] as string, /iifname != "wg0"/);
  await t.remove();
  assert.equal(runs[2], renderRemoval('lt'));
});

test('lan table: a commit that changes nothing runs no nft; after remove() it runs again', async () => {
  const runs: string[] = [];
  const t = new LanTable({ table: 'lt', run: async (r) => void runs.push(r) });
  await t.setInjectors([{ localPort: 3000, srcIp: '10.66.0.9', srcPort: 4000 }]);
  await t.setInjectors([{ localPort: 3000, srcIp: '10.66.0.9', srcPort: 4000 }]);
  assert.equal(runs.length, 1);
  await t.remove();
  await t.setInjectors([{ localPort: 3000, srcIp: '10.66.0.9', srcPort: 4000 }]);
  assert.equal(runs.length, 3);
  assert.equal(runs[2], runs[0]);
});

test('lan groups: "group:port" strictly', () => {
  assert.deepEqual(parseGroup('224.0.0.251:5353'), { group: '224.0.0.251', port: 5353 });
  assert.deepEqual(parseGroup('239.255.255.250:1900'), { group: '239.255.255.250', port: 1900 });
  for (const bad of ['224.0.0.251', '10.0.0.1:5353', '224.0.0.251:0', '224.0.0.251:70000', '224.0.0.251:05353', ' 224.0.0.251:5353', 'x', 5353]) {
    assert.equal(parseGroup(bad), null, String(bad));
  }
});

test('lan inject: the default-route interface from /proc/net/route', () => {
  const text = [
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
    'lanrage0\t0000420A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
    'wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0',
    'eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0',
    'down0\t00000000\t0101A8C0\t0002\t0\t0\t1\t00000000\t0\t0\t0',
  ].join('\n');
  assert.equal(parseDefaultRouteInterface(text), 'eth0');
  assert.equal(parseDefaultRouteInterface(text.split('\n').slice(0, 2).join('\n')), null);
  assert.equal(parseDefaultRouteInterface(''), null);
});

test('lan inject: joined multicast groups per interface from /proc/net/igmp', () => {
  const text = [
    'Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter',
    '1\tlo        :     1      V3',
    '\t\t\t\t010000E0     1 0:00000000\t\t0',
    '2\teth0      :     2      V3',
    '\t\t\t\tFB0000E0     1 0:00000000\t\t0',
    '\t\t\t\t010000E0     1 0:00000000\t\t0',
    '3\tlanrage0  :     0      V3',
  ].join('\n');
  const g = parseIgmpGroups(text, true);
  assert.deepEqual([...(g.get('eth0') ?? [])], ['224.0.0.251', '224.0.0.1']);
  assert.deepEqual([...(g.get('lo') ?? [])], ['224.0.0.1']);
  assert.equal(g.get('lanrage0')?.size, 0);
  assert.ok(parseIgmpGroups(text.replace('FB0000E0', 'E00000FB'), false).get('eth0')?.has('224.0.0.251'));
});
