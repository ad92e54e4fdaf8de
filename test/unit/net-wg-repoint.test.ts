import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../helper/core/clock.js';
import { REPOINT_WINDOW_MS, WgRepoint, type RepointPeer } from '../../helper/net/wg-repoint.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const quiet = { debug() {} };
const FAST = '198.51.100.7:41641';

function setup() {
  const clock = new ManualClock();
  const c = { fastpath_repoints: 0 };
  const pushes: string[] = [];
  /** Pushes wait for release() when hold is set (a UAPI write under way). */
  let hold = false;
  const waiting: Array<() => void> = [];
  const rp = new WgRepoint<RepointPeer & { fastEp: string | null; reconciling: boolean; removed: boolean }>({
    clock,
    log: quiet,
    c,
    push: async (rec, ep) => {
      pushes.push(`${rec.id}=${ep}`);
      if (hold) await new Promise<void>((r) => waiting.push(r));
      return true;
    },
  });
  const peer = { id: 'bob', removed: false, fastEp: FAST as string | null, reconciling: false };
  return {
    clock, c, pushes, rp, peer,
    hold: (h: boolean) => (hold = h),
    release: () => waiting.splice(0).forEach((r) => r()),
  };
}

test('repoint: WireGuard\'s answer through the proxy after a handshake message points it back at the fast endpoint at once', async () => {
  const s = setup();
  s.rp.proxied(s.peer); // no handshake delivered: WireGuard has not roamed, nothing to do
  assert.deepEqual(s.pushes, []);
  s.rp.delivered(s.peer);
  assert.deepEqual(s.pushes, [], 'not before WireGuard answered: it roams when it takes the message, which would overwrite a push');
  s.rp.proxied(s.peer);
  await tick();
  assert.deepEqual(s.pushes, [`bob=${FAST}`]);
  assert.equal(s.c.fastpath_repoints, 1);
  // The window closes without a second push: the answer was seen.
  s.clock.advance(REPOINT_WINDOW_MS);
  await tick();
  assert.deepEqual(s.pushes, [`bob=${FAST}`]);
  assert.equal(s.rp.size, 0);
  assert.equal(s.clock.pending, 0);
});

test('repoint: no answer seen (a message WireGuard rejected, or an answer missed): one push when the window closes', async () => {
  const s = setup();
  s.rp.delivered(s.peer);
  s.clock.advance(REPOINT_WINDOW_MS - 1);
  await tick();
  assert.deepEqual(s.pushes, []);
  s.clock.advance(1);
  await tick();
  assert.deepEqual(s.pushes, [`bob=${FAST}`]);
});

test('repoint: one timer per peer; a newer message replaces it and its answer gets a push of its own', async () => {
  const s = setup();
  s.rp.delivered(s.peer);
  s.rp.proxied(s.peer);
  await tick();
  s.clock.advance(1500);
  // A second message (say a retransmitted initiation) roams WireGuard again.
  s.rp.delivered(s.peer);
  assert.equal(s.clock.pending, 1, 'the older timer is gone');
  s.rp.proxied(s.peer);
  await tick();
  assert.deepEqual(s.pushes, [`bob=${FAST}`, `bob=${FAST}`]);
  // The window runs from the newer message.
  s.clock.advance(REPOINT_WINDOW_MS - 1);
  assert.equal(s.rp.size, 1);
  s.clock.advance(1);
  assert.equal(s.rp.size, 0);
  assert.equal(s.pushes.length, 2);
});

test('repoint: answers during a push cost one more push after it, and a window pushes at most 3 times', async () => {
  const s = setup();
  s.hold(true);
  s.rp.delivered(s.peer);
  s.rp.proxied(s.peer);
  for (let i = 0; i < 50; i++) s.rp.proxied(s.peer); // a stream WireGuard sent before the push landed
  assert.equal(s.pushes.length, 1, 'one UAPI write at a time');
  s.release();
  await tick();
  await tick();
  assert.equal(s.pushes.length, 2, 'the packets seen meanwhile may have been sent after it landed: once more');
  s.release();
  await tick();
  await tick();
  assert.equal(s.pushes.length, 2, 'nothing seen during the second push: done');
  for (let round = 0; round < 5; round++) {
    s.rp.proxied(s.peer);
    s.release();
    await tick();
    await tick();
  }
  assert.equal(s.pushes.length, 3, 'a peer that keeps WireGuard roaming (its data through the helper) is not chased');
});

test('repoint: nothing pushed for a peer removed, off the fast path, or whose fast path is being changed', async () => {
  const s = setup();
  s.rp.delivered(s.peer);
  s.rp.cancel(s.peer); // peer removed
  assert.equal(s.clock.pending, 0);
  s.clock.advance(REPOINT_WINDOW_MS);
  await tick();
  assert.deepEqual(s.pushes, []);

  // The fast path went off: WireGuard belongs on the proxy port now.
  s.rp.delivered(s.peer);
  s.peer.fastEp = null;
  s.rp.proxied(s.peer);
  s.clock.advance(REPOINT_WINDOW_MS);
  await tick();
  assert.deepEqual(s.pushes, []);

  // The fast path loop is pushing an endpoint itself: it has the last word...
  s.peer.fastEp = FAST;
  s.peer.reconciling = true;
  s.rp.delivered(s.peer);
  s.rp.proxied(s.peer);
  await tick();
  assert.deepEqual(s.pushes, []);
  // ...unless its push went before WireGuard roamed: the window's end catches that.
  s.peer.reconciling = false;
  s.clock.advance(REPOINT_WINDOW_MS);
  await tick();
  assert.deepEqual(s.pushes, [`bob=${FAST}`]);

  const gone = { ...s.peer, removed: true };
  s.rp.delivered(gone);
  assert.equal(s.rp.size, 0, 'a removed peer opens no window');
});
