import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdleKeepalive } from '../../helper/party/wg-keepalive.js';

test('WireGuard keepalive: stopped once per idle pair after its first handshake; set again with the next endpoint', () => {
  const k = new IdleKeepalive();
  const idle = new Set<string>(['a', 'b']);
  const isIdle = (key: string) => idle.has(key);
  k.set('a');
  k.set('b');
  k.set('c');
  // b has no handshake yet: its keepalive is what starts one. c carries data.
  const r = [
    { publicKey: 'a', lastHandshakeMs: 1000 },
    { publicKey: 'b', lastHandshakeMs: null },
    { publicKey: 'c', lastHandshakeMs: 1000 },
    { publicKey: 'd', lastHandshakeMs: 1000 },
  ];
  assert.deepEqual(k.toStop(r, isIdle), ['a']);
  assert.deepEqual(k.toStop(r, isIdle), [], 'once');
  idle.add('c').add('d');
  assert.deepEqual(k.toStop(r, isIdle), ['c'], 'd never had it set by us');
  k.set('a');
  assert.deepEqual(k.toStop(r, isIdle), ['a'], 'a new endpoint turned it on again');
  k.set('a');
  k.forget('a');
  assert.deepEqual(k.toStop(r, isIdle), []);
});
