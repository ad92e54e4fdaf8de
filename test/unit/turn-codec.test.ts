import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import {
  ATTR, CLASS, METHOD, attr, checkFingerprint, checkIntegrity, classOf, decodeMessage, encodeMessage, errorCode, longTermKey, messageType, methodOf,
  readAddress, readString, readUint32,
} from '../../helper/net/turn/codec.js';
import { mintTurnCredentials, verifyTurnCredentials } from '../../helper/control/turn-credentials.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const stunLib = createRequire(import.meta.url)('stun') as {
  createMessage(t: number, tx: Buffer): { addAttribute(t: number, ...a: unknown[]): unknown };
  encode(m: unknown): Buffer;
  decode(b: Buffer): { getAttribute(t: number): { value: { code: number } } | undefined };
};

test('turn codec: message types put the class bits between the method bits', () => {
  assert.equal(messageType(METHOD.ALLOCATE, CLASS.REQUEST), 0x0003);
  assert.equal(messageType(METHOD.ALLOCATE, CLASS.SUCCESS), 0x0103);
  assert.equal(messageType(METHOD.ALLOCATE, CLASS.ERROR), 0x0113);
  assert.equal(messageType(METHOD.SEND, CLASS.INDICATION), 0x0016);
  assert.equal(messageType(METHOD.DATA, CLASS.INDICATION), 0x0017);
  assert.equal(messageType(METHOD.CHANNEL_BIND, CLASS.SUCCESS), 0x0109);
  for (const m of Object.values(METHOD)) for (const c of Object.values(CLASS)) {
    assert.equal(methodOf(messageType(m, c)), m);
    assert.equal(classOf(messageType(m, c)), c);
  }
});

test('turn codec: the RFC 5769 sample response passes integrity and fingerprint; one flipped bit fails both', () => {
  const v = hex(`0101003c 2112a442 b7e7a701bc34d686fa87dfae
    8022000b 7465737420766563746f7220
    00200008 0001a147 e112a643
    00080014 2b91f599fd9e90c38c7489f92af9ba53f06be7d7
    80280004 c07d4c96`);
  const d = decodeMessage(v);
  assert.ok(d);
  // Short-term credentials: the key is the password itself.
  const key = Buffer.from('VOkJxbRl1RmTxUk/WvJxBt');
  assert.equal(checkIntegrity(d, key), true);
  assert.equal(checkFingerprint(d), true);
  assert.equal(checkIntegrity(d, Buffer.from('wrong')), false);
  assert.deepEqual(readAddress(attr(d, ATTR.XOR_MAPPED_ADDRESS), true), { ip: '192.0.2.1', port: 32853 });
  assert.equal(readString(attr(d, ATTR.SOFTWARE)), 'test vector');
  const bad = Buffer.from(v);
  bad[44] = (bad[44] as number) ^ 1; // inside XOR-MAPPED-ADDRESS
  const db = decodeMessage(bad);
  assert.ok(db);
  assert.equal(checkIntegrity(db, key), false);
  assert.equal(checkFingerprint(db), false);
});

test('turn codec: ERROR-CODE 401 reads as 401 from the raw bytes (the stun package says 404)', () => {
  const m = stunLib.createMessage(0x0113, Buffer.alloc(12, 1));
  m.addAttribute(ATTR.ERROR_CODE, 401, 'Unauthorized');
  const b = stunLib.encode(m);
  assert.equal(stunLib.decode(b).getAttribute(ATTR.ERROR_CODE)?.value.code, 404, 'the package bug this module works around');
  const d = decodeMessage(b);
  assert.ok(d);
  assert.deepEqual(errorCode(d), { code: 401, reason: 'Unauthorized' });
  for (const code of [300, 400, 403, 437, 438, 441, 486, 508, 699]) {
    const e = stunLib.createMessage(0x0113, Buffer.alloc(12, 1));
    e.addAttribute(ATTR.ERROR_CODE, code, 'x');
    assert.equal(errorCode(decodeMessage(stunLib.encode(e))!)?.code, code);
  }
  // coturn pads some reasons with NUL bytes.
  const z = stunLib.createMessage(0x0113, Buffer.alloc(12, 1));
  z.addAttribute(ATTR.ERROR_CODE, 437, 'Mismatched allocation\0');
  assert.equal(errorCode(decodeMessage(stunLib.encode(z))!)?.reason, 'Mismatched allocation');
});

test('turn codec: an authenticated Allocate carries what coturn needs, in order, with valid integrity', () => {
  const txid = randomBytes(12);
  const key = longTermKey('1700000000:dev', 'lanrage.test', 'pw');
  assert.deepEqual(key, createHash('md5').update('1700000000:dev:lanrage.test:pw').digest());
  const b = encodeMessage(0x0003, txid, { requestedTransport: 'udp', lifetime: 600 }, { username: '1700000000:dev', realm: 'lanrage.test', nonce: 'abc', key });
  const d = decodeMessage(b);
  assert.ok(d);
  assert.equal(d.type, 0x0003);
  assert.deepEqual(d.txid, txid);
  assert.deepEqual(attr(d, ATTR.REQUESTED_TRANSPORT), hex('11000000'), 'UDP (17) in the top byte');
  assert.equal(readUint32(attr(d, ATTR.LIFETIME)), 600);
  assert.equal(readString(attr(d, ATTR.USERNAME)), '1700000000:dev');
  assert.equal(readString(attr(d, ATTR.REALM)), 'lanrage.test');
  assert.equal(readString(attr(d, ATTR.NONCE)), 'abc');
  assert.deepEqual(d.attrs.map((a) => a.type).slice(-2), [ATTR.MESSAGE_INTEGRITY, ATTR.FINGERPRINT]);
  assert.equal(checkIntegrity(d, key), true);
  assert.equal(checkFingerprint(d), true);
  assert.equal(b.length % 4, 0);
});

test('turn codec: ChannelBind and Send encode channel numbers and XOR peer addresses exactly', () => {
  const txid = Buffer.alloc(12, 0xab);
  const d = decodeMessage(encodeMessage(0x0009, txid, { channel: 0x4001, peer: { ip: '198.51.100.7', port: 4242 } }))!;
  assert.deepEqual(attr(d, ATTR.CHANNEL_NUMBER), hex('40010000'));
  // 4242 ^ 0x2112 and 198.51.100.7 ^ 0x2112a442
  assert.deepEqual(attr(d, ATTR.XOR_PEER_ADDRESS), hex('0001 3180 e721c045'));
  assert.deepEqual(readAddress(attr(d, ATTR.XOR_PEER_ADDRESS), true), { ip: '198.51.100.7', port: 4242 });
  const s = decodeMessage(encodeMessage(0x0016, txid, { peer: { ip: '203.0.113.9', port: 9 }, data: Buffer.from('hello') }))!;
  assert.deepEqual(attr(s, ATTR.DATA), Buffer.from('hello'));
  assert.throws(() => encodeMessage(0x0009, txid, { channel: 0x3fff }), /channel/);
  assert.throws(() => encodeMessage(0x0009, txid, { channel: 0x5000 }), /channel/);
  assert.throws(() => encodeMessage(0x0009, txid, { peer: { ip: 'example.com', port: 1 } }), /IPv4/);
  assert.throws(() => encodeMessage(0x0009, txid, { peer: { ip: '1.2.3.4', port: 0 } }), /IPv4/);
  assert.throws(() => encodeMessage(0x0009, Buffer.alloc(8)), /12 bytes/);
});

test('turn codec: long realms, nonces and usernames (past the package\'s 128-character helpers) still encode', () => {
  const key = longTermKey('u', 'r', 'p');
  const d = decodeMessage(encodeMessage(0x0004, randomBytes(12), { lifetime: 0 }, { username: 'u'.repeat(300), realm: 'r'.repeat(200), nonce: 'n'.repeat(700), key }))!;
  assert.equal(readString(attr(d, ATTR.NONCE))?.length, 700);
  assert.equal(checkIntegrity(d, key), true);
  assert.throws(() => encodeMessage(0x0004, randomBytes(12), {}, { username: 'u'.repeat(514), realm: 'r', nonce: 'n', key }), /username/);
});

test('turn codec: IPv6 addresses, truncation and garbage decode to null, never throw', () => {
  const v6 = hex('0103 0018 2112a442 000000000000000000000000 0016 0014 0002 a147' + '00'.repeat(16));
  const d = decodeMessage(v6);
  assert.ok(d);
  assert.equal(readAddress(attr(d, ATTR.XOR_RELAYED_ADDRESS), true), null);
  assert.equal(decodeMessage(hex('0103 0008 2112a442 000000000000000000000000 0016 0010')), null, 'attribute longer than the message');
  assert.equal(decodeMessage(hex('0103 0004 2112a442 000000000000000000000000')), null, 'declared length beyond the datagram');
  for (let i = 0; i < 2000; i++) {
    const b = randomBytes(20 + Math.floor(Math.random() * 80));
    b.writeUInt32BE(0x2112a442, 4);
    b[0] = (b[0] as number) & 0x3f;
    if (i % 2) b.writeUInt16BE(b.length - 20 - ((b.length - 20) % 4), 2);
    const m = decodeMessage(b);
    if (m) {
      errorCode(m);
      checkFingerprint(m);
      checkIntegrity(m, Buffer.alloc(16));
      for (const a of m.attrs) readAddress(a.value, true);
    }
  }
});

test('turn credentials: REST format, verified as coturn would; expired and forged are refused', () => {
  const secret = 'a-shared-secret-of-some-length';
  const now = 1_700_000_000_000;
  const c = mintTurnCredentials(secret, 'abcdefghijklmnopqrstuvwx', now, 600);
  assert.equal(c.username, '1700000600:abcdefghijklmnopqrstuvwx');
  assert.equal(c.password, createHmac('sha1', secret).update(c.username).digest('base64'));
  assert.equal(c.expiresAt, 1_700_000_600);
  assert.equal(verifyTurnCredentials(secret, c.username, c.password, now), true);
  assert.equal(verifyTurnCredentials(secret, c.username, c.password, now + 601_000), false, 'expired');
  assert.equal(verifyTurnCredentials('another-secret-of-some-length', c.username, c.password, now), false, 'other secret');
  assert.equal(verifyTurnCredentials(secret, c.username.replace('1700000600', '1900000000'), c.password, now), false, 'expiry moved');
  assert.throws(() => mintTurnCredentials('short', 'dev', now), /secret/);
  assert.throws(() => mintTurnCredentials(secret, 'has:colon', now), /device id/);
  assert.throws(() => mintTurnCredentials(secret, '', now), /device id/);
  assert.throws(() => mintTurnCredentials(secret, 'dev', now, 0), /TTL/);
  assert.throws(() => mintTurnCredentials(secret, 'dev', now, 1.5), /TTL/);
});
