import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { encodeEnvelope, HEADER_LEN, MAX_PAYLOAD, parseEnvelope, type Envelope } from '../../helper/lan/envelope.js';

const base: Envelope = {
  origin: '10.66.0.2',
  srcPort: 27005,
  dst: '255.255.255.255',
  dstPort: 27015,
  hops: 0,
  id: '0123456789abcdef',
  payload: Buffer.from('\xff\xff\xff\xffTSource Engine Query\0', 'latin1'),
};

test('lan envelope: round trip of a broadcast and a multicast datagram', () => {
  for (const e of [base, { ...base, dst: '224.0.0.251', dstPort: 5353, srcPort: 5353, payload: Buffer.alloc(0) }, { ...base, payload: randomBytes(MAX_PAYLOAD) }]) {
    const b = encodeEnvelope(e);
    assert.equal(b.length, HEADER_LEN + e.payload.length);
    const p = parseEnvelope(b);
    assert.ok(p.ok, p.ok ? '' : p.reason);
    assert.deepEqual(p.envelope, e);
  }
});

test('lan envelope: strict parse refuses every malformed field', () => {
  const good = encodeEnvelope(base);
  const mutate = (f: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(good);
    f(b);
    return b;
  };
  const cases: Array<[string, Buffer, RegExp]> = [
    ['short', good.subarray(0, HEADER_LEN - 1), /too short/],
    ['magic', mutate((b) => (b[0] = 0x01)), /magic/],
    ['version', mutate((b) => (b[4] = 2)), /version/],
    ['flags', mutate((b) => b.writeUInt16BE(1, 6)), /flags/],
    ['origin 0.0.0.0', mutate((b) => b.writeUInt32BE(0, 8)), /origin/],
    ['origin loopback', mutate((b) => b.writeUInt32BE(0x7f000001, 8)), /origin/],
    ['origin multicast', mutate((b) => b.writeUInt32BE(0xe00000fb, 8)), /origin/],
    ['unicast destination', mutate((b) => b.writeUInt32BE(0x0a420001, 14)), /destination/],
    ['directed broadcast destination', mutate((b) => b.writeUInt32BE(0xc63364ff, 14)), /destination/],
    ['source port 0', mutate((b) => b.writeUInt16BE(0, 12)), /port/],
    ['destination port 0', mutate((b) => b.writeUInt16BE(0, 18)), /port/],
    ['length too big', mutate((b) => b.writeUInt16BE(good.length, 28)), /length/],
    ['length too small', mutate((b) => b.writeUInt16BE(1, 28)), /length/],
    ['trailing byte', Buffer.concat([good, Buffer.from([0])]), /length/],
    ['oversize', Buffer.concat([good, Buffer.alloc(MAX_PAYLOAD)]), /too long/],
  ];
  for (const [what, buf, re] of cases) {
    const p = parseEnvelope(buf);
    assert.equal(p.ok, false, what);
    if (!p.ok) assert.match(p.reason, re, what);
  }
});

test('lan envelope: random bytes and random mutations never throw', () => {
  const good = encodeEnvelope(base);
  for (let i = 0; i < 5000; i++) {
    const r = randomBytes(Math.floor(Math.random() * 80));
    assert.doesNotThrow(() => parseEnvelope(r));
    const m = Buffer.from(good);
    m[Math.floor(Math.random() * m.length)] = Math.floor(Math.random() * 256);
    const p = parseEnvelope(m);
    if (p.ok) assert.deepEqual(parseEnvelope(encodeEnvelope(p.envelope)), p); // what parses re-encodes identically
  }
});

test('lan envelope: encode refuses what parse would refuse', () => {
  assert.throws(() => encodeEnvelope({ ...base, origin: '127.0.0.1' }));
  assert.throws(() => encodeEnvelope({ ...base, dst: '10.66.0.1' }));
  assert.throws(() => encodeEnvelope({ ...base, srcPort: 0 }));
  assert.throws(() => encodeEnvelope({ ...base, hops: 256 }));
  assert.throws(() => encodeEnvelope({ ...base, id: 'xyz' }));
  assert.throws(() => encodeEnvelope({ ...base, payload: Buffer.alloc(MAX_PAYLOAD + 1) }));
});
