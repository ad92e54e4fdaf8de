import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeChannelData, encodeChannelData, StreamFramer, streamFrameLength } from '../../helper/net/turn/framing.js';
import { encodeMessage } from '../../helper/net/turn/codec.js';
import { classify } from '../../helper/net/demux.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('turn framing: ChannelData is a 4-byte header; padded to 4 only on streams', () => {
  assert.deepEqual(encodeChannelData(0x4000, Buffer.from('abcde'), false), hex('4000 0005 6162636465'));
  assert.deepEqual(encodeChannelData(0x4000, Buffer.from('abcde'), true), hex('4000 0005 6162636465 000000'));
  assert.deepEqual(encodeChannelData(0x4fff, Buffer.from('abcd'), true), hex('4fff 0004 61626364'), 'already aligned: no padding');
  assert.deepEqual(encodeChannelData(0x4001, Buffer.alloc(0), true), hex('4001 0000'));
  assert.throws(() => encodeChannelData(0x3fff, Buffer.alloc(1), false), /channel/);
  assert.throws(() => encodeChannelData(0x5000, Buffer.alloc(1), false), /channel/, '0x5000-0x7FFF are reserved');
  assert.throws(() => encodeChannelData(0x4000, Buffer.alloc(0x10000), false), /too long/);
  // The shared socket's demux sees it as ChannelData, never as WireGuard or STUN.
  assert.equal(classify(encodeChannelData(0x4000, Buffer.from([1, 0, 0, 0]), false)), 'channeldata');
});

test('turn framing: decoding ignores padding and refuses short or foreign messages', () => {
  assert.deepEqual(decodeChannelData(hex('4002 0003 616263 00')), { channel: 0x4002, data: Buffer.from('abc') });
  assert.equal(decodeChannelData(hex('4002 0008 616263')), null, 'length beyond the datagram');
  assert.equal(decodeChannelData(hex('3fff 0000')), null);
  assert.equal(decodeChannelData(hex('40')), null);
});

test('turn framing: frame lengths on a stream (STUN 20+len, ChannelData padded)', () => {
  assert.equal(streamFrameLength(hex('0101 0010')), 36);
  assert.equal(streamFrameLength(hex('4000 0005')), 12);
  assert.equal(streamFrameLength(hex('4000 0008')), 12);
  assert.equal(streamFrameLength(hex('0101 0011')), null, 'STUN length not a multiple of 4');
  assert.equal(streamFrameLength(hex('8000 0000')), null);
  assert.equal(streamFrameLength(hex('c000 0000')), null);
});

test('turn framing: a stream cut anywhere gives back the same messages', () => {
  const msgs = [
    encodeMessage(0x0003, randomBytes(12), { requestedTransport: 'udp' }),
    encodeChannelData(0x4000, Buffer.from('x'), true),
    encodeChannelData(0x4001, randomBytes(1001), true),
    encodeMessage(0x0016, randomBytes(12), { peer: { ip: '198.51.100.1', port: 5 }, data: randomBytes(33) }),
    encodeChannelData(0x4002, Buffer.alloc(0), true),
    encodeChannelData(0x4003, randomBytes(1400), true),
  ];
  const stream = Buffer.concat(msgs);
  for (const cut of [1, 2, 3, 5, 7, 64, 999, stream.length]) {
    const got: Buffer[] = [];
    const f = new StreamFramer((b) => got.push(Buffer.from(b)));
    for (let i = 0; i < stream.length; i += cut) f.push(stream.subarray(i, i + cut));
    assert.deepEqual(got, msgs, `chunks of ${cut}`);
    assert.equal(f.pending, 0);
  }
  // ChannelData payloads come out without the padding.
  const got: Buffer[] = [];
  new StreamFramer((b) => got.push(b)).push(stream);
  assert.deepEqual(decodeChannelData(got[1] as Buffer)?.data, Buffer.from('x'));
});

test('turn framing: an unpadded ChannelData puts the stream out of step', () => {
  const unpadded = encodeChannelData(0x4000, Buffer.from('abcde'), false); // 9 bytes where a stream needs 12
  const next = encodeChannelData(0x4001, Buffer.from([0xff, 0xff, 0xff, 0xff]), true);
  const got: Buffer[] = [];
  const f = new StreamFramer((b) => got.push(Buffer.from(b)));
  // The first frame swallows 3 bytes of the next; what follows ("04 ff ff ff") is no valid header.
  assert.throws(() => f.push(Buffer.concat([unpadded, next])), /out of step/);
  assert.equal(got.length, 1);
  assert.notDeepEqual(got[0], unpadded);
});
