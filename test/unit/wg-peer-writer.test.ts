import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { WgPeer } from '../../helper/wg/device.js';
import { PeerWriter, type PeerSink } from '../../helper/wg/peer-writer.js';

/** A device that records each write and holds it until released. */
function device(): { writes: Array<{ set?: WgPeer[]; remove?: string }>; release(): void; fail: Error | null; sink: PeerSink } {
  const d = {
    writes: [] as Array<{ set?: WgPeer[]; remove?: string }>,
    gate: Promise.resolve(),
    open: () => {},
    fail: null as Error | null,
    release() {
      this.open();
    },
  };
  const hold = async (): Promise<void> => {
    await new Promise<void>((r) => (d.open = r));
    if (d.fail) throw d.fail;
  };
  return {
    writes: d.writes,
    release: () => d.release(),
    get fail() {
      return d.fail;
    },
    set fail(e) {
      d.fail = e;
    },
    sink: {
      async setPeers(ps) {
        d.writes.push({ set: [...ps] });
        await hold();
      },
      async removePeer(k) {
        d.writes.push({ remove: k });
        await hold();
      },
    },
  };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const peer = (k: string, extra: Partial<WgPeer> = {}): WgPeer => ({ publicKey: k, allowedIps: [`10.66.0.${k.length}/32`], ...extra });

test('changes asked for in one burst go to WireGuard in one write', async () => {
  const d = device();
  const w = new PeerWriter(d.sink);
  const all = Promise.all([w.setMany([peer('a'), peer('bb')]), w.set(peer('ccc', { endpoint: '127.0.0.1:1', persistentKeepaliveSeconds: 20 }))]);
  await tick();
  assert.equal(d.writes.length, 1);
  assert.deepEqual(d.writes[0]!.set!.map((p) => p.publicKey), ['a', 'bb', 'ccc']);
  d.release();
  await all;
});

test('changes during a write wait for it and share the next one; the newest change per peer wins', async () => {
  const d = device();
  const w = new PeerWriter(d.sink);
  const first = w.set(peer('a'));
  await tick();
  assert.equal(d.writes.length, 1);
  const second = [w.set(peer('a', { endpoint: '127.0.0.1:1', persistentKeepaliveSeconds: 20 })), w.set(peer('a', { endpoint: '127.0.0.1:2', persistentKeepaliveSeconds: 20 })), w.set(peer('bb'))];
  await tick();
  assert.equal(d.writes.length, 1, 'nothing overtakes the write under way');
  d.release();
  await first;
  await tick();
  assert.equal(d.writes.length, 2);
  assert.deepEqual(d.writes[1]!.set, [peer('a', { endpoint: '127.0.0.1:2', persistentKeepaliveSeconds: 20 }), peer('bb')]);
  d.release();
  await Promise.all(second);
});

test('a change without an endpoint keeps the endpoint of the change it replaces', async () => {
  const d = device();
  const w = new PeerWriter(d.sink);
  const a = w.set(peer('a', { endpoint: '127.0.0.1:7', persistentKeepaliveSeconds: 20 }));
  const b = w.set(peer('a', { allowedIps: ['10.66.0.9/32'] }));
  await tick();
  assert.deepEqual(d.writes[0]!.set, [{ publicKey: 'a', allowedIps: ['10.66.0.9/32'], endpoint: '127.0.0.1:7', persistentKeepaliveSeconds: 20 }]);
  d.release();
  await Promise.all([a, b]);
});

test('a removal replaces a pending change and is written before the batch; failures reach every waiter of that write only', async () => {
  const d = device();
  const w = new PeerWriter(d.sink);
  const set = w.set(peer('a'));
  const gone = w.remove('a');
  const other = w.set(peer('bb'));
  await tick();
  assert.deepEqual(d.writes[0], { remove: 'a' });
  const outcomes = Promise.allSettled([set, gone, other]);
  d.fail = new Error('wireguard-go has exited');
  d.release();
  for (const o of await outcomes) assert.match(o.status === 'rejected' ? String(o.reason) : 'fulfilled', /exited/);
  assert.equal(d.writes.length, 1, 'a failed removal stops that write');
  d.fail = null;
  const later = w.set(peer('ccc'));
  await tick();
  assert.deepEqual(d.writes[1]!.set!.map((p) => p.publicKey), ['ccc']);
  d.release();
  await later;
});
