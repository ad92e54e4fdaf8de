// The lab's plan, without root: names fit the kernel's limits, addresses do not overlap, and bad
// site lists are refused before anything is created.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONTROL_ALT_IP, IFNAME_MAX, MAX_SITES, NAT_KINDS, ROUTER_TABLE, planLab, sanitizeSiteName, type NatKind } from './topology.js';

const kinds: NatKind[] = ['port-restricted', 'symmetric', 'public', 'udp-blocked', 'full-cone', 'address-restricted', 'cgnat'];
const full = Array.from({ length: MAX_SITES }, (_, i) => ({ name: `Site-${i}`, kind: kinds[i % kinds.length] as NatKind }));

test('largest lab: interface names fit IFNAMSIZ, every address and name is unique', () => {
  const plan = planLab('abcdefgh', full);
  const ifaces = plan.namespaces.flatMap((n) => n.ifaces);
  for (const i of ifaces) assert.ok(i.length <= IFNAME_MAX, `${i} is longer than ${IFNAME_MAX}`);
  assert.equal(new Set(ifaces).size, ifaces.length);
  const names = plan.namespaces.map((n) => n.name);
  assert.equal(new Set(names).size, names.length);
  for (const n of names) assert.match(n, /^lrabcdefgh-[a-z0-9]{1,8}(-[rhc])?$/);
  const addrs = plan.namespaces.flatMap((n) => n.ipBatch.filter((l) => l.startsWith('addr add')).map((l) => l.split(' ')[2]));
  assert.equal(new Set(addrs).size, addrs.length);
  for (const a of addrs) assert.match(a ?? '', /^((203\.0\.113|198\.51\.100)\.\d+\/(30|28)|192\.0\.2\.2\/32|192\.0\.2\.(1[3-9]\d|2[0-5]\d)\/30)$/);
});

test('addresses follow the documented carving', () => {
  const plan = planLab('x1', [{ name: 'a', kind: 'port-restricted' }, { name: 'b', kind: 'public' }, { name: 'c', kind: 'symmetric' }]);
  assert.equal(plan.control.inetIp, '203.0.113.1');
  assert.equal(plan.control.peerIp, '203.0.113.2');
  const [a, b, c] = plan.sites;
  assert.deepEqual([a?.publicIp, a?.lanIp, a?.routerLanIp], ['203.0.113.6', '198.51.100.2', '198.51.100.1']);
  assert.deepEqual([b?.publicIp, b?.lanIp, b?.routerNs], ['203.0.113.10', '203.0.113.10', null]);
  assert.deepEqual([c?.publicIp, c?.lanIp, c?.routerLanIp], ['203.0.113.14', '198.51.100.34', '198.51.100.33']);
  const router = plan.namespaces.find((n) => n.name === 'lrx1-c-r');
  assert.match(router?.nft ?? '', /masquerade fully-random/);
  assert.match(plan.namespaces.find((n) => n.name === 'lrx1-a-r')?.nft ?? '', /oifname "lrx1v1b" masquerade\n/);
  for (const n of plan.namespaces) {
    assert.ok(n.sysctls.includes('net.ipv6.conf.all.disable_ipv6=1'), `${n.name} keeps IPv6`);
    assert.ok(n.sysctls.includes(`net.ipv4.ip_forward=${n.role === 'inet' || n.role === 'router' ? 1 : 0}`));
  }
});

test('site names are sanitized; empty, clashing, reserved and surplus sites are refused', () => {
  assert.equal(sanitizeSiteName('Alice’s PC #2'), 'alicespc');
  assert.throws(() => planLab('x', [{ name: '!!', kind: 'public' }]), /no \[a-z0-9\]/);
  assert.throws(() => planLab('x', [{ name: 'A-1', kind: 'public' }, { name: 'a1', kind: 'symmetric' }]), /both become a1/);
  assert.throws(() => planLab('x', [{ name: 'inet', kind: 'public' }]), /reserved/);
  assert.throws(() => planLab('x', [...full, { name: 'more', kind: 'public' }]), /at most/);
  assert.throws(() => planLab('Bad-Id', []), /lab id/);
  assert.throws(() => planLab('x', [{ name: 'a', kind: 'cone' as NatKind }]), /unknown NAT kind/);
});

test('a udp-blocked site: a port-restricted NAT router that drops every forwarded UDP datagram, and only there', () => {
  assert.ok(NAT_KINDS.includes('udp-blocked'));
  const plan = planLab('x2', [{ name: 'u', kind: 'udp-blocked' }, { name: 'p', kind: 'port-restricted' }]);
  const u = plan.sites[0];
  assert.equal(u?.kind, 'udp-blocked');
  assert.equal(u?.routerNs, 'lrx2-u-r', 'behind a router like any NATed site');
  const rules = plan.namespaces.find((n) => n.name === 'lrx2-u-r')?.nft ?? '';
  // Rendered as one table; the drop comes before the rule that lets replies in, so it covers both ways.
  assert.match(rules, new RegExp(`^table ip ${ROUTER_TABLE} \\{\n`));
  assert.equal((rules.match(/\{/g) ?? []).length, (rules.match(/\}/g) ?? []).length, 'braces balance');
  assert.match(rules, /oifname "lrx2v1b" masquerade\n/, 'port-restricted mapping (not fully-random)');
  const forward = rules.slice(rules.indexOf('chain forward'));
  const drop = forward.indexOf('meta l4proto udp counter drop');
  assert.ok(drop > 0, 'UDP is dropped in the forward chain');
  assert.ok(drop < forward.indexOf('ct state established,related accept'), 'before replies are let in');
  assert.ok(drop < forward.indexOf('iifname'), 'before LAN-to-WAN traffic is let out');
  assert.doesNotMatch(rules.replace('meta l4proto udp counter drop', ''), /udp|tcp/, 'TCP is not touched');
  assert.doesNotMatch(plan.namespaces.find((n) => n.name === 'lrx2-p-r')?.nft ?? '', /l4proto udp/, 'other sites forward UDP');
});

test('cone kinds: masquerade for the mapping, a set of what each mapping sent for the filtering', () => {
  const plan = planLab('x2', [{ name: 'f', kind: 'full-cone' }, { name: 'r', kind: 'address-restricted' }, { name: 'p', kind: 'port-restricted' }]);
  const [f, r] = plan.sites;
  const fullCone = plan.namespaces.find((n) => n.name === 'lrx2-f-r')?.nft ?? '';
  const restricted = plan.namespaces.find((n) => n.name === 'lrx2-r-r')?.nft ?? '';
  // Full cone: any source may reach a public port that has sent something out.
  assert.match(fullCone, /type inet_service\n/);
  assert.match(fullCone, new RegExp(`iifname "lrx2v1b" udp dport @mapped dnat to ${f?.lanIp.replaceAll('.', '\\.')}\n`));
  assert.match(fullCone, /priority 110;.*\n.*update @mapped \{ udp sport \}/);
  // Address-restricted: only IPs that mapping has sent to, from any of their ports.
  assert.match(restricted, /type ipv4_addr \. inet_service\n/);
  assert.match(restricted, new RegExp(`iifname "lrx2v2b" ip saddr \\. udp dport @mapped dnat to ${r?.lanIp.replaceAll('.', '\\.')}\n`));
  assert.match(restricted, /update @mapped \{ ip daddr \. udp sport \}/);
  for (const nft of [fullCone, restricted]) {
    assert.match(nft, /oifname "lrx2v\db" masquerade\n/, 'endpoint-independent mapping');
    assert.match(nft, /policy drop;\n/, 'everything else meets the home firewall');
  }
  assert.doesNotMatch(plan.namespaces.find((n) => n.name === 'lrx2-p-r')?.nft ?? '', /dnat to/, 'port-restricted is unchanged');
});

test('the control namespace has a second address for the alternate STUN address, routed by the internet', () => {
  const plan = planLab('x3', [{ name: 'a', kind: 'public' }]);
  assert.equal(plan.controlAltIp, CONTROL_ALT_IP);
  const ctl = plan.namespaces.find((n) => n.role === 'control');
  const inet = plan.namespaces.find((n) => n.role === 'inet');
  assert.ok(ctl?.ipBatch.includes(`addr add ${CONTROL_ALT_IP}/32 dev ${plan.control.peerIf}`));
  assert.ok(inet?.ipBatch.includes(`route add ${CONTROL_ALT_IP}/32 via ${plan.control.peerIp} dev ${plan.control.inetIf}`));
});

test('cgnat: a port-restricted home router behind a carrier namespace with a symmetric NAT', () => {
  const plan = planLab('x4', [{ name: 'p', kind: 'public' }, { name: 'c', kind: 'cgnat' }]);
  const c = plan.sites[1]!;
  assert.equal(c.carrier?.ns, 'lrx4-c-c');
  assert.equal(c.link.peerNs, 'lrx4-c-c', 'the internet link belongs to the carrier');
  assert.equal(c.publicIp, c.link.peerIp);
  assert.deepEqual([c.carrier?.carrierIp, c.carrier?.homeIp], ['192.0.2.133', '192.0.2.134']);
  const carrier = plan.namespaces.find((n) => n.name === 'lrx4-c-c')!;
  const home = plan.namespaces.find((n) => n.name === 'lrx4-c-r')!;
  assert.equal(carrier.role, 'router');
  assert.match(carrier.nft ?? '', new RegExp(`oifname "${c.link.peerIf}" masquerade fully-random\n`));
  assert.match(home.nft ?? '', new RegExp(`oifname "${c.carrier?.homeIf}" masquerade\n`));
  assert.ok(home.ipBatch.includes(`route add default via 192.0.2.133 dev ${c.carrier?.homeIf}`));
  assert.ok(plan.rootBatch.includes(`link add ${c.carrier?.carrierIf} netns lrx4-c-c type veth peer name ${c.carrier?.homeIf} netns lrx4-c-r`));
  for (const n of [carrier, home]) assert.ok(n.sysctls.includes('net.ipv4.ip_forward=1'));
});
