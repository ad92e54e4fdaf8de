import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classify, DISCO_MAGIC, DISCO_MIN_LEN } from '../../helper/net/demux.js';
import { DiscoBox, generateDiscoKey } from '../../helper/net/disco.js';
import { encodeBindingRequest, encodeBindingResponse } from '../../helper/net/stun.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const pad = (b: Buffer, n: number): Buffer => Buffer.concat([b, Buffer.alloc(Math.max(0, n - b.length), 0xab)]);

test('demux: the classification table', () => {
  const cases: Array<[string, Buffer, string]> = [
    ['empty', Buffer.alloc(0), 'unknown'],
    ['WireGuard initiation', pad(hex('01000000'), 148), 'wireguard'],
    ['WireGuard response', pad(hex('02000000'), 92), 'wireguard'],
    ['WireGuard cookie reply', pad(hex('03000000'), 64), 'wireguard'],
    ['WireGuard data', pad(hex('04000000'), 32), 'wireguard'],
    ['WireGuard keepalive (32 bytes)', pad(hex('04000000 11223344'), 32), 'wireguard'],
    ['type 5 is not WireGuard', pad(hex('05000000'), 64), 'unknown'],
    ['type 0 is not WireGuard', pad(hex('00000000'), 64), 'unknown'],
    ['type 1 with a non-zero reserved byte', pad(hex('01000100'), 148), 'unknown'],
    ['three bytes only', hex('040000'), 'unknown'],
    ['STUN binding request', encodeBindingRequest(Buffer.alloc(12, 7)), 'stun'],
    ['STUN binding response', encodeBindingResponse(Buffer.alloc(12, 7), { ip: '203.0.113.9', port: 4000 }), 'stun'],
    ['STUN header without cookie', pad(hex('0001 0000 2112a443'), 20), 'unknown'],
    ['STUN cookie but top bits 01 is ChannelData', pad(hex('4001 0000 2112a442'), 20), 'channeldata'],
    ['STUN cookie but top bits 11', pad(hex('c001 0000 2112a442'), 20), 'unknown'],
    ['STUN shorter than its 20-byte header', hex('0001 0000 2112a442 00'), 'unknown'],
    ['ChannelData 0x4000', hex('4000 0004 deadbeef'), 'channeldata'],
    ['ChannelData 0x7fff', hex('7fff 0000'), 'channeldata'],
    ['0x80 is not ChannelData', hex('8000 0000'), 'unknown'],
    ['ChannelData header cut short', hex('4000 00'), 'unknown'],
    ['disco magic, long enough', pad(DISCO_MAGIC, DISCO_MIN_LEN), 'disco'],
    ['disco magic, one byte short', pad(DISCO_MAGIC, DISCO_MIN_LEN - 1), 'unknown'],
    ['disco magic with one bit flipped', pad(hex('d15c4c53'), 100), 'unknown'],
    ['0xff garbage', Buffer.alloc(100, 0xff), 'unknown'],
    // WireGuard before STUN: a data packet whose receiver index equals the cookie stays WireGuard.
    ['WireGuard data whose index is the STUN cookie', pad(hex('04000000 2112a442'), 48), 'wireguard'],
  ];
  for (const [name, buf, want] of cases) assert.equal(classify(buf), want, name);
});

test('demux: our disco magic can never look like WireGuard, STUN or ChannelData', () => {
  const first = DISCO_MAGIC[0] as number;
  assert.ok(first >= 0x80, 'first byte must be >= 0x80 (STUN is 00xxxxxx, ChannelData 01xxxxxx)');
  assert.ok(first > 4, 'WireGuard types are 1-4');
  // Every sealed disco message, whatever the random nonce and key, classifies as disco.
  const a = generateDiscoKey();
  const b = generateDiscoKey();
  const box = new DiscoBox(a.privateKey);
  box.addPeer(b.publicKey);
  for (let i = 0; i < 200; i++) {
    const m = box.seal(b.publicKey, i % 2 ? { type: 'ping', txid: Buffer.alloc(12, i) } : { type: 'pong', txid: Buffer.alloc(12, i), observed: '203.0.113.5:41641' });
    assert.equal(classify(m), 'disco');
  }
});

test('demux: no first word classifies as two kinds (exhaustive over the first byte)', () => {
  for (let b0 = 0; b0 < 256; b0++) {
    const buf = pad(Buffer.from([b0, 0, 0, 0, 0x21, 0x12, 0xa4, 0x42]), 100);
    const k = classify(buf);
    if (b0 >= 1 && b0 <= 4) assert.equal(k, 'wireguard', `0x${b0.toString(16)}`);
    else if (b0 < 0x40) assert.equal(k, 'stun', `0x${b0.toString(16)}`);
    else if (b0 < 0x80) assert.equal(k, 'channeldata', `0x${b0.toString(16)}`);
    else assert.equal(k, 'unknown', `0x${b0.toString(16)}`);
  }
});
