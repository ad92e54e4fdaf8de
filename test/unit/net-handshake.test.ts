// The handshake-crossing rules (helper/net/handshake.ts), played as the two sides of a pair.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HandshakeGuard, INITIATION_SPACING_MS, releaseHeld } from '../../helper/net/handshake.js';

const init = Buffer.from([1, 0, 0, 0]);
const resp = Buffer.from([2, 0, 0, 0]);
const data = Buffer.from([4, 0, 0, 0]);

test('no crossing: initiations and responses pass both ways', () => {
  const a = new HandshakeGuard(true);
  assert.equal(a.outgoing(init, 0), true);
  assert.equal(a.incoming(resp, 10), 'deliver');
  // Our handshake was answered: a later initiation of the peer (rekey) is delivered, even on the lower side.
  assert.equal(a.incoming(init, 20), 'deliver-discard-held');
  assert.equal(a.incoming(data, 30), 'deliver');
  assert.equal(a.outgoing(data, 30), true);
});

test('rule 2: our initiation right after answering the peer is dropped; later ones pass', () => {
  const h = new HandshakeGuard(false);
  assert.equal(h.incoming(init, 1000), 'deliver-discard-held');
  assert.equal(h.outgoing(resp, 1001), true, 'the response goes out');
  assert.equal(h.outgoing(init, 1005), false, 'a crossing initiation is dropped');
  assert.equal(h.outgoing(init, 6001), true, 'after WireGuard\'s retry time, a new handshake is a real one');
});

test('rule 2 under a late event loop: WireGuard initiating 1.2 s after we handed it the peer\'s initiation is a crossing', () => {
  // Join storm, fcone7 (lower) <-> prestr8: fcone7's helper delivered prestr8's initiation at
  // 14.14 s, its WireGuard got its endpoint at 15.22 s and initiated before reading that one;
  // sent, it reached prestr8 (higher, takes it) and both handshakes were lost for 20 s.
  const low = new HandshakeGuard(true);
  assert.equal(low.incoming(init, 14_140), 'deliver-discard-held');
  assert.equal(low.outgoing(init, 15_365), false);
});

test('rule 3: both initiations in flight: exactly one side yields (the lower disco key)', () => {
  const low = new HandshakeGuard(true);
  const high = new HandshakeGuard(false);
  assert.equal(low.outgoing(init, 0), true);
  assert.equal(high.outgoing(init, 1), true);
  assert.equal(low.incoming(init, 5), 'drop', 'the lower side keeps its own handshake');
  assert.equal(high.incoming(init, 6), 'deliver-discard-held', 'the higher side answers the lower one');
  assert.equal(high.outgoing(resp, 7), true);
  assert.equal(low.incoming(resp, 9), 'deliver');
  // Ours unanswered: WireGuard retries it every 5 s (perhaps on the fast path, unseen here), so
  // the lower side keeps yielding until WireGuard would give up (90 s); then it takes the peer's.
  const late = new HandshakeGuard(true);
  late.outgoing(init, 0);
  assert.equal(late.incoming(init, 5080), 'drop', 'our unseen retry is in flight');
  assert.equal(late.incoming(init, 90_000), 'deliver-discard-held');
});

test('rule 3 under a late event loop: initiations that take 1-2 s each way still resolve the crossing', () => {
  // Join storm, pub12 <-> fcone7: one initiation left at 30.0 s, the other at 30.5 s, and each
  // reached the other helper 1.5-2 s later. Taken on both sides, both responses are refused and
  // wireguard-go's retry is suppressed (it had just sent a response): ~20 s to the keepalive.
  const low = new HandshakeGuard(true);
  const high = new HandshakeGuard(false);
  assert.equal(low.outgoing(init, 30_000), true);
  assert.equal(high.outgoing(init, 30_500), true);
  assert.equal(high.incoming(init, 31_500), 'deliver-discard-held', 'the higher side answers the lower one');
  assert.equal(low.incoming(init, 32_000), 'drop', 'the lower side keeps its own handshake, 2 s after it left');
  assert.equal(high.outgoing(resp, 31_501), true);
  assert.equal(low.incoming(resp, 33_000), 'deliver', 'and completes it');
});

test('held initiations are judged when they leave: both sides flushing at once still resolve the crossing', () => {
  // Both WireGuards start a handshake at t=0 (their keepalive); no path yet, so both are held.
  const low = new HandshakeGuard(true);
  const high = new HandshakeGuard(false);
  assert.equal(low.outgoing(init, 0), true);
  assert.equal(high.outgoing(init, 0), true);
  // 3 s later both find the direct path and flush within a few ms of each other.
  const l = releaseHeld(low, [init, data], 3000);
  const h = releaseHeld(high, [init], 3002);
  assert.deepEqual([l.send.length, l.dropped, h.send.length, h.dropped], [2, 0, 1, 0]);
  // Judged by the hold time (3 s ago) neither would yield and both handshakes would be lost.
  assert.equal(low.incoming(init, 3004), 'drop', 'the lower side keeps its own handshake');
  assert.equal(high.incoming(init, 3005), 'deliver-discard-held', 'the higher side answers it');
});

test('a held initiation is dropped at release when the peer\'s initiation was just delivered (rule 2)', () => {
  const h = new HandshakeGuard(false);
  h.outgoing(init, 0);
  assert.equal(h.incoming(init, 2000), 'deliver-discard-held');
  const r = releaseHeld(h, [init, resp], 2010);
  assert.equal(r.dropped, 1);
  assert.deepEqual(r.send, [resp]);
});

test('a released initiation whose relay send failed does not make the lower side drop the peer\'s', () => {
  const low = new HandshakeGuard(true);
  const r = releaseHeld(low, [init], 3000);
  assert.equal(r.send.length, 1);
  low.unsent(init); // the relay send returned false: nothing of ours is in flight
  assert.equal(low.incoming(init, 3010), 'deliver-discard-held', 'the peer\'s handshake is taken, not dropped for one that never left');
  // Data and responses do not touch the guard's memory of our initiation.
  const other = new HandshakeGuard(true);
  other.outgoing(init, 0);
  other.unsent(data);
  assert.equal(other.incoming(init, 10), 'drop');
});

test('only the latest held initiation leaves: WireGuard replaced the older one with its retry', () => {
  // Join storm, arestr2 -> pub4: the path took 4.5 s, both the first initiation and the 5 s retry
  // were held and flushed together; pub4 answered the stale one and refused the retry as a flood.
  const g = new HandshakeGuard(false);
  const first = Buffer.from([1, 1, 0, 0]);
  const retry = Buffer.from([1, 2, 0, 0]);
  const r = releaseHeld(g, [first, data, retry], 7579);
  assert.deepEqual(r.send, [data, retry]);
  assert.equal(r.dropped, 1);
});

test('the peer\'s initiations reach WireGuard at least INITIATION_SPACING_MS apart (its flood limit is 20 ms)', () => {
  // Join storm, sym11 <- cgnat13: cgnat13 flushed its 5 s old held initiation and WireGuard's
  // retry followed 157 ms later; sym11's late event loop handed both over 16 ms apart, WireGuard
  // answered the stale one only, and the pair waited for the next retry.
  const g = new HandshakeGuard(false);
  assert.equal(g.incoming(init, 48_524), 'deliver-discard-held');
  assert.equal(g.spacing(48_524), 0);
  assert.equal(g.incoming(init, 48_540), 'deliver-discard-held');
  assert.equal(g.spacing(48_540), INITIATION_SPACING_MS - 16);
  // A third one right behind waits for the second's slot, not the first's.
  assert.equal(g.spacing(48_545), 2 * INITIATION_SPACING_MS - 21);
  // Initiations far apart (a rekey 2 minutes later) wait for nothing.
  assert.equal(g.spacing(170_000), 0);
  assert.ok(INITIATION_SPACING_MS > 20);
});
