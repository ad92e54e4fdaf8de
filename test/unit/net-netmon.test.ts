import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { ManualClock } from '../../helper/core/clock.js';
import { NetMon, networkKey, NETMON_POLL_MS } from '../../helper/net/netmon.js';

const v4 = (address: string, internal = false): NetworkInterfaceInfo => ({ address, netmask: '255.255.255.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal, cidr: `${address}/24` });

test('networkKey: usable IPv4 addresses only; loopback, link-local, IPv6, the virtual LAN and our WireGuard interface do not count', () => {
  const base = { eth0: [v4('192.168.1.20')], lo: [v4('127.0.0.1', true)] };
  const k = networkKey(base, { excludeInterfaces: ['lanrage0'] });
  assert.equal(k, 'eth0=192.168.1.20/255.255.255.0');
  assert.equal(networkKey({ ...base, lanrage0: [v4('10.66.0.3')] }, { excludeInterfaces: ['lanrage0'] }), k, 'joining a party is no network change');
  assert.equal(networkKey({ ...base, wg9: [v4('10.66.0.3')] }, { excludeInterfaces: [] }), k, 'the virtual LAN on any interface');
  assert.equal(networkKey({ ...base, eth1: [v4('169.254.3.4')] }, { excludeInterfaces: [] }), k);
  const v6: NetworkInterfaceInfo = { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '00:00:00:00:00:00', internal: false, cidr: 'fe80::1/64', scopeid: 1 };
  assert.equal(networkKey({ ...base, eth0: [v4('192.168.1.20'), v6] }, { excludeInterfaces: [] }), k);
  assert.notEqual(networkKey({ eth0: [v4('192.168.1.21')] }, { excludeInterfaces: [] }), k, 'a new DHCP lease');
  assert.equal(networkKey({ b: [v4('10.0.0.1')], a: [v4('10.0.0.2')] }, { excludeInterfaces: [] }), networkKey({ a: [v4('10.0.0.2')], b: [v4('10.0.0.1')] }, { excludeInterfaces: [] }), 'order does not matter');
});

test('NetMon polls and reports each change once', () => {
  const clock = new ManualClock();
  let ifs: NodeJS.Dict<NetworkInterfaceInfo[]> = { eth0: [v4('192.168.1.20')] };
  const changes: string[] = [];
  const m = new NetMon({ excludeInterfaces: [], read: () => ifs, clock, onChange: (_b, a) => changes.push(a) });
  m.start();
  clock.advance(NETMON_POLL_MS * 3);
  assert.deepEqual(changes, []);
  ifs = { wlan0: [v4('10.1.2.3')] };
  clock.advance(NETMON_POLL_MS);
  assert.deepEqual(changes, ['wlan0=10.1.2.3/255.255.255.0']);
  clock.advance(NETMON_POLL_MS * 2);
  assert.equal(changes.length, 1);
  m.stop();
  ifs = { eth0: [v4('192.168.1.20')] };
  clock.advance(NETMON_POLL_MS * 2);
  assert.equal(changes.length, 1, 'nothing after stop');
});
