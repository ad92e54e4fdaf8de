// The control server's RFC 5780 answers, read back by hand (not through the codec under test):
// CHANGE-REQUEST picks the answering socket, OTHER-ADDRESS / RESPONSE-ORIGIN are right, a server
// with one address refuses CHANGE-REQUEST with 420, and malformed requests get nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { answerStun, checkStunHosts, type ResponderView } from '../../helper/control/stun-responder.js';
import { decodeNetcheckAnswer, encodeNetcheckRequest } from '../../helper/net/stun-5780.js';
import { stunAddressFlags } from '../../helper/roles/control.js';
import { parseArgs } from '../../helper/core/args.js';

function request(flags: number | null, tid = randomBytes(12)): Buffer {
  const attrs = flags === null ? Buffer.alloc(0) : Buffer.from([0x00, 0x03, 0x00, 0x04, 0, 0, 0, flags]);
  const h = Buffer.alloc(20);
  h.writeUInt16BE(0x0001, 0);
  h.writeUInt16BE(attrs.length, 2);
  h.writeUInt32BE(0x2112a442, 4);
  tid.copy(h, 8);
  return Buffer.concat([h, attrs]);
}

/** Attribute type → raw value, walking the message by hand. */
function attrs(res: Buffer): Map<number, Buffer> {
  assert.equal(res.readUInt16BE(2), res.length - 20);
  const out = new Map<number, Buffer>();
  for (let off = 20; off + 4 <= res.length; ) {
    const type = res.readUInt16BE(off);
    const len = res.readUInt16BE(off + 2);
    out.set(type, res.subarray(off + 4, off + 4 + len));
    off += 4 + Math.ceil(len / 4) * 4;
  }
  return out;
}
const plainAddr = (v: Buffer | undefined): string => {
  assert.ok(v, 'attribute present');
  assert.equal(v[1], 1, 'IPv4');
  return `${[...v.subarray(4, 8)].join('.')}:${v.readUInt16BE(2)}`;
};
const xorAddr = (v: Buffer | undefined): string => {
  assert.ok(v);
  return `${[...v.subarray(4, 8)].map((b, i) => b ^ [0x21, 0x12, 0xa4, 0x42][i]!).join('.')}:${v.readUInt16BE(2) ^ 0x2112}`;
};

const from = { address: '198.51.100.7', port: 40000 };
const two: ResponderView = { local: { address: '203.0.113.2', port: 3478 }, other: { address: '192.0.2.2', port: 3479 } };

test('two addresses: a plain Binding gets MAPPED, XOR-MAPPED, RESPONSE-ORIGIN and OTHER-ADDRESS, from the same socket', () => {
  const tid = randomBytes(12);
  const a = answerStun(request(null, tid), from, two)!;
  assert.deepEqual([a.changeIp, a.changePort], [false, false]);
  assert.equal(a.response.readUInt16BE(0), 0x0101);
  assert.ok(a.response.subarray(8, 20).equals(tid));
  const m = attrs(a.response);
  assert.equal(plainAddr(m.get(0x0001)), '198.51.100.7:40000');
  assert.equal(xorAddr(m.get(0x0020)), '198.51.100.7:40000');
  assert.equal(plainAddr(m.get(0x802b)), '203.0.113.2:3478');
  assert.equal(plainAddr(m.get(0x802c)), '192.0.2.2:3479');
});

test('CHANGE-REQUEST: change IP, change port and both choose the answering socket and RESPONSE-ORIGIN', () => {
  const cases: Array<[number, boolean, boolean, string]> = [
    [0x04, true, false, '192.0.2.2:3478'],
    [0x02, false, true, '203.0.113.2:3479'],
    [0x06, true, true, '192.0.2.2:3479'],
    [0x00, false, false, '203.0.113.2:3478'],
  ];
  for (const [flags, ip, port, origin] of cases) {
    const a = answerStun(request(flags), from, two)!;
    assert.deepEqual([a.changeIp, a.changePort], [ip, port], `flags ${flags}`);
    const m = attrs(a.response);
    assert.equal(plainAddr(m.get(0x802b)), origin);
    assert.equal(plainAddr(m.get(0x802c)), '192.0.2.2:3479', 'OTHER-ADDRESS does not depend on the flags');
    assert.equal(xorAddr(m.get(0x0020)), '198.51.100.7:40000');
  }
});

test('one address: CHANGE-REQUEST gets 420 with UNKNOWN-ATTRIBUTES, a plain Binding has no OTHER-ADDRESS', () => {
  const one: ResponderView = { local: { address: '203.0.113.2', port: 3478 }, other: null };
  for (const flags of [0x04, 0x02, 0x06, 0x00]) {
    const tid = randomBytes(12);
    const a = answerStun(request(flags, tid), from, one)!;
    assert.equal(a.response.readUInt16BE(0), 0x0111, 'Binding error response');
    assert.ok(a.response.subarray(8, 20).equals(tid));
    assert.deepEqual([a.changeIp, a.changePort], [false, false], 'sent from the socket that received it');
    const m = attrs(a.response);
    const err = m.get(0x0009)!;
    assert.equal((err[2]! & 7) * 100 + err[3]!, 420);
    assert.equal(m.get(0x000a)?.readUInt16BE(0), 0x0003);
    assert.equal(decodeNetcheckAnswer(a.response)?.error, 420, 'our client reads the code from the raw bytes');
  }
  const plain = attrs(answerStun(request(null), from, one)!.response);
  assert.equal(plain.has(0x802c), false);
  assert.equal(plainAddr(plain.get(0x802b)), '203.0.113.2:3478');
  // A wildcard-bound server does not know its own address: no RESPONSE-ORIGIN.
  assert.equal(attrs(answerStun(request(null), from)!.response).has(0x802b), false);
});

test('our client codec round-trips with the responder', () => {
  const tid = randomBytes(12);
  const a = answerStun(encodeNetcheckRequest(tid, { ip: true, port: true }), from, two)!;
  assert.deepEqual([a.changeIp, a.changePort], [true, true]);
  assert.deepEqual(decodeNetcheckAnswer(a.response), {
    txid: tid.toString('hex'),
    error: 0,
    mapped: { ip: '198.51.100.7', port: 40000 },
    other: { ip: '192.0.2.2', port: 3479 },
  });
});

test('malformed CHANGE-REQUEST and malformed STUN are ignored', () => {
  const short = request(null);
  const bad = Buffer.concat([short, Buffer.from([0x00, 0x03, 0x00, 0x02, 0, 4, 0, 0])]);
  bad.writeUInt16BE(8, 2);
  assert.equal(answerStun(bad, from, two), null, 'CHANGE-REQUEST of 2 bytes');
  const truncated = request(0x06).subarray(0, 24);
  assert.equal(answerStun(truncated, from, two), null);
  const lying = request(0x06);
  lying.writeUInt16BE(64, 2);
  assert.equal(answerStun(lying, from, two), null);
  const noCookie = request(0x06);
  noCookie.writeUInt32BE(0, 4);
  assert.equal(answerStun(noCookie, from, two), null);
  const asResponse = request(0x06);
  asResponse.writeUInt16BE(0x0101, 0);
  assert.equal(answerStun(asResponse, from, two), null);
  assert.equal(answerStun(randomBytes(100), from, two), null);
});

test('address flags are checked before anything binds', () => {
  assert.doesNotThrow(() => checkStunHosts('0.0.0.0', undefined));
  assert.doesNotThrow(() => checkStunHosts('203.0.113.2', '192.0.2.2'));
  assert.throws(() => checkStunHosts('0.0.0.0', '192.0.2.2'), /specific IPv4/);
  assert.throws(() => checkStunHosts('203.0.113.2', '203.0.113.2'), /differ/);
  assert.throws(() => checkStunHosts('203.0.113.2', 'example.com'), /IPv4/);
  assert.throws(() => checkStunHosts('203.0.113.2', '2001:db8::1'), /IPv4/);
});

test('--stun-ip / --stun-alt-ip: both IPv4, the alternate needs a specific primary, bad values are refused', () => {
  const flags = (...argv: string[]) => stunAddressFlags(parseArgs(argv));
  assert.deepEqual(flags(), {});
  assert.deepEqual(flags('--stun-ip', '203.0.113.2'), { stunHost: '203.0.113.2' });
  assert.deepEqual(flags('--stun-ip', '203.0.113.2', '--stun-alt-ip', '192.0.2.2'), { stunHost: '203.0.113.2', stunAltHost: '192.0.2.2' });
  assert.deepEqual(flags('--listen', '203.0.113.2', '--stun-alt-ip', '192.0.2.2'), { stunHost: '203.0.113.2', stunAltHost: '192.0.2.2' });
  assert.throws(() => flags('--stun-alt-ip', '192.0.2.2'), /needs the primary STUN address/);
  assert.throws(() => flags('--listen', '0.0.0.0', '--stun-alt-ip', '192.0.2.2'), /needs the primary STUN address/);
  assert.throws(() => flags('--stun-ip', '192.0.2.2', '--stun-alt-ip', '192.0.2.2'), /differ/);
  assert.throws(() => flags('--stun-ip', '203.0.113.2', '--stun-alt-ip', 'stun.example.com'), /must be an IPv4 address/);
  assert.throws(() => flags('--stun-ip', '2001:db8::1'), /must be an IPv4 address/);
  assert.throws(() => flags('--stun-ip', '010.0.0.1'), /must be an IPv4 address/, 'no octal-looking addresses');
});
