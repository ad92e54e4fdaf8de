// The sequential symmetric NAT's plan, without root: the rule gives each new UDP flow the next
// port of a fixed sequence (through a map, not a bare numgen: see sequentialRuleset), TCP keeps
// plain masquerade, the firewall is the other kinds', and nothing else changes kind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NAT_KINDS, ROUTER_TABLE, SEQ_PORT_BASE, SEQ_PORT_COUNT, SEQ_PORT_STEP, planLab, sequentialRuleset } from './topology.js';

test('symmetric-sequential: a router whose UDP source NAT walks BASE + STEP·n, one table, the usual firewall', () => {
  assert.ok(NAT_KINDS.includes('symmetric-sequential'));
  const plan = planLab('sq1', [{ name: 'q', kind: 'symmetric-sequential' }, { name: 'p', kind: 'port-restricted' }]);
  const q = plan.sites[0]!;
  assert.equal(q.routerNs, 'lrsq1-q-r');
  const rules = plan.namespaces.find((n) => n.name === q.routerNs)?.nft ?? '';
  assert.match(rules, new RegExp(`^table ip ${ROUTER_TABLE} \\{\n`));
  assert.equal((rules.match(/\{/g) ?? []).length, (rules.match(/\}/g) ?? []).length, 'braces balance');
  const snat = rules.split('\n').find((l) => l.includes('snat to')) ?? '';
  assert.match(snat, new RegExp(`^    oifname "${q.link.peerIf}" meta l4proto udp snat to ${q.publicIp.replace(/\./g, '\\.')} : numgen inc mod ${SEQ_PORT_COUNT} map \\{ `));
  // The map, parsed back: n → BASE + STEP·n for every n, nothing else.
  const entries = [...snat.matchAll(/(\d+) : (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  assert.equal(entries.length, SEQ_PORT_COUNT);
  entries.forEach(([n, port], i) => {
    assert.equal(n, i);
    assert.equal(port, SEQ_PORT_BASE + SEQ_PORT_STEP * i);
  });
  assert.ok(entries.every(([, p]) => p! <= 65535));
  // Everything but UDP: plain masquerade, after the UDP rule.
  assert.ok(rules.indexOf(`oifname "${q.link.peerIf}" masquerade\n`) > rules.indexOf('snat to'));
  assert.match(rules, /chain forward \{\n    type filter hook forward priority filter; policy drop;\n    ct state established,related accept\n/);
  assert.doesNotMatch(rules, /fully-random/);
  // The other site is untouched.
  assert.doesNotMatch(plan.namespaces.find((n) => n.name === 'lrsq1-p-r')?.nft ?? '', /numgen/);
});

test('sequentialRuleset refuses port ranges that leave 1024..65535', () => {
  assert.throws(() => sequentialRuleset('w', 'l', '203.0.113.6', 65000, 2, 1024), /out of range/);
  assert.throws(() => sequentialRuleset('w', 'l', '203.0.113.6', 500, 1, 10), /out of range/);
  assert.throws(() => sequentialRuleset('w', 'l', '203.0.113.6', 40000, 0, 10), /out of range/);
  assert.match(sequentialRuleset('w', 'l', '203.0.113.6', 40000, 1, 2), /map \{ 0 : 40000, 1 : 40001 \}/);
});
