import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair, keyToHex, UapiError, WgInputError } from '../../helper/wg/index.js';
import { encodeSet, isCompleteResponse, parseGet } from '../../helper/wg/uapi.js';
import { parseWgDump, wgSetArgs } from '../../helper/wg/wgtool.js';

const dev = generateKeyPair();
const p1 = generateKeyPair();
const p2 = generateKeyPair();

test('encodeSet writes the UAPI text protocol with hex keys', () => {
  assert.equal(encodeSet({ privateKey: dev.privateKey, listenPort: 0 }), `set=1\nprivate_key=${keyToHex(dev.privateKey)}\nlisten_port=0\n\n`);
  assert.equal(
    encodeSet({ peers: [{ publicKey: p1.publicKey, endpoint: '192.0.2.2:51820', persistentKeepaliveSeconds: 25, allowedIps: ['10.66.0.2/32', 'fd00::2/128'] }] }),
    `set=1\npublic_key=${keyToHex(p1.publicKey)}\nendpoint=192.0.2.2:51820\npersistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=10.66.0.2/32\nallowed_ip=fd00::2/128\n\n`,
  );
  // update_only directly after public_key; remove stops the peer's block.
  assert.equal(
    encodeSet({ peers: [{ publicKey: p1.publicKey, updateOnly: true, endpoint: '[2001:db8::1]:9' }, { publicKey: p2.publicKey, updateOnly: true, remove: true, endpoint: '1.2.3.4:5' }] }),
    `set=1\npublic_key=${keyToHex(p1.publicKey)}\nupdate_only=true\nendpoint=[2001:db8::1]:9\npublic_key=${keyToHex(p2.publicKey)}\nupdate_only=true\nremove=true\n\n`,
  );
  // An empty list clears the peer's allowed IPs.
  assert.match(encodeSet({ peers: [{ publicKey: p1.publicKey, allowedIps: [] }] }), /replace_allowed_ips=true\n\n$/);
});

test('encodeSet refuses values that would inject lines', () => {
  assert.throws(() => encodeSet({ peers: [{ publicKey: p1.publicKey, endpoint: '1.2.3.4:5\nremove=true' }] }), WgInputError);
  assert.throws(() => encodeSet({ peers: [{ publicKey: p1.publicKey + '\n' }] }), WgInputError);
  assert.throws(() => encodeSet({ peers: [{ publicKey: p1.publicKey, allowedIps: ['0.0.0.0/0\nprivate_key=00'] }] }), WgInputError);
  assert.throws(() => encodeSet({ listenPort: 65536 }), WgInputError);
  assert.throws(() => encodeSet({ peers: [{ publicKey: p1.publicKey, persistentKeepaliveSeconds: 1.5 }] }), WgInputError);
});

const GET_SAMPLE = [
  `private_key=${keyToHex(dev.privateKey)}`,
  'listen_port=40123',
  `public_key=${keyToHex(p1.publicKey)}`,
  'preshared_key=0000000000000000000000000000000000000000000000000000000000000000',
  'protocol_version=1',
  'endpoint=192.0.2.2:51820',
  'last_handshake_time_sec=1700000000',
  'last_handshake_time_nsec=123456789',
  'tx_bytes=564',
  'rx_bytes=476',
  'persistent_keepalive_interval=25',
  'allowed_ip=10.66.0.2/32',
  'allowed_ip=fd00::2/128',
  `public_key=${keyToHex(p2.publicKey)}`,
  'preshared_key=0000000000000000000000000000000000000000000000000000000000000000',
  'protocol_version=1',
  'last_handshake_time_sec=0',
  'last_handshake_time_nsec=0',
  'tx_bytes=0',
  'rx_bytes=0',
  'persistent_keepalive_interval=0',
  'errno=0',
  '',
  '',
].join('\n');

test('parseGet reads peers and counters, and keeps only the public half of the private key', () => {
  assert.equal(isCompleteResponse(GET_SAMPLE), true);
  assert.equal(isCompleteResponse(GET_SAMPLE.slice(0, -1)), false);
  const s = parseGet(GET_SAMPLE);
  assert.equal(s.listenPort, 40123);
  assert.equal(s.publicKey, dev.publicKey);
  assert.deepEqual(s.peers, [
    { publicKey: p1.publicKey, endpoint: '192.0.2.2:51820', allowedIps: ['10.66.0.2/32', 'fd00::2/128'], lastHandshakeMs: 1700000000123, rxBytes: 476, txBytes: 564, persistentKeepaliveSeconds: 25 },
    { publicKey: p2.publicKey, endpoint: null, allowedIps: [], lastHandshakeMs: null, rxBytes: 0, txBytes: 0, persistentKeepaliveSeconds: 0 },
  ]);
  const text = JSON.stringify(s);
  assert.ok(!text.includes(keyToHex(dev.privateKey)) && !text.includes(dev.privateKey), 'the private key must not be kept');
});

test('a non-zero errno is an error; a truncated answer is not mistaken for success', () => {
  assert.throws(() => parseGet('errno=-22\n\n'), (e: unknown) => e instanceof UapiError && e.errno === -22);
  assert.throws(() => parseGet('listen_port=1\n'), /incomplete/);
  assert.throws(() => parseGet('listen_port=x1\nerrno=0\n\n'), /not a number/);
});

test('kernel backend: `wg set` gets the private key on stdin, never in argv', () => {
  const { args, input } = wgSetArgs('lanrage0', {
    privateKey: dev.privateKey,
    listenPort: 51820,
    peers: [{ publicKey: p1.publicKey, endpoint: '192.0.2.2:51820', allowedIps: ['10.66.0.2/32', '10.66.1.0/24'], persistentKeepaliveSeconds: 25 }, { publicKey: p2.publicKey, remove: true }],
  });
  assert.deepEqual(args, ['set', 'lanrage0', 'listen-port', '51820', 'private-key', '/dev/stdin', 'peer', p1.publicKey, 'endpoint', '192.0.2.2:51820', 'persistent-keepalive', '25', 'allowed-ips', '10.66.0.2/32,10.66.1.0/24', 'peer', p2.publicKey, 'remove']);
  assert.equal(input, dev.privateKey + '\n');
  assert.ok(!args.join(' ').includes(dev.privateKey));
  assert.throws(() => wgSetArgs('eth0; rm -rf /', {}), WgInputError);
});

test('kernel backend: parses `wg show NAME dump`', () => {
  const dump = [
    `${dev.privateKey}\t${dev.publicKey}\t51820\toff`,
    `${p1.publicKey}\t(none)\t192.0.2.2:51820\t10.66.0.2/32,fd00::2/128\t1700000000\t476\t564\t25`,
    `${p2.publicKey}\t(none)\t(none)\t(none)\t0\t0\t0\toff`,
    '',
  ].join('\n');
  const s = parseWgDump(dump);
  assert.equal(s.listenPort, 51820);
  assert.equal(s.publicKey, dev.publicKey);
  assert.deepEqual(s.peers, [
    { publicKey: p1.publicKey, endpoint: '192.0.2.2:51820', allowedIps: ['10.66.0.2/32', 'fd00::2/128'], lastHandshakeMs: 1700000000000, rxBytes: 476, txBytes: 564, persistentKeepaliveSeconds: 25 },
    { publicKey: p2.publicKey, endpoint: null, allowedIps: [], lastHandshakeMs: null, rxBytes: 0, txBytes: 0, persistentKeepaliveSeconds: 0 },
  ]);
  assert.ok(!JSON.stringify(s).includes(dev.privateKey));
});
