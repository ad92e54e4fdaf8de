import { test } from 'node:test';
import assert from 'node:assert/strict';
import { discoPair } from '../lib/disco-pair.js';
import { DiscoBox, decodeBody, discoPublicKeyOf, encodeBody, generateDiscoKey, isKey } from '../../helper/net/disco.js';

const pair = discoPair;

test('disco: keys are base64 raw 32-byte X25519 keys and the public key derives from the private', () => {
  const k = generateDiscoKey();
  assert.ok(isKey(k.privateKey) && isKey(k.publicKey));
  assert.equal(Buffer.from(k.publicKey, 'base64').length, 32);
  assert.equal(discoPublicKeyOf(k.privateKey), k.publicKey);
  assert.equal(new DiscoBox(k.privateKey).publicKey, k.publicKey);
  assert.ok(!isKey('abc'));
  assert.ok(!isKey(k.publicKey.slice(0, 42) + 'B='), 'non-canonical padding bits');
});

test('disco: seal/open round trip for ping and pong, both directions', () => {
  const { a, b, ka, kb } = pair();
  const txid = Buffer.from('000102030405060708090a0b', 'hex');
  const p = b.open(a.seal(kb.publicKey, { type: 'ping', txid }));
  assert.deepEqual(p, { ok: true, sender: ka.publicKey, message: { type: 'ping', txid } });
  const q = a.open(b.seal(ka.publicKey, { type: 'pong', txid, observed: '198.51.100.7:41641' }));
  assert.deepEqual(q, { ok: true, sender: kb.publicKey, message: { type: 'pong', txid, observed: '198.51.100.7:41641' } });
});

test('disco: each seal uses a fresh nonce', () => {
  const { a, kb } = pair();
  const m = { type: 'ping' as const, txid: Buffer.alloc(12) };
  assert.notDeepEqual(a.seal(kb.publicKey, m), a.seal(kb.publicKey, m));
});

test('disco: any flipped bit is rejected', () => {
  const { a, b, kb } = pair();
  const sealed = a.seal(kb.publicKey, { type: 'ping', txid: Buffer.alloc(12, 1) });
  for (let i = 4; i < sealed.length; i++) {
    const t = Buffer.from(sealed);
    t[i] = (t[i] as number) ^ 0x01;
    const r = b.open(t);
    assert.equal(r.ok, false, `byte ${i}`);
    // Bits inside the sender key make it an unknown key; anything after it fails authentication.
    if (!r.ok) assert.equal(r.error, i < 36 ? 'unknown-key' : 'auth', `byte ${i}`);
  }
});

test('disco: a sender key that is not a known peer is rejected', () => {
  const { b } = pair();
  const stranger = generateDiscoKey();
  const s = new DiscoBox(stranger.privateKey);
  s.addPeer(b.publicKey);
  assert.deepEqual(b.open(s.seal(b.publicKey, { type: 'ping', txid: Buffer.alloc(12) })), { ok: false, error: 'unknown-key' });
});

test('disco: a known sender key that the sender does not own is rejected (forgery)', () => {
  const { a, b, ka } = pair();
  const mallory = generateDiscoKey();
  const m = new DiscoBox(mallory.privateKey);
  m.addPeer(b.publicKey);
  const sealed = m.seal(b.publicKey, { type: 'ping', txid: Buffer.alloc(12) });
  // Claim to be A: replace the sender key field.
  Buffer.from(ka.publicKey, 'base64').copy(sealed, 4);
  assert.deepEqual(b.open(sealed), { ok: false, error: 'auth' });
  void a;
});

test('disco: removed peers are unknown again; bad keys are refused', () => {
  const { a, b, ka, kb } = pair();
  b.removePeer(ka.publicKey);
  assert.deepEqual(b.open(a.seal(kb.publicKey, { type: 'ping', txid: Buffer.alloc(12) })), { ok: false, error: 'unknown-key' });
  assert.throws(() => a.addPeer('not a key'));
  assert.throws(() => a.addPeer(Buffer.alloc(32).toString('base64')), /rejected/); // the all-zero (low-order) point
  assert.throws(() => a.addPeer(ka.publicKey), /own disco key/);
});

test('disco: malformed bodies and truncated packets', () => {
  const { b } = pair();
  assert.deepEqual(b.open(Buffer.alloc(10)), { ok: false, error: 'malformed' });
  assert.equal(decodeBody(Buffer.from([0x01, 1, 2])), null);
  assert.equal(decodeBody(Buffer.from([0x09, ...Buffer.alloc(12)])), null);
  const pong = encodeBody({ type: 'pong', txid: Buffer.alloc(12, 3), observed: '203.0.113.1:65535' });
  assert.deepEqual(decodeBody(pong), { type: 'pong', txid: Buffer.alloc(12, 3), observed: '203.0.113.1:65535' });
  assert.throws(() => encodeBody({ type: 'ping', txid: Buffer.alloc(11) }));
});
