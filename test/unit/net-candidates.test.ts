import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { isOnLink, localAddresses, localCandidates, makePolicy, validatePeerCandidates, MAX_PEER_CANDIDATES } from '../../helper/net/candidates.js';
import { parseEndpoint } from '../../helper/net/addr.js';

function v4(address: string, netmask: string, internal = false): NetworkInterfaceInfo {
  return { address, netmask, family: 'IPv4', mac: '00:00:00:00:00:00', internal, cidr: null };
}

const IFACES: NodeJS.Dict<NetworkInterfaceInfo[]> = {
  lo: [v4('127.0.0.1', '255.0.0.0', true)],
  eth0: [v4('192.168.1.20', '255.255.255.0'), { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '00:00:00:00:00:00', internal: false, cidr: null, scopeid: 2 }],
  wlan0: [v4('169.254.3.4', '255.255.0.0'), v4('198.51.100.2', '255.255.255.240')],
  lanrage0: [v4('10.66.0.7', '255.255.0.0')],
  tun9: [v4('10.66.200.1', '255.255.255.255')],
  docker0: [v4('172.17.0.1', '255.255.0.0')],
};

test('candidates: local addresses exclude loopback, link-local, the virtual LAN and the WireGuard interface', () => {
  const p = makePolicy({ excludeInterfaces: ['lanrage0'] });
  assert.deepEqual(localAddresses(IFACES, p).map((a) => a.ip), ['192.168.1.20', '198.51.100.2', '172.17.0.1']);
  // The virtual LAN is excluded by subnet even on an interface we did not name.
  assert.ok(!localAddresses(IFACES, makePolicy({})).some((a) => a.ip.startsWith('10.66.')));
  // Custom exclusions replace the default.
  assert.deepEqual(localAddresses(IFACES, makePolicy({ excludeSubnets: ['10.66.0.0/16', '172.16.0.0/12'], excludeInterfaces: ['lanrage0'] })).map((a) => a.ip), ['192.168.1.20', '198.51.100.2']);
  // Loopback only when a test asks for it; a specific bind address is then the only one.
  assert.deepEqual(localAddresses(IFACES, makePolicy({ allowLoopback: true }), '127.0.0.1').map((a) => a.ip), ['127.0.0.1']);
});

test('candidates: interface addresses with the public port, then the STUN-mapped address', () => {
  const p = makePolicy({ excludeInterfaces: ['lanrage0'] });
  const addrs = localAddresses(IFACES, p);
  assert.deepEqual(localCandidates(addrs, 41641, '203.0.113.6:50000', p), ['192.168.1.20:41641', '198.51.100.2:41641', '172.17.0.1:41641', '203.0.113.6:50000']);
  // No NAT: the mapped address is one of ours already and is not repeated.
  assert.deepEqual(localCandidates(addrs.slice(0, 1), 41641, '192.168.1.20:41641', p), ['192.168.1.20:41641']);
  assert.deepEqual(localCandidates([], 41641, 'garbage', p), []);
});

test('candidates: peer candidates are validated strictly', () => {
  const p = makePolicy({});
  const input = [
    '203.0.113.6:41641', // ok
    '203.0.113.6:41641', // duplicate
    '198.51.100.2:5', // ok
    '0.0.0.0:41641', '0.1.2.3:5', // this-network
    '224.0.0.251:5353', '239.255.255.250:1900', // multicast
    '255.255.255.255:41641', '240.0.0.1:1', // broadcast / reserved
    '127.0.0.1:41641', // loopback
    '169.254.1.1:41641', // link-local
    '10.66.0.2:41641', '10.66.255.255:1', // the virtual LAN
    '203.0.113.6:0', '203.0.113.6:65536', '203.0.113.6:041641', // bad ports
    '203.0.113.06:41641', '1.2.3:4', '1.2.3.4.5:6', '256.1.1.1:1', // bad addresses
    'example.com:41641', '[::1]:41641', '::ffff:1.2.3.4:5', ' 203.0.113.6:41641', '203.0.113.6:41641\n',
    42, null, { ip: '1.2.3.4' },
    '10.65.255.255:7', // just outside the virtual LAN: fine
  ];
  assert.deepEqual(validatePeerCandidates(input, p), ['203.0.113.6:41641', '198.51.100.2:5', '10.65.255.255:7']);
  assert.deepEqual(validatePeerCandidates(['127.0.0.1:9'], makePolicy({ allowLoopback: true })), ['127.0.0.1:9']);
  assert.deepEqual(validatePeerCandidates('203.0.113.6:1', p), []);
  const many = Array.from({ length: 40 }, (_, i) => `203.0.113.${i + 1}:1000`);
  assert.equal(validatePeerCandidates(many, p).length, MAX_PEER_CANDIDATES);
});

test('candidates: endpoint parser and on-link test', () => {
  assert.deepEqual(parseEndpoint('203.0.113.6:41641'), { ip: '203.0.113.6', port: 41641 });
  assert.equal(parseEndpoint('203.0.113.6'), null);
  const addrs = localAddresses(IFACES, makePolicy({}));
  assert.ok(isOnLink('192.168.1.77', addrs));
  assert.ok(isOnLink('198.51.100.14', addrs));
  assert.ok(!isOnLink('198.51.100.18', addrs), 'next /28');
  assert.ok(!isOnLink('203.0.113.6', addrs));
});
