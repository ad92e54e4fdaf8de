// The relayed path's rules, on a manual clock: confirmation before use, keepalive and loss,
// pausing under a direct path, and what a player reads (combinePath).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../helper/core/clock.js';
import { combinePath, RelayPath, type RelayPathState } from '../../helper/net/relaypath.js';
import { chooseRelay, type RelayOffer } from '../../helper/net/relayconn.js';

function rig(idle?: () => boolean, leads?: () => boolean) {
  const clock = new ManualClock();
  const pings: Array<{ target: string; txid: Buffer; at: number }> = [];
  const states: RelayPathState[] = [];
  const misses: number[] = [];
  let n = 0;
  const rp = new RelayPath({
    clock,
    ping: (target, txid) => pings.push({ target, txid, at: clock.now() }),
    changed: (s) => states.push(s),
    missed: () => misses.push(clock.now()),
    newTxid: () => Buffer.alloc(12, ++n),
    ...(idle ? { idle } : {}),
    ...(leads ? { leads } : {}),
  });
  return { clock, pings, states, misses, rp };
}

test('relay path: probes a new target at once, is up on the first pong, then keeps alive every 5 s', () => {
  const { clock, pings, states, rp } = rig();
  rp.setTarget('203.0.113.1:50000');
  assert.equal(pings.length, 1);
  assert.equal(rp.state().up, false, 'not usable before a pong proves both permissions');
  clock.advance(250);
  assert.equal(pings.length, 2, 'probing every 250 ms');
  clock.advance(10);
  const rtt = rp.onPong(pings[1]!.txid);
  assert.equal(rtt, 10);
  assert.deepEqual(rp.state(), { up: true, target: '203.0.113.1:50000', rttMs: 10 });
  assert.equal(states.at(-1)?.up, true);
  const before = pings.length;
  clock.advance(4_900);
  assert.equal(pings.length, before, 'no ping before the keepalive is due');
  clock.advance(200);
  assert.equal(pings.length, before + 1);
});

test('relay path: probeNow() probes at once while unconfirmed (permission just installed, the peer\'s ping came through), never when up, paused or without a target', () => {
  const { clock, pings, rp } = rig();
  rp.probeNow();
  assert.equal(pings.length, 0, 'no target');
  rp.setTarget('203.0.113.1:50000');
  assert.equal(pings.length, 1);
  clock.advance(20);
  rp.probeNow();
  assert.equal(pings.length, 2, 'at once, not at the next round 250 ms after the first');
  // The schedule restarts from it: the next round is 250 ms after this probe.
  clock.advance(249);
  assert.equal(pings.length, 2);
  clock.advance(1);
  assert.equal(pings.length, 3);
  rp.onPong(pings[2]!.txid);
  rp.probeNow();
  assert.equal(pings.length, 3, 'up: keepalives keep their own schedule');
  rp.setPaused(true);
  rp.probeNow();
  assert.equal(pings.length, 3, 'paused under a direct path');
});

test('relay path: three unanswered keepalives → down and probing again; a pong brings it back', () => {
  const { clock, pings, rp } = rig();
  rp.setTarget('203.0.113.1:50000');
  rp.onPong(pings[0]!.txid);
  clock.advance(5_000); // keepalive 1 (unanswered)
  clock.advance(5_000); // miss 1 → suspect rate
  clock.advance(1_000); // miss 2
  assert.equal(rp.state().up, true);
  clock.advance(1_000); // miss 3 → down, 12 s after the last pong
  assert.equal(rp.state().up, false);
  const n = pings.length;
  clock.advance(250);
  assert.ok(pings.length > n, 'probing resumed');
  rp.onPong(pings.at(-1)!.txid);
  assert.equal(rp.state().up, true);
});

test('relay path: a keepalive unanswered for 1 s calls missed() once (check the allocation), long before the path is lost; an answered one never does', () => {
  const { clock, pings, misses, rp } = rig();
  rp.setTarget('203.0.113.1:50000');
  rp.onPong(pings[0]!.txid);
  clock.advance(5_000);
  const answered = pings.at(-1)!;
  clock.advance(5);
  rp.onPong(answered.txid);
  clock.advance(2_000);
  assert.deepEqual(misses, [], 'an answered keepalive is no miss');
  clock.advance(2_995);
  const sentAt = pings.at(-1)!.at;
  assert.equal(sentAt, clock.now(), 'the next keepalive just left');
  clock.advance(999);
  assert.deepEqual(misses, []);
  clock.advance(1);
  assert.deepEqual(misses, [sentAt + 1000]);
  assert.equal(rp.state().up, true, 'one miss does not lose the path');
});

test('relay path: paused while direct (no traffic); resuming must confirm again before use', () => {
  const { clock, pings, rp } = rig();
  rp.setTarget('203.0.113.1:50000');
  rp.onPong(pings[0]!.txid);
  rp.setPaused(true);
  const n = pings.length;
  clock.advance(60_000);
  assert.equal(pings.length, n, 'silent while paused');
  rp.setPaused(false);
  assert.equal(rp.state().up, false);
  assert.equal(pings.length, n + 1, 'probes at once on resume');
  rp.onPong(pings.at(-1)!.txid);
  assert.equal(rp.state().up, true);
});

test('relay path: a pong for an unknown or expired ping, or after a target change, is ignored', () => {
  const { clock, pings, rp } = rig();
  rp.setTarget('203.0.113.1:50000');
  assert.equal(rp.onPong(Buffer.alloc(12, 99)), null);
  const old = pings[0]!.txid;
  rp.setTarget('203.0.113.1:50002');
  assert.equal(rp.onPong(old), null, 'a pong meant for the old target proves nothing');
  clock.advance(11_000);
  assert.equal(rp.onPong(pings[1]!.txid), null, 'older than the ping TTL');
  rp.setTarget(null);
  const n = pings.length;
  clock.advance(10_000);
  assert.equal(pings.length, n, 'no target, no pings');
  assert.equal(rp.pingNow(), null);
});

const direct = (kind: 'connecting' | 'direct' | 'unreachable', reason: string) => ({ kind, endpoint: kind === 'direct' ? '198.51.100.2:41641' : null, rttMs: kind === 'direct' ? 1 : null, reason, fastPath: false });

test('combinePath: a suspect direct path shows the relay once the relay answers, else stays direct', () => {
  const up = { up: true, target: '203.0.113.1:50000', rttMs: 3 };
  const down = { up: false, target: null, rttMs: null };
  const suspect = { ...direct('direct', 'direct via 198.51.100.2:41641 (internet)'), suspect: true };
  const v = combinePath({ direct: suspect, relay: up, relayServer: 'udp:203.0.113.1:3478', noRelayWhy: null });
  assert.equal(v.kind, 'relayed');
  assert.equal(v.reason, 'relayed through udp:203.0.113.1:3478: the direct path via 198.51.100.2:41641 went quiet; re-probing it');
  const still = combinePath({ direct: suspect, relay: down, relayServer: 'udp:203.0.113.1:3478', noRelayWhy: null });
  assert.deepEqual(still, direct('direct', 'direct via 198.51.100.2:41641 (internet)'), 'no relay to take over: still direct (and no suspect field leaks into the view)');
});

test('combinePath: direct wins; relay while looking; relayed with the direct reason; unreachable says why no relay', () => {
  const up = { up: true, target: '203.0.113.1:50000', rttMs: 3 };
  const down = { up: false, target: null, rttMs: null };
  assert.equal(combinePath({ direct: direct('direct', 'direct via x'), relay: up, relayServer: 'udp:203.0.113.1:3478', noRelayWhy: null }).kind, 'direct');
  const looking = combinePath({ direct: direct('connecting', 'probing 2 candidates'), relay: up, relayServer: 'udp:203.0.113.1:3478', noRelayWhy: null });
  assert.equal(looking.kind, 'relayed');
  assert.equal(looking.endpoint, 'udp:203.0.113.1:3478');
  assert.equal(looking.rttMs, 3);
  assert.match(looking.reason, /still looking for a direct path/);
  const sym = combinePath({ direct: direct('unreachable', 'no direct path answered: both sides are behind NATs that change ports per destination (symmetric); a relay is needed'), relay: up, relayServer: 'tcp:203.0.113.1:3478', noRelayWhy: null });
  assert.equal(sym.kind, 'relayed');
  assert.equal(sym.reason, 'relayed through tcp:203.0.113.1:3478: no direct path answered: both sides are behind NATs that change ports per destination (symmetric)');
  const none = combinePath({ direct: direct('unreachable', 'no direct path answered: x; a relay is needed'), relay: down, relayServer: null, noRelayWhy: 'the control server offers no relay' });
  assert.equal(none.kind, 'unreachable');
  assert.equal(none.reason, 'no direct path answered: x; the control server offers no relay');
});

const offer = (host: string, transports: Array<'udp' | 'tcp'> = ['udp', 'tcp']): RelayOffer => ({ host, port: 3478, transports, username: 'u', password: 'p', realm: 'r', expiresAt: 0 });

test('chooseRelay: fastest UDP relay, kept unless another is clearly better; TCP when UDP never answered', () => {
  const a = offer('203.0.113.1');
  const b = offer('203.0.113.2');
  assert.equal(chooseRelay([a, b], new Map([['203.0.113.1:3478', 30], ['203.0.113.2:3478', 10]]), null)?.offer.host, '203.0.113.2');
  assert.equal(chooseRelay([a, b], new Map([['203.0.113.1:3478', 12], ['203.0.113.2:3478', 10]]), '203.0.113.1:3478')?.offer.host, '203.0.113.1', 'hysteresis');
  assert.equal(chooseRelay([a, b], new Map([['203.0.113.1:3478', 40], ['203.0.113.2:3478', 10]]), '203.0.113.1:3478')?.offer.host, '203.0.113.2', 'clearly better');
  const udpOnly = offer('203.0.113.3', ['udp']);
  const c = chooseRelay([udpOnly, b], new Map([['203.0.113.3:3478', null], ['203.0.113.2:3478', null]]), null);
  assert.equal(c?.offer.host, '203.0.113.2', 'UDP blocked: the first relay that takes TCP');
  assert.equal(c?.rttMs, null);
  assert.equal(chooseRelay([], new Map(), null), null);
});

test('relay path: an idle pair pings every 15 s, loses a dead path within ~20 s of its last pong, and wake() brings the 5 s pace back', () => {
  let idle = true;
  const { clock, pings, rp } = rig(() => idle);
  rp.setTarget('203.0.113.1:50000');
  rp.onPong(pings[0]!.txid);
  const t0 = clock.now();
  for (let i = 0; i < 120; i++) { // two minutes, every ping answered
    clock.advance(1000);
    const last = pings.at(-1)!;
    if (last.at === clock.now()) rp.onPong(last.txid);
  }
  const keep = pings.filter((p) => p.at > t0).map((p) => p.at);
  const gaps = keep.slice(1).map((t, i) => t - keep[i]!);
  assert.ok(gaps.every((g) => g === 15_000), `idle gaps ${gaps.join(',')}`);
  assert.equal(keep.length, 8);
  // Data, 10 s after the last ping: the next goes at once (5 s since the last have passed).
  const lastAt = keep.at(-1)!;
  assert.equal(clock.now() - lastAt, 10_000);
  idle = false;
  rp.wake();
  clock.advance(1);
  assert.equal(pings.at(-1)!.at, lastAt + 10_000);
  // Idle again, and the path dies: lost within idle interval + 3 checks.
  idle = true;
  rp.onPong(pings.at(-1)!.txid);
  const lastPong = clock.now();
  let lostAt: number | null = null;
  for (let t = 0; t < 60_000 && lostAt === null; t += 100) {
    clock.advance(100);
    if (!rp.state().up) lostAt = clock.now();
  }
  assert.ok(lostAt !== null && lostAt - lastPong <= 5000 + 15_000, `lost ${lostAt === null ? 'never' : lostAt - lastPong} ms after the last pong`);
});

/** `seconds` of a second each: the peer's pings where `peerPings(s)`, every ping of ours answered at once. */
function run(r: ReturnType<typeof rig>, seconds: number, peerPings: (s: number) => boolean): void {
  for (let s = 1; s <= seconds; s++) {
    r.clock.advance(1000);
    if (peerPings(s)) r.rp.onPing();
    const last = r.pings.at(-1)!;
    if (last.at === r.clock.now()) r.rp.onPong(last.txid);
  }
}

test('relay path: idle and following, the leader\'s pings stand for our keepalives; our own ping once a minute; when they stop, or data starts, we ping again', () => {
  let idle = true;
  const r = rig(() => idle, () => false);
  const { clock, pings, rp } = r;
  rp.setTarget('203.0.113.1:50000');
  rp.onPong(pings[0]!.txid);
  // The leader pings every 15 s for five minutes; every ping of ours is answered.
  const t0 = clock.now();
  run(r, 300, (s) => s % 15 === 0);
  const own = pings.filter((p) => p.at > t0).map((p) => p.at - t0);
  assert.ok(own.length >= 4 && own.length <= 6, `own pings while following: ${own.join(',')}`);
  const gaps = own.slice(1).map((t, i) => t - own[i]!);
  assert.ok(gaps.every((g) => g >= 55_000), `own pings ~1 min apart: ${gaps.join(',')}`);
  assert.equal(rp.state().up, true);
  // The leader's pings stop: we ping within the idle interval + slack of its last one.
  const lastPeerPing = clock.now() - (clock.now() - t0) % 15_000;
  const before = pings.length;
  clock.advance(20_000);
  assert.ok(pings.length > before && pings[before]!.at - lastPeerPing <= 18_000, `own ping ${pings[before] ? pings[before]!.at - lastPeerPing : 'never'} ms after the leader's last`);
  // Data: the busy pace (5 s) on our side whatever the leader does.
  rp.onPong(pings.at(-1)!.txid);
  rp.onPing();
  idle = false;
  rp.wake();
  const busyFrom = pings.length;
  run(r, 20, (s) => s % 5 === 0);
  assert.ok(pings.length - busyFrom >= 3, `busy pings of our own: ${pings.length - busyFrom}`);
});

test('relay path: the leader, or a side told nothing about leading, keeps pinging at the idle pace whatever the peer sends', () => {
  for (const leads of [() => true, undefined]) {
    const r = rig(() => true, leads);
    r.rp.setTarget('203.0.113.1:50000');
    r.rp.onPong(r.pings[0]!.txid);
    const t0 = r.clock.now();
    run(r, 120, (s) => s % 15 === 7);
    assert.equal(r.pings.filter((p) => p.at > t0).length, 8);
  }
});
