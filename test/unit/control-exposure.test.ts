import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as natpmp from '../../helper/net/portmapper/natpmp.js';
import * as pcp from '../../helper/net/portmapper/pcp.js';
import * as upnp from '../../helper/net/portmapper/upnp.js';
import { judgeExposure } from '../../helper/control/exposure.js';

// The embedded control server's reach: which URL the invite carries and what the player is told.

test('invite reach: a mapped TCP port puts the public address in the link', () => {
  const e = judgeExposure({ lanUrl: 'http://192.168.1.20:8670', tcp: '203.0.113.6:8670', stun: [[8671, '203.0.113.6:8671'], [8672, '203.0.113.6:8672']], answered: ['pcp', 'upnp'] });
  assert.deepEqual(e, { reach: 'internet', url: 'http://203.0.113.6:8670', note: '' });
});

test('invite reach: an external port other than the asked one is what the link carries', () => {
  const e = judgeExposure({ lanUrl: 'http://192.168.1.20:8670', tcp: '203.0.113.6:40123', stun: [[8671, '203.0.113.6:8671'], [8672, '203.0.113.6:8672']], answered: ['upnp'] });
  assert.equal(e.url, 'http://203.0.113.6:40123');
  assert.equal(e.reach, 'internet');
});

test('invite reach: STUN ports not forwarded as-is are reported (friends can still join)', () => {
  const e = judgeExposure({ lanUrl: 'http://192.168.1.20:8670', tcp: '203.0.113.6:8670', stun: [[8671, null], [8672, '203.0.113.6:9999']], answered: ['pcp'] });
  assert.equal(e.reach, 'internet');
  assert.match(e.note, /STUN ports 8671, 8672/);
});

test('invite reach: nothing mapped means LAN only, said plainly with the two choices', () => {
  const silent = judgeExposure({ lanUrl: 'http://192.168.1.20:8670', tcp: null, stun: [[8671, null], [8672, null]], answered: [] });
  assert.equal(silent.reach, 'lan-only');
  assert.equal(silent.url, 'http://192.168.1.20:8670');
  assert.match(silent.note, /works only on your LAN/);
  assert.match(silent.note, /did not answer a port-mapping request/);
  assert.match(silent.note, /public control server/);
  assert.match(silent.note, /control_server_url/);
  assert.match(silent.note, /on this LAN only/);
  const refused = judgeExposure({ lanUrl: 'http://192.168.1.20:8670', tcp: null, stun: [], answered: ['upnp'] });
  assert.match(refused.note, /router \(upnp\) refused to forward the control server's port 8670/);
});

test('invite reach: a router mapping wins over an address that merely looks public', () => {
  const e = judgeExposure({ lanUrl: 'http://198.51.100.2:8670', tcp: '203.0.113.6:8670', stun: [[8671, '203.0.113.6:8671'], [8672, '203.0.113.6:8672']], answered: ['pcp'] });
  assert.equal(e.url, 'http://203.0.113.6:8670');
});

test('invite reach: a machine with a public address of its own needs no mapping', () => {
  const e = judgeExposure({ lanUrl: 'http://203.0.113.9:8670', tcp: null, stun: [], answered: [] });
  assert.deepEqual(e, { reach: 'internet', url: 'http://203.0.113.9:8670', note: '' });
  // Carrier-grade NAT space and never-routed documentation ranges are not public.
  assert.equal(judgeExposure({ lanUrl: 'http://198.51.100.2:8670', tcp: null, stun: [], answered: [] }).reach, 'lan-only');
  assert.equal(judgeExposure({ lanUrl: 'http://100.64.3.4:8670', tcp: null, stun: [], answered: [] }).reach, 'lan-only');
});

test('port mapping codecs: TCP mappings for the control server port', () => {
  // NAT-PMP: opcode 2 maps TCP; its answer is opcode 130, and a UDP answer is not accepted for it.
  assert.deepEqual([...natpmp.encodeMapRequest(8670, 8670, 60, 'tcp')], [0, 2, 0, 0, 0x21, 0xde, 0x21, 0xde, 0, 0, 0, 60]);
  const tcpAnswer = Buffer.from([0, 130, 0, 0, 0, 0, 0, 9, 0x21, 0xde, 0x21, 0xde, 0, 0, 0x1c, 0x20]);
  assert.deepEqual(natpmp.decodeMapResponse(tcpAnswer, 'tcp'), { epoch: 9, internalPort: 8670, externalPort: 8670, lifetimeSeconds: 7200 });
  assert.throws(() => natpmp.decodeMapResponse(tcpAnswer), /opcode/);
  // PCP: protocol 6 in the MAP body; an answer for UDP does not match a TCP request.
  const nonce = Buffer.alloc(12, 7);
  const req = { nonce, clientIp: '198.51.100.2', internalPort: 8670, suggestedExternalPort: 8670, lifetimeSeconds: 60, transport: 'tcp' as const };
  const wire = pcp.encodeMapRequest(req);
  assert.equal(wire[24 + 12], 6);
  const answer = Buffer.from(wire);
  answer[1] = 0x81;
  answer.writeUInt32BE(60, 4);
  Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 6]).copy(answer, 24 + 20);
  assert.deepEqual(pcp.decodeMapResponse(answer, req), { opcode: 1, lifetimeSeconds: 60, epoch: 0, internalPort: 8670, externalPort: 8670, externalIp: '203.0.113.6' });
  assert.throws(() => pcp.decodeMapResponse(answer, { ...req, transport: 'udp' }), /protocol 6/);
  // UPnP: NewProtocol TCP in AddPortMapping and DeletePortMapping.
  const add = upnp.encodeAddPortMapping(upnp.WAN_SERVICES[1], { externalPort: 8670, internalPort: 8670, internalClient: '198.51.100.2', leaseSeconds: 7200, description: 'LANrage', transport: 'tcp' });
  assert.match(add.body, /<NewProtocol>TCP<\/NewProtocol>/);
  assert.match(upnp.encodeDeletePortMapping(upnp.WAN_SERVICES[1], 8670, 'tcp').body, /<NewProtocol>TCP<\/NewProtocol>/);
  assert.match(upnp.encodeDeletePortMapping(upnp.WAN_SERVICES[1], 8670).body, /<NewProtocol>UDP<\/NewProtocol>/);
});
