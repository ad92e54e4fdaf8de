// The 'upnp' site kind in the lab's plan, without root: a port-restricted router plus the empty
// nft table and chains miniupnpd's nftables backend fills.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NAT_KINDS, ROUTER_TABLE, UPNP_CHAINS, UPNP_TABLE, planLab } from './topology.js';

test("a 'upnp' site: a port-restricted NAT router with miniupnpd's nft table, and only there", () => {
  assert.ok(NAT_KINDS.includes('upnp'));
  const plan = planLab('x3', [{ name: 'u', kind: 'upnp' }, { name: 'p', kind: 'port-restricted' }]);
  const [u, p] = plan.sites;
  assert.equal(u?.routerNs, 'lrx3-u-r');
  assert.deepEqual([u?.publicIp, u?.lanIp, u?.routerLanIp], ['203.0.113.6', '198.51.100.2', '198.51.100.1']);
  const rules = plan.namespaces.find((n) => n.name === 'lrx3-u-r')?.nft ?? '';
  const plain = plan.namespaces.find((n) => n.name === 'lrx3-p-r')?.nft ?? '';
  // The same home router as 'port-restricted' (masquerade, firewall that lets DNATed flows in) ...
  assert.ok(rules.startsWith(`table ip ${ROUTER_TABLE} {\n`));
  assert.match(rules, /oifname "lrx3v1b" masquerade\n/);
  assert.doesNotMatch(rules, /fully-random/);
  assert.match(rules, /ct status dnat accept/);
  // ... plus miniupnpd's table: each base chain jumps to the chain miniupnpd writes its rules in.
  assert.match(rules, new RegExp(`table inet ${UPNP_TABLE} \\{`));
  for (const [hook, chain] of [['forward', UPNP_CHAINS.forward], ['prerouting', UPNP_CHAINS.prerouting], ['postrouting', UPNP_CHAINS.postrouting]] as const) {
    assert.match(rules, new RegExp(`chain ${hook} \\{\\n    type \\w+ hook ${hook} priority \\w+; policy accept;\\n    jump ${chain}\\n  \\}\\n  chain ${chain} \\{\\n  \\}`));
  }
  assert.equal((rules.match(/\{/g) ?? []).length, (rules.match(/\}/g) ?? []).length, 'braces balance');
  assert.doesNotMatch(plain, new RegExp(UPNP_TABLE));
});

test("a 'upnp-symmetric' site: the same miniupnpd table on a symmetric router that NATs only what it forwards", () => {
  assert.ok(NAT_KINDS.includes('upnp-symmetric'));
  const plan = planLab('x5', [{ name: 'u', kind: 'upnp-symmetric' }]);
  const rules = plan.namespaces.find((n) => n.name === 'lrx5-u-r')?.nft ?? '';
  // Forwarded LAN traffic gets a random port per destination; the router's own (miniupnpd's STUN
  // check) keeps its ports, or miniupnpd would refuse to map anything.
  assert.match(rules, /iifname "\S+" oifname "\S+" masquerade fully-random\n/);
  assert.match(rules, new RegExp(`table inet ${UPNP_TABLE} \\{`));
  assert.match(rules, /ct status dnat accept/);
});
