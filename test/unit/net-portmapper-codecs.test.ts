import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as natpmp from '../../helper/net/portmapper/natpmp.js';
import * as pcp from '../../helper/net/portmapper/pcp.js';
import * as upnp from '../../helper/net/portmapper/upnp.js';
import { localAddressFor, parseDefaultGateway, sameSubnet } from '../../helper/net/portmapper/gateway.js';
import { isUsableExternalIp } from '../../helper/net/portmapper/portmapper.js';

// Byte-exact answers below were captured from Debian's miniupnpd 2.3.1 in a lab namespace.

test('NAT-PMP: requests are the RFC 6886 bytes; answers are decoded strictly', () => {
  assert.deepEqual([...natpmp.encodeExternalAddressRequest()], [0, 0]);
  assert.deepEqual([...natpmp.encodeMapRequest(41641, 41641, 60)], [0, 1, 0, 0, 0xa2, 0xa9, 0xa2, 0xa9, 0, 0, 0, 60]);
  assert.throws(() => natpmp.encodeMapRequest(0, 1, 60), RangeError);
  assert.throws(() => natpmp.encodeMapRequest(1, 70000, 60), RangeError);

  const ok = Buffer.from([0, 128, 0, 0, 0, 0, 1, 0, 203, 0, 113, 6]);
  assert.deepEqual(natpmp.decodeExternalAddressResponse(ok), { epoch: 256, ip: '203.0.113.6' });
  // miniupnpd with a reserved WAN address: result 3 (network failure).
  const refused = Buffer.from('008000030000000100000000', 'hex');
  assert.throws(() => natpmp.decodeExternalAddressResponse(refused), (e: unknown) => e instanceof natpmp.NatPmpError && e.result === 3);
  assert.throws(() => natpmp.decodeExternalAddressResponse(ok.subarray(0, 11)), /11-byte/);
  assert.throws(() => natpmp.decodeExternalAddressResponse(Buffer.concat([ok, Buffer.alloc(4)])), /16-byte/);
  assert.throws(() => natpmp.decodeMapResponse(ok), /opcode/);
  const map = Buffer.from([0, 129, 0, 0, 0, 0, 0, 9, 0xa2, 0xa9, 0x13, 0x88, 0, 0, 0x1c, 0x20]);
  assert.deepEqual(natpmp.decodeMapResponse(map), { epoch: 9, internalPort: 41641, externalPort: 5000, lifetimeSeconds: 7200 });
  assert.throws(() => natpmp.decodeMapResponse(Buffer.from([2, ...map.subarray(1)])), /version/);
});

test('PCP: ANNOUNCE and MAP requests; answers must match the nonce, protocol and port', () => {
  const ann = pcp.encodeAnnounceRequest('198.51.100.242');
  assert.equal(ann.toString('hex'), '02000000' + '00000000' + '00000000000000000000ffff' + 'c63364f2');
  // miniupnpd's answer to that ANNOUNCE.
  assert.deepEqual(pcp.decodeAnnounceResponse(Buffer.from('02800000000000000000005f000000000000000000000000', 'hex')), { opcode: 0, lifetimeSeconds: 0, epoch: 0x5f });

  const nonce = Buffer.from('0102030405060708090a0b0c', 'hex');
  const req = { nonce, clientIp: '192.168.1.20', internalPort: 41641, suggestedExternalPort: 41641, lifetimeSeconds: 7200 };
  const m = pcp.encodeMapRequest(req);
  assert.equal(m.length, 60);
  assert.equal(m[1], 1);
  assert.equal(m.readUInt32BE(4), 7200);
  assert.equal(m.subarray(20, 24).toString('hex'), 'c0a80114');
  assert.ok(m.subarray(24, 36).equals(nonce));
  assert.equal(m[36], 17);
  assert.equal(m.readUInt16BE(40), 41641);
  assert.equal(m.readUInt16BE(42), 41641);
  assert.equal(m.subarray(44, 60).toString('hex'), '00000000000000000000ffff00000000');
  assert.throws(() => pcp.encodeMapRequest({ ...req, nonce: Buffer.alloc(11) }), /12 bytes/);
  assert.throws(() => pcp.encodeMapRequest({ ...req, clientIp: '::1' }), /IPv4/);

  // A server's answer: the request's body echoed with the assigned port and address.
  const answer = (over: (b: Buffer) => void = () => undefined): Buffer => {
    const b = Buffer.alloc(60);
    b[0] = 2;
    b[1] = 0x81;
    b.writeUInt32BE(3600, 4);
    b.writeUInt32BE(77, 8);
    m.copy(b, 24, 24, 44);
    b.writeUInt16BE(50000, 42);
    Buffer.from('00000000000000000000ffffcb007106', 'hex').copy(b, 44);
    over(b);
    return b;
  };
  assert.deepEqual(pcp.decodeMapResponse(answer(), req), { opcode: 1, lifetimeSeconds: 3600, epoch: 77, internalPort: 41641, externalPort: 50000, externalIp: '203.0.113.6' });
  assert.throws(() => pcp.decodeMapResponse(answer((b) => (b[24] = 9)), req), /nonce/);
  assert.throws(() => pcp.decodeMapResponse(answer((b) => (b[36] = 6)), req), /protocol 6/);
  assert.throws(() => pcp.decodeMapResponse(answer((b) => b.writeUInt16BE(1, 40)), req), /internal port 1/);
  assert.throws(() => pcp.decodeMapResponse(answer((b) => (b[54] = 0)), req), /not IPv4/);
  assert.throws(() => pcp.decodeMapResponse(answer((b) => (b[3] = 2)), req), (e: unknown) => e instanceof pcp.PcpError && e.result === 2);
  assert.throws(() => pcp.decodeMapResponse(answer().subarray(0, 58), req), /58-byte/);
  assert.throws(() => pcp.decodeMapResponse(Buffer.concat([answer(), Buffer.alloc(1100)]), req), /byte answer/);
  // A NAT-PMP-only server answers "unsupported version" in NAT-PMP form.
  assert.throws(() => pcp.decodeMapResponse(Buffer.from('0081000100000000', 'hex'), req), (e: unknown) => e instanceof pcp.PcpError && e.result === 1);
});

const GW = '198.51.100.241';
const SSDP_ANSWER =
  'HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n' +
  'USN: uuid:3d3cec3a-8cf0-11e0-98ee-001a6bd2d07d::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nEXT:\r\n' +
  'SERVER: Debian/6.18.44-fc-v657 UPnP/1.1 MiniUPnPd/2.3.1\r\nLOCATION: http://198.51.100.241:37679/rootDesc.xml\r\n' +
  'OPT: "http://schemas.upnp.org/upnp/1/0/"; ns=01\r\n01-NLS: 1795336781\r\nBOOTID.UPNP.ORG: 1795336781\r\nCONFIGID.UPNP.ORG: 1337\r\n\r\n';

// miniupnpd's description, shortened (same nesting, services and URLs).
const DESCRIPTION =
  '<?xml version="1.0"?>\n<root xmlns="urn:schemas-upnp-org:device-1-0" configId="1337"><specVersion><major>1</major><minor>1</minor></specVersion>' +
  '<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType><serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>' +
  '<serviceId>urn:upnp-org:serviceId:L3Forwarding1</serviceId><SCPDURL>/L3F.xml</SCPDURL><controlURL>/ctl/L3F</controlURL><eventSubURL>/evt/L3F</eventSubURL></service></serviceList>' +
  '<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>' +
  '<controlURL>/ctl/CmnIfCfg</controlURL></service></serviceList><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType>' +
  '<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>' +
  '<SCPDURL>/WANIPCn.xml</SCPDURL><controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL></service>' +
  '<service><serviceType>urn:schemas-upnp-org:service:WANIPv6FirewallControl:1</serviceType><controlURL>/ctl/IP6FCtl</controlURL></service></serviceList>' +
  '</device></deviceList></device></deviceList><presentationURL>http://198.51.100.241/</presentationURL></device></root>';

test('UPnP: SSDP search and answer; the LOCATION must be plain http on the device that answered', () => {
  const s = upnp.encodeMSearch().toString('latin1');
  assert.match(s, /^M-SEARCH \* HTTP\/1\.1\r\nHOST: 239\.255\.255\.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n$/);
  const a = upnp.parseSsdpAnswer(Buffer.from(SSDP_ANSWER), GW);
  assert.equal(a.location.href, 'http://198.51.100.241:37679/rootDesc.xml');
  assert.equal(a.st, 'urn:schemas-upnp-org:device:InternetGatewayDevice:1');
  assert.match(a.server, /MiniUPnPd\/2\.3\.1/);

  assert.throws(() => upnp.parseSsdpAnswer(Buffer.from(SSDP_ANSWER), '198.51.100.242'), /not the gateway/);
  const withLoc = (loc: string) => Buffer.from(SSDP_ANSWER.replace('http://198.51.100.241:37679/rootDesc.xml', loc));
  assert.throws(() => upnp.parseSsdpAnswer(withLoc('http://203.0.113.9:80/x.xml'), GW), /not the gateway/);
  assert.throws(() => upnp.parseSsdpAnswer(withLoc('https://198.51.100.241/x.xml'), GW), /plain http/);
  assert.throws(() => upnp.parseSsdpAnswer(withLoc('http://u:p@198.51.100.241/x.xml'), GW), /credentials/);
  assert.throws(() => upnp.parseSsdpAnswer(withLoc('http://router.lan/x.xml'), GW), /not the gateway/);
  assert.throws(() => upnp.parseSsdpAnswer(withLoc('file:///etc/passwd'), GW), /plain http/);
  assert.throws(() => upnp.parseSsdpAnswer(Buffer.from(SSDP_ANSWER.replace('200 OK', '404 Not Found')), GW), /not a 200/);
  assert.throws(() => upnp.parseSsdpAnswer(Buffer.from(SSDP_ANSWER.replace(/InternetGatewayDevice:1\r\nUSN/, 'MediaServer:1\r\nUSN')), GW), /not an IGD/);
  assert.throws(() => upnp.parseSsdpAnswer(Buffer.alloc(3000, 0x41), GW), /3000-byte/);
});

test('UPnP: the device description gives the WAN connection service; its control URL must stay on the gateway', () => {
  const loc = new URL('http://198.51.100.241:37679/rootDesc.xml');
  const c = upnp.parseDescription(DESCRIPTION, loc, GW);
  assert.equal(c.serviceType, 'urn:schemas-upnp-org:service:WANIPConnection:2');
  assert.equal(c.controlUrl.href, 'http://198.51.100.241:37679/ctl/IPConn');

  const ppp = DESCRIPTION.replace('WANIPConnection:2', 'WANPPPConnection:1');
  assert.equal(upnp.parseDescription(ppp, loc, GW).serviceType, 'urn:schemas-upnp-org:service:WANPPPConnection:1');
  assert.throws(() => upnp.parseDescription(DESCRIPTION.replace('WANIPConnection:2', 'WANFooConnection:1'), loc, GW), /no WANIPConnection/);
  assert.throws(() => upnp.parseDescription(DESCRIPTION.replace('<controlURL>/ctl/IPConn', '<controlURL>http://203.0.113.1/ctl'), loc, GW), /not the gateway/);
  assert.throws(() => upnp.parseDescription(DESCRIPTION.replace('<specVersion>', '<URLBase>http://10.0.0.1:80/</URLBase><specVersion>'), loc, GW), /not the gateway/);
  const based = DESCRIPTION.replace('<specVersion>', '<URLBase>http://198.51.100.241:5000/</URLBase><specVersion>');
  assert.equal(upnp.parseDescription(based, loc, GW).controlUrl.href, 'http://198.51.100.241:5000/ctl/IPConn');
  const escaped = DESCRIPTION.replace('<controlURL>/ctl/IPConn', '<controlURL>/ctl?a=1&amp;b=2');
  assert.equal(upnp.parseDescription(escaped, loc, GW).controlUrl.href, 'http://198.51.100.241:37679/ctl?a=1&b=2');
  assert.throws(() => upnp.parseDescription(DESCRIPTION + ' '.repeat(70_000), loc, GW), /character description/);
});

test('UPnP: SOAP requests (never a permanent lease) and strictly read answers and faults', () => {
  const st = 'urn:schemas-upnp-org:service:WANIPConnection:1' as const;
  const add = upnp.encodeAddPortMapping(st, { externalPort: 5000, internalPort: 41641, internalClient: '192.168.1.20', leaseSeconds: 7200, description: 'LANrage <&>' });
  assert.equal(add.soapAction, '"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping"');
  assert.match(add.body, /<u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"><NewRemoteHost><\/NewRemoteHost><NewExternalPort>5000<\/NewExternalPort><NewProtocol>UDP<\/NewProtocol><NewInternalPort>41641<\/NewInternalPort><NewInternalClient>192\.168\.1\.20<\/NewInternalClient><NewEnabled>1<\/NewEnabled><NewPortMappingDescription>LANrage &lt;&amp;&gt;<\/NewPortMappingDescription><NewLeaseDuration>7200<\/NewLeaseDuration><\/u:AddPortMapping>/);
  assert.throws(() => upnp.encodeAddPortMapping(st, { externalPort: 5000, internalPort: 1, internalClient: '192.168.1.20', leaseSeconds: 0, description: '' }), /bad lease 0/);
  assert.match(upnp.encodeDeletePortMapping(st, 5000).body, /<NewRemoteHost><\/NewRemoteHost><NewExternalPort>5000<\/NewExternalPort><NewProtocol>UDP<\/NewProtocol>/);

  const ip =
    '<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>' +
    '<u:GetExternalIPAddressResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"><NewExternalIPAddress>203.0.113.6</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>';
  assert.equal(upnp.parseSoapAnswer(200, ip, 'GetExternalIPAddress').get('NewExternalIPAddress'), '203.0.113.6');
  assert.equal(upnp.parseSoapAnswer(200, ip.replace('203.0.113.6', ''), 'GetExternalIPAddress').get('NewExternalIPAddress'), '');
  assert.throws(() => upnp.parseSoapAnswer(200, ip, 'AddPortMapping'), /no AddPortMappingResponse/);
  const empty = '<s:Envelope><s:Body><u:AddPortMappingResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:2"/></s:Body></s:Envelope>';
  assert.equal(upnp.parseSoapAnswer(200, empty, 'AddPortMapping').size, 0);
  const fault =
    '<s:Envelope><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0">' +
    '<errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>';
  assert.throws(() => upnp.parseSoapAnswer(500, fault, 'AddPortMapping'), (e: unknown) => e instanceof upnp.UpnpError && e.code === 718 && /ConflictInMappingEntry/.test(e.message));
  assert.throws(() => upnp.parseSoapAnswer(503, '<html/>', 'AddPortMapping'), /HTTP 503/);
  assert.throws(() => upnp.parseSoapAnswer(200, 'x'.repeat(20_000), 'AddPortMapping'), /character SOAP answer/);
});

test('gateway: the default route from /proc/net/route, and our address on its subnet', () => {
  const route =
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n' +
    'wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n' +
    'eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n' +
    'eth0\t0000000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n' +
    'tun0\t00000000\t00000000\t0001\t0\t0\t50\t00000000\t0\t0\t0\n';
  assert.deepEqual(parseDefaultGateway(route, true), { iface: 'eth0', ip: '10.0.0.1' });
  assert.deepEqual(parseDefaultGateway(route.replace('\t100\t00000000', '\t900\t00000000'), true), { iface: 'wlan0', ip: '192.168.1.1' });
  assert.deepEqual(parseDefaultGateway('Iface\tDestination\tGateway\ntun0\t00000000\t00000000\t0001\t0\t0\t50\t00000000\n', true), null);
  assert.deepEqual(parseDefaultGateway('Iface\nwlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\n', false), { iface: 'wlan0', ip: '1.1.168.192' });

  const ifaces = {
    eth0: [
      { address: '172.16.5.5', netmask: '255.255.0.0', family: 'IPv4', mac: '', internal: false, cidr: '172.16.5.5/16' },
      { address: '10.0.0.7', netmask: '255.255.255.0', family: 'IPv4', mac: '', internal: false, cidr: '10.0.0.7/24' },
    ],
  } as unknown as NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]>;
  assert.deepEqual(localAddressFor({ iface: 'eth0', ip: '10.0.0.1' }, ifaces), { ip: '10.0.0.1', iface: 'eth0', localIp: '10.0.0.7', prefix: 24 });
  assert.equal(localAddressFor({ iface: 'eth0', ip: '10.0.1.1' }, ifaces), null);
  assert.equal(localAddressFor({ iface: 'eth1', ip: '10.0.0.1' }, ifaces), null);
  assert.ok(sameSubnet('192.168.1.20', '192.168.1.1', 24));
  assert.ok(!sameSubnet('192.168.2.20', '192.168.1.1', 24));
  assert.ok(sameSubnet('1.2.3.4', '9.9.9.9', 0));
});

test('external addresses: a private or shared router address is no use to peers', () => {
  for (const ip of ['203.0.113.6', '8.8.8.8', '100.128.0.1', '172.32.0.1']) assert.ok(isUsableExternalIp(ip), ip);
  for (const ip of ['0.0.0.0', '10.1.2.3', '192.168.1.1', '172.16.0.1', '100.64.0.1', '127.0.0.1', '169.254.1.1', '224.0.0.1', '::1', '']) assert.ok(!isUsableExternalIp(ip), ip);
});
