import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../helper/core/clock.js';
import { isClearlyBetter, leadsKeepalives, PathMachine, unreachableReason, DEFAULT_TIMING, type PathState } from '../../helper/net/path.js';
import type { NatMapping } from '../../helper/net/stun.js';

interface Sent {
  t: number;
  ep: string;
  txid: Buffer;
  lowTtl: boolean;
}

function harness(o: { candidates?: string[]; gate?: boolean; lan?: string[]; local?: NatMapping; peer?: NatMapping; behindNat?: boolean; relayed?: boolean; leads?: boolean; waiting?: () => boolean; idle?: () => boolean } = {}) {
  const clock = new ManualClock(0);
  const sent: Sent[] = [];
  const states: PathState[] = [];
  const cmm: number[] = [];
  const rechecks: number[] = [];
  let n = 0;
  const m = new PathMachine(
    {
      clock,
      gate: o.gate ?? false,
      ...(o.behindNat !== undefined && { behindNat: () => o.behindNat! }),
      ...(o.relayed !== undefined && { relayed: () => o.relayed! }),
      ...(o.leads !== undefined && { leads: () => o.leads! }),
      ...(o.waiting !== undefined && { waiting: o.waiting }),
      ...(o.idle !== undefined && { idle: o.idle }),
      isLan: (ep) => (o.lan ?? []).includes(ep),
      localNat: () => o.local ?? 'unknown',
      peerNat: () => o.peer,
      newTxid: () => {
        const b = Buffer.alloc(12);
        b.writeUInt32BE(++n, 8);
        return b;
      },
      io: {
        ping: (ep, txid, lowTtl) => sent.push({ t: clock.now(), ep, txid, lowTtl }),
        callMeMaybe: () => cmm.push(clock.now()),
        state: (s) => states.push(s),
        recheckNat: () => rechecks.push(clock.now()),
      },
    },
    o.candidates ?? ['203.0.113.6:41641', '198.51.100.2:41641'],
  );
  /** Answers the most recent ping to ep after `rtt` ms. */
  const pong = (ep: string, rtt = 0): number | null => {
    const last = [...sent].reverse().find((s) => s.ep === ep);
    if (!last) throw new Error(`no ping to ${ep}`);
    clock.advance(rtt);
    return m.onPong(ep, last.txid);
  };
  const to = (ep: string): number[] => sent.filter((s) => s.ep === ep).map((s) => s.t);
  /** Answers a ping to ep sent at this very moment, if there is one. */
  const answerNow = (ep: string): void => {
    const last = [...sent].reverse().find((s) => s.ep === ep);
    if (last && last.t === clock.now()) m.onPong(ep, last.txid);
  };
  return { clock, sent, states, cmm, rechecks, m, pong, to, answerNow };
}

test('path: probing pings every candidate every 500 ms and the first pong confirms a direct path', () => {
  const h = harness();
  h.m.start();
  assert.equal(h.m.state().kind, 'connecting');
  assert.equal(h.cmm.length, 1, 'asks the peer to punch back at once');
  h.clock.advance(1000);
  assert.deepEqual(h.to('203.0.113.6:41641'), [0, 500, 1000]);
  assert.deepEqual(h.to('198.51.100.2:41641'), [0, 500, 1000]);
  assert.equal(h.pong('203.0.113.6:41641', 12), 12);
  const s = h.m.state();
  assert.deepEqual(s, { kind: 'direct', endpoint: '203.0.113.6:41641', rttMs: 12, reason: 'direct via 203.0.113.6:41641 (internet)', fastPath: false, suspect: false });
  assert.deepEqual(h.states.at(-1), s, 'the change was announced');
  // Probing stops: the next packet is the keepalive 5 s later, to the active path only.
  const before = h.sent.length;
  h.clock.advance(4999);
  assert.equal(h.sent.length, before);
  h.clock.advance(1);
  assert.deepEqual(h.sent.slice(before).map((x) => x.ep), ['203.0.113.6:41641']);
});

test('path: keepalives to the active path stay well under 25 s', () => {
  const h = harness();
  h.m.start();
  h.pong('203.0.113.6:41641', 5);
  const t0 = h.clock.now();
  for (let i = 0; i < 12; i++) {
    h.clock.advance(i === 0 ? 5000 : 4997); // exactly to the next keepalive
    h.pong('203.0.113.6:41641', 3);
  }
  const ka = h.to('203.0.113.6:41641').filter((t) => t > t0);
  const gaps = ka.slice(1).map((t, i) => t - (ka[i] as number));
  assert.ok(gaps.length >= 10);
  assert.ok(Math.max(...gaps) < 25_000 && Math.max(...gaps) <= DEFAULT_TIMING.keepaliveIntervalMs, `gaps ${gaps.join(',')}`);
  assert.equal(h.m.state().kind, 'direct');
  assert.equal(h.m.state().rttMs, 3);
});

test('path: three unanswered keepalives mean the path is lost, then probing starts again', () => {
  const h = harness();
  h.m.start();
  h.pong('203.0.113.6:41641', 5); // last pong at t=5
  h.clock.advance(5000); // keepalive 1 at 5005 (unanswered)
  h.clock.advance(5000); // 1 missed; keepalive 2 sooner
  assert.deepEqual(h.to('203.0.113.6:41641').slice(-2), [5005, 10005]);
  h.clock.advance(2000); // 2 missed; keepalive 3
  assert.equal(h.m.state().kind, 'direct');
  assert.deepEqual(h.to('203.0.113.6:41641').slice(-1), [12005]);
  h.clock.advance(1999);
  assert.equal(h.m.state().kind, 'direct');
  h.clock.advance(1); // 3 missed → lost, 14 s after the last pong
  assert.equal(h.clock.now(), 14005);
  const s = h.m.state();
  assert.equal(s.kind, 'connecting');
  assert.equal(s.endpoint, null);
  assert.match(s.reason, /203\.0\.113\.6:41641 stopped answering/);
  const t = h.clock.now();
  h.clock.advance(1000);
  assert.deepEqual(h.to('198.51.100.2:41641').filter((x) => x >= t), [t, t + 500, t + 1000], 'fast probing of every candidate again');
  assert.ok(h.cmm.includes(t), 'and the peer is asked to punch again');
  // A pong on the way back in restores the path.
  h.pong('198.51.100.2:41641', 2);
  assert.equal(h.m.state().kind, 'direct');
});

test('path: a slow pong for the active path still counts: no miss accumulates', () => {
  const h = harness();
  h.m.start();
  h.pong('203.0.113.6:41641', 5);
  for (let i = 0; i < 10; i++) {
    h.clock.advance(i === 0 ? 5000 : 1);
    h.pong('203.0.113.6:41641', 4999); // answered just before the next keepalive
  }
  assert.equal(h.m.state().kind, 'direct');
  assert.equal(h.m.state().rttMs, 4999);
});

test('path: the best RTT wins, with hysteresis, and a LAN path is preferred when close', () => {
  const pub = '203.0.113.6:41641';
  const lan = '192.168.1.5:41641';
  const other = '198.51.100.2:41641';
  const h = harness({ candidates: [pub, other, lan], lan: [lan] });
  h.m.start();
  // Three pings left at t=0; answers arrive in order of arrival.
  const txOf = (ep: string): Buffer => ([...h.sent].reverse().find((s) => s.ep === ep) as Sent).txid;
  const [tp, to, tl] = [txOf(pub), txOf(other), txOf(lan)];
  h.clock.advance(30);
  h.m.onPong(pub, tp);
  assert.equal(h.m.state().endpoint, pub);
  h.m.onPong(other, to); // 30 ms as well
  assert.equal(h.m.state().endpoint, pub, 'equal RTT: no switch');
  // The LAN path answers a little later (40 ms): still close enough to prefer the LAN.
  h.clock.advance(10);
  h.m.onPong(lan, tl);
  assert.equal(h.m.state().endpoint, lan);
  assert.match(h.m.state().reason, /LAN/);
  assert.equal(isClearlyBetter({ rttMs: 29, lan: false }, { rttMs: 30, lan: false }), false);
  assert.equal(isClearlyBetter({ rttMs: 20, lan: false }, { rttMs: 30, lan: false }), true);
  assert.equal(isClearlyBetter({ rttMs: 0.2, lan: false }, { rttMs: 0.5, lan: false }), false, 'sub-millisecond jitter never flaps');
  assert.equal(isClearlyBetter({ rttMs: 20, lan: false }, { rttMs: 25, lan: true }), false, 'LAN kept when internet is only a bit faster');
  assert.equal(isClearlyBetter({ rttMs: 5, lan: false }, { rttMs: 25, lan: true }), true, 'a LAN path that is much slower loses');
  assert.equal(isClearlyBetter({ rttMs: 1.4, lan: true }, { rttMs: 1, lan: false }), true);
});

test('path: every 30 s while direct all candidates are re-measured and a clearly better one takes over', () => {
  const a = '203.0.113.6:41641';
  const b = '198.51.100.2:41641';
  const h = harness({ candidates: [a, b] });
  h.m.start();
  h.pong(a, 40);
  const t0 = h.clock.now();
  // Keepalives to a answered in 40 ms; b is pinged only at the rescan, 30 s after the path began.
  for (let i = 0; i < 5; i++) {
    h.clock.advance(i === 0 ? 5000 : 4960);
    h.pong(a, 40);
  }
  h.clock.advance(4960);
  assert.deepEqual(h.to(b).filter((t) => t > t0), [t0 + 30_000]);
  assert.equal(h.m.state().endpoint, a);
  assert.equal(h.pong(b, 3), 3);
  assert.equal(h.m.state().endpoint, b, '3 ms vs 40 ms: switch');
  assert.equal(h.m.state().rttMs, 3);
});

test('path: unreachable after the 10 s window with the symmetric reason, then upgrade attempts every 5 s forever', () => {
  const h = harness({ local: 'endpoint-dependent', peer: 'endpoint-dependent' });
  h.m.start();
  h.m.callMeMaybe([]); // the peer punched too: it just never gets through
  h.clock.advance(9999);
  assert.equal(h.m.state().kind, 'connecting');
  h.clock.advance(1);
  const s = h.m.state();
  assert.equal(s.kind, 'unreachable');
  assert.equal(s.reason, 'no direct path answered: both sides are behind NATs that change ports per destination (symmetric); a relay is needed');
  const t = h.clock.now();
  h.clock.advance(60_000);
  const after = h.to('203.0.113.6:41641').filter((x) => x > t);
  assert.deepEqual(after, Array.from({ length: 12 }, (_, i) => t + 5000 * (i + 1)));
  assert.equal(h.m.state().kind, 'unreachable');
  assert.equal(h.cmm.length, 3, 'call-me-maybe repeated every 30 s while not direct');
  // An upgrade attempt that finally gets an answer.
  h.pong('203.0.113.6:41641', 20);
  assert.equal(h.m.state().kind, 'direct');
});

test('path: unreachable reasons a person can act on', () => {
  const base = { candidates: 2, peerHeard: true, windowMs: 10_000 };
  assert.match(unreachableReason({ ...base, local: 'endpoint-dependent', peer: 'endpoint-independent' }), /this side is behind a NAT that changes ports per destination \(symmetric\).*relay is needed/);
  assert.match(unreachableReason({ ...base, local: 'endpoint-independent', peer: 'endpoint-dependent' }), /the peer is behind a NAT that changes ports per destination \(symmetric\)/);
  assert.match(unreachableReason({ ...base, local: 'unknown', peer: undefined, peerHeard: false }), /nothing came back from the peer/);
  assert.match(unreachableReason({ ...base, local: 'endpoint-independent', peer: 'endpoint-independent' }), /within 10 s on 2 candidates: a firewall may be blocking UDP/);
  assert.match(unreachableReason({ ...base, candidates: 0, local: 'unknown', peer: undefined }), /no address candidates/);
});

test('path: with priming, non-LAN candidates get low-TTL pings until the peer punches back', () => {
  const pub = '203.0.113.6:41641';
  const lan = '192.168.1.5:41641';
  const h = harness({ candidates: [pub, lan], lan: [lan], gate: true });
  h.m.start();
  h.clock.advance(1000);
  assert.ok(h.sent.filter((s) => s.ep === pub).every((s) => s.lowTtl), 'public candidate only primed');
  assert.ok(h.sent.filter((s) => s.ep === lan).every((s) => !s.lowTtl), 'LAN candidate pinged at full TTL');
  assert.match(h.m.state().reason, /call-me-maybe/);
  const t = h.clock.now();
  h.m.callMeMaybe([]);
  const now = h.sent.filter((s) => s.t === t && s.ep === pub);
  assert.ok(now.some((s) => !s.lowTtl), 'call-me-maybe from the peer: full-TTL pings at once');
  h.clock.advance(500);
  assert.ok(h.sent.filter((s) => s.t > t && s.ep === pub).every((s) => !s.lowTtl));
});

test('path: a ping from the peer opens the gate too, and its source becomes a candidate', () => {
  const h = harness({ candidates: ['203.0.113.6:41641'], gate: true });
  h.m.start();
  const t = h.clock.now();
  h.m.onPing('203.0.113.6:50001'); // the peer's NAT gave it another port towards us
  assert.ok(h.m.candidates().includes('203.0.113.6:50001'));
  const burst = h.sent.filter((s) => s.t === t && !s.lowTtl).map((s) => s.ep).sort();
  assert.deepEqual(burst, ['203.0.113.6:41641', '203.0.113.6:50001']);
  assert.equal(h.pong('203.0.113.6:50001', 3), 3);
  assert.equal(h.m.state().endpoint, '203.0.113.6:50001');
});

test('path: pongs from the wrong address, unknown or stale txids are ignored', () => {
  const h = harness();
  h.m.start();
  const ping = h.sent[0] as Sent;
  assert.equal(h.m.onPong('203.0.113.99:1', ping.txid), null, 'right txid, wrong source');
  assert.equal(h.m.onPong(ping.ep, Buffer.alloc(12, 0xee)), null, 'unknown txid');
  h.clock.advance(DEFAULT_TIMING.pingTtlMs + 1000);
  assert.equal(h.m.onPong(ping.ep, ping.txid), null, 'too old');
  assert.notEqual(h.m.state().kind, 'direct');
  // A txid answers once.
  const last = [...h.sent].reverse().find((s) => s.ep === ping.ep) as Sent;
  assert.notEqual(h.m.onPong(last.ep, last.txid), null);
  assert.equal(h.m.onPong(last.ep, last.txid), null);
});

test('path: candidates from the control plane replace the old ones; new ones are pinged at once', () => {
  const h = harness({ candidates: ['203.0.113.6:41641'] });
  h.m.start();
  h.clock.advance(200);
  const t = h.clock.now();
  h.m.setCandidates(['203.0.113.7:41641']);
  assert.deepEqual(h.m.candidates(), ['203.0.113.7:41641']);
  assert.deepEqual(h.sent.filter((s) => s.t === t).map((s) => s.ep), ['203.0.113.7:41641']);
});

test('path: a peer that stops listing our active address (restart, new NAT port) is re-probed at once', () => {
  const h = harness({ candidates: ['203.0.113.6:41641'] });
  h.m.start();
  h.pong('203.0.113.6:41641', 3);
  assert.equal(h.m.state().kind, 'direct');
  const t = h.clock.now();
  h.m.setCandidates(['203.0.113.6:50000']);
  assert.equal(h.m.state().kind, 'connecting');
  assert.match(h.m.state().reason, /moved away from 203\.0\.113\.6:41641/);
  assert.deepEqual(h.sent.filter((s) => s.t === t).map((s) => s.ep), ['203.0.113.6:50000'], 'the new address is pinged at once');
  h.pong('203.0.113.6:50000', 2);
  assert.deepEqual([h.m.state().kind, h.m.state().endpoint], ['direct', '203.0.113.6:50000']);
  // Re-sending the same list while direct changes nothing.
  h.m.setCandidates(['203.0.113.6:50000']);
  assert.equal(h.m.state().kind, 'direct');
});

test('path: a host with no NAT sends nothing to internet candidates until the peer punches', () => {
  const h = harness({ gate: true, behindNat: false, candidates: ['203.0.113.6:41641', '198.51.100.9:41641'], lan: ['198.51.100.9:41641'] });
  h.m.start();
  h.clock.advance(2000);
  assert.deepEqual(h.to('203.0.113.6:41641'), [], 'not even a low-TTL ping: it would reach the peer router');
  assert.ok(h.to('198.51.100.9:41641').length > 0, 'LAN candidates are pinged');
  assert.equal(h.cmm.length, 1, 'the peer is asked to punch');
  h.m.callMeMaybe([]);
  const t = h.clock.now();
  assert.deepEqual(h.sent.filter((s) => s.t === t && s.ep === '203.0.113.6:41641').map((s) => s.lowTtl), [false]);
});

test('path: behind a NAT, the peer is asked to punch only after one of its internet candidates was primed', () => {
  const h = harness({ gate: true, candidates: [] });
  h.m.start();
  h.clock.advance(1000);
  assert.equal(h.cmm.length, 0, 'nothing primed yet: a call-me-maybe would invite packets our NAT is not open to');
  h.m.setCandidates(['203.0.113.6:41641']);
  assert.equal(h.cmm.length, 1);
  assert.deepEqual(h.sent.filter((s) => s.ep === '203.0.113.6:41641').map((s) => s.lowTtl), [true]);
});

test('path: close() stops every timer', () => {
  const h = harness();
  h.m.start();
  h.m.close();
  const n = h.sent.length;
  h.clock.advance(120_000);
  assert.equal(h.sent.length, n);
  assert.equal(h.clock.pending, 0);
});

test('path: unanswered traffic (suspect) re-probes at once and loses a dead path within 2 s, not 14 s', () => {
  const h = harness();
  h.m.start();
  h.pong('203.0.113.6:41641', 5);
  h.clock.advance(1000); // t=1005: traffic goes unanswered; no keepalive is due before 5005
  const before = h.sent.length;
  h.m.suspect();
  assert.deepEqual(h.sent.slice(before).map((s) => s.ep).sort(), ['198.51.100.2:41641', '203.0.113.6:41641'], 'the active path and every other candidate are pinged now');
  assert.equal(h.states.at(-1)?.suspect, true, 'the state says suspect at once (the caller moves the traffic to the relay)');
  assert.equal(h.states.at(-1)?.kind, 'direct');
  h.m.suspect(); // repeated reports change nothing
  assert.equal(h.sent.length, before + 2);
  h.clock.advance(1999);
  assert.equal(h.m.state().kind, 'direct');
  assert.deepEqual(h.to('203.0.113.6:41641').filter((t) => t > 1005), [2005], 'a second re-probe 1 s after the first');
  h.clock.advance(1);
  const s = h.m.state();
  assert.equal(s.kind, 'connecting', 'lost after two unanswered re-probes');
  assert.match(s.reason, /traffic and two re-probes went unanswered/);
  assert.ok(h.cmm.includes(h.clock.now()), 'and the peer is asked to punch again at once');
});

test('path: traffic that merely stopped (suspect(true)) re-probes at once but says suspect only once a re-probe goes unanswered', () => {
  const h = harness({ candidates: ['203.0.113.6:41641'] });
  h.m.start();
  h.pong('203.0.113.6:41641', 5);
  h.clock.advance(1000);
  const before = h.sent.length;
  h.m.suspect(true);
  assert.equal(h.sent.length, before + 1, 're-probed now');
  assert.equal(h.m.state().suspect, false, 'the traffic stays direct meanwhile (a game that closed looks the same)');
  h.pong('203.0.113.6:41641', 3);
  h.clock.advance(10_000);
  assert.ok(h.states.every((s) => !s.suspect), 'answered: never suspect');
  // The same, dead this time: suspect after the first unanswered re-probe, lost after the second.
  h.m.suspect(true);
  h.clock.advance(999);
  assert.equal(h.m.state().suspect, false);
  h.clock.advance(1);
  assert.equal(h.m.state().suspect, true);
  assert.equal(h.m.state().kind, 'direct');
  // Unanswered traffic (strong evidence) meanwhile changes nothing more; the second miss loses it.
  h.m.suspect();
  h.clock.advance(1000);
  assert.equal(h.m.state().kind, 'connecting');
});

test('path: a quiet re-probe becomes suspect at once when traffic then goes unanswered', () => {
  const h = harness({ candidates: ['203.0.113.6:41641'] });
  h.m.start();
  h.pong('203.0.113.6:41641', 5);
  h.clock.advance(1000);
  h.m.suspect(true);
  assert.equal(h.m.state().suspect, false);
  h.m.suspect();
  assert.equal(h.m.state().suspect, true);
  assert.equal(h.states.at(-1)?.suspect, true, 'announced');
});

test('path: a suspect path that answers the re-probe stays, with the normal keepalive after', () => {
  const h = harness({ candidates: ['203.0.113.6:41641'] });
  h.m.start();
  h.pong('203.0.113.6:41641', 5);
  h.clock.advance(1000);
  h.m.suspect();
  assert.equal(h.m.state().suspect, true);
  h.pong('203.0.113.6:41641', 3);
  assert.equal(h.states.at(-1)?.suspect, false, 'the answer clears suspect (the traffic comes back to the direct path)');
  h.clock.advance(10_000);
  assert.equal(h.m.state().kind, 'direct');
  assert.equal(h.m.state().endpoint, '203.0.113.6:41641');
  // The next keepalive 5 s after the answer, not at the suspect rate.
  assert.deepEqual(h.to('203.0.113.6:41641').filter((t) => t > 1008), [6008, 11008]);
});

test('path: while re-probing, a slower candidate that answers first does not take over; after the loss it does', () => {
  const h = harness();
  h.m.start();
  h.pong('203.0.113.6:41641', 5);
  h.clock.advance(1000);
  h.m.suspect(); // t=1005
  // Suspect may be a false alarm: a candidate that is not clearly better must not move a path
  // that may be healthy (endpoint + nft change on every false alarm).
  h.pong('198.51.100.2:41641', 40);
  assert.equal(h.m.state().endpoint, '203.0.113.6:41641');
  h.clock.advance(1960); // t=3005: two re-probes went unanswered
  assert.equal(h.m.state().kind, 'connecting');
  // Connecting again: the other candidate's pong is accepted (the peer moved).
  h.pong('198.51.100.2:41641', 40);
  assert.equal(h.m.state().kind, 'direct');
  assert.equal(h.m.state().endpoint, '198.51.100.2:41641');
});

test('path: one late re-probe pong (a machine stall) does not lose a healthy path', () => {
  const h = harness({ candidates: ['203.0.113.6:41641'] });
  h.m.start();
  h.pong('203.0.113.6:41641', 5);
  h.clock.advance(1000);
  h.m.suspect(); // t=1005
  const first = h.sent[h.sent.length - 1]!;
  h.clock.advance(1500); // the re-probe window passed without the pong…
  assert.equal(h.m.state().kind, 'direct');
  assert.ok(h.m.onPong('203.0.113.6:41641', first.txid) !== null, '…then it arrives late');
  h.clock.advance(4_000); // up to the next keepalive (answered or not, that is the normal rule)
  assert.equal(h.m.state().kind, 'direct');
  assert.equal(h.m.state().endpoint, '203.0.113.6:41641');
});

test('path: suspect is ignored right after a pong, and repeats within a keepalive interval of an answered re-probe wait for the next keepalive', () => {
  const h = harness();
  h.m.start();
  h.pong('203.0.113.6:41641', 5);
  h.clock.advance(500); // t=505: the path answered 500 ms ago
  let n = h.sent.length;
  h.m.suspect();
  assert.equal(h.sent.length, n, 'a path that just answered is not re-probed');
  h.clock.advance(1000); // t=1505
  h.m.suspect();
  h.pong('203.0.113.6:41641', 5); // t=1510: answered (a false alarm)
  n = h.sent.length;
  h.clock.advance(2000); // t=3510
  h.m.suspect(); // false alarm again (relayed packets of a peer still switching to direct)
  assert.equal(h.sent.length, n, 'no re-probe of every candidate within 5 s of an answered one');
  h.clock.advance(2000); // t=5510: keepalive due at 6510
  assert.equal(h.sent.length, n);
  h.clock.advance(1000); // t=6510: the deferred re-probe goes with the keepalive, to every candidate
  assert.deepEqual(h.sent.slice(n).map((s) => `${s.t} ${s.ep}`).sort(), ['6510 198.51.100.2:41641', '6510 203.0.113.6:41641']);
  h.clock.advance(2000); // unanswered twice: this time the path is lost
  assert.equal(h.m.state().kind, 'connecting');
});

test('path: a call-me-maybe made for our old candidates is not a punch: the gate stays shut until one made for where we are now', () => {
  const pub = '203.0.113.6:41641';
  const h = harness({ candidates: [pub], gate: true });
  h.m.start();
  h.clock.advance(1000);
  const t = h.clock.now();
  // The peer sent this while it still knew our port before a restart: its NAT is not open to us.
  h.m.callMeMaybe([pub], false);
  assert.ok(h.sent.filter((s) => s.t >= t && s.ep === pub).every((s) => s.lowTtl), 'still only priming: a full-TTL packet would reach its router first');
  assert.match(h.m.state().reason, /call-me-maybe/);
  h.clock.advance(500);
  const t2 = h.clock.now();
  h.m.callMeMaybe([pub], true);
  assert.ok(h.sent.some((s) => s.t === t2 && s.ep === pub && !s.lowTtl), 'a call made for our current candidates opens it');
});

test('path: new candidates of the peer (it restarted) ask it to punch again at once, not 30 s after the last call', () => {
  const h = harness({ candidates: ['203.0.113.6:41641'], gate: true });
  h.m.start();
  assert.equal(h.cmm.length, 1);
  h.clock.advance(DEFAULT_TIMING.probeWindowMs + 1000);
  assert.equal(h.m.state().kind, 'unreachable');
  const calls = h.cmm.length;
  h.m.setCandidates(['203.0.113.6:50000']);
  assert.equal(h.cmm.length, calls + 1, 'a call-me-maybe for the new candidates goes now');
  assert.deepEqual(h.sent.filter((s) => s.ep === '203.0.113.6:50000').map((s) => s.lowTtl), [true], 'after priming them');
});

/** A gated machine that went direct on `ep` and then lost it (three unanswered keepalives). */
function lostDirect(ep: string, relayed = true, others: string[] = []) {
  const h = harness({ gate: true, candidates: [ep, ...others], relayed });
  h.m.start();
  h.m.callMeMaybe([]);
  h.pong(ep, 3);
  assert.equal(h.m.state().kind, 'direct');
  while (h.m.state().kind === 'direct') h.clock.advance(500);
  return h;
}

test('path: a failed re-punch after a lost direct path goes quiet for longer than conntrack keeps unreplied UDP, then primes and calls again', () => {
  const ep = '203.0.113.6:41641';
  const h = lostDirect(ep);
  const lostAt = h.clock.now();
  const calls = h.cmm.length;
  // The re-punch window: low-TTL priming until the peer calls; it calls, full TTL; nothing answers.
  h.clock.advance(1000);
  assert.ok(h.sent.filter((s) => s.t > lostAt && s.ep === ep).every((s) => s.lowTtl), 'primes again first');
  h.m.callMeMaybe([]);
  h.clock.advance(DEFAULT_TIMING.probeWindowMs + 500);
  const quietFrom = [...h.sent].reverse().find((s) => s.ep === ep)!.t;
  assert.equal(h.m.state().kind, 'unreachable');
  assert.match(h.m.state().reason, /no direct probes for 40 s so that stale NAT mappings expire/);
  // Quiet: not a packet, whatever the peer says (its call and its changed candidates).
  const callsBefore = h.cmm.length;
  h.clock.advance(10_000);
  h.m.callMeMaybe([ep]);
  h.m.setCandidates([ep, '203.0.113.6:50000']);
  h.clock.advance(quietFrom + DEFAULT_TIMING.quietMs - h.clock.now() - 1);
  assert.deepEqual(h.sent.filter((s) => s.t > quietFrom), [], 'silence towards internet candidates');
  assert.equal(h.cmm.length, callsBefore, 'no call-me-maybe while quiet');
  assert.deepEqual(h.rechecks, [quietFrom + DEFAULT_TIMING.quietMs - DEFAULT_TIMING.quietRecheckMs], 'STUN is asked again 5 s before the spell ends');
  assert.ok(DEFAULT_TIMING.quietMs > 30_000, 'longer than the 30 s conntrack keeps an unreplied UDP entry');
  // Then: a fresh window, gated (low TTL) and a call-me-maybe, as at the start.
  h.clock.advance(1);
  const t = h.clock.now();
  assert.equal(h.m.state().kind, 'connecting');
  assert.deepEqual(h.sent.filter((s) => s.t === t).map((s) => [s.ep, s.lowTtl]), [[ep, true], ['203.0.113.6:50000', true]]);
  assert.equal(h.cmm.length, callsBefore + 1);
  assert.ok(h.cmm.length > calls);
  // The peer, done with its own quiet spell, calls: full TTL, and the pong makes the path direct.
  h.m.callMeMaybe([]);
  assert.equal(h.sent.filter((s) => s.t === t && !s.lowTtl).length, 2);
  h.pong('203.0.113.6:50000', 4);
  assert.deepEqual([h.m.state().kind, h.m.state().endpoint], ['direct', '203.0.113.6:50000']);
});

test('path: the first re-punch window goes quiet even if it only primed (our own priming keeps a clashed mapping alive)', () => {
  const ep = '203.0.113.6:41641';
  const h = lostDirect(ep);
  h.clock.advance(DEFAULT_TIMING.probeWindowMs + 500);
  assert.match(h.m.state().reason, /stale NAT mappings expire/);
  const t = h.clock.now();
  h.clock.advance(DEFAULT_TIMING.quietMs - 1000);
  assert.deepEqual(h.sent.filter((s) => s.t > t), []);
});

test('path: after the quiet spell, a window that only primed (the peer is still quiet) does not go quiet again; the peer\'s later call opens a window that does if it fails', () => {
  const ep = '203.0.113.6:41641';
  const h = lostDirect(ep);
  h.clock.advance(DEFAULT_TIMING.probeWindowMs + 500 + DEFAULT_TIMING.quietMs);
  assert.equal(h.m.state().kind, 'connecting');
  h.clock.advance(DEFAULT_TIMING.probeWindowMs);
  assert.equal(h.m.state().kind, 'unreachable');
  assert.doesNotMatch(h.m.state().reason, /stale NAT mappings/);
  // It keeps its NAT open (low TTL every 5 s) for the peer.
  const t0 = h.clock.now();
  h.clock.advance(10_000);
  const primes = h.sent.filter((s) => s.t > t0 && s.ep === ep);
  assert.ok(primes.length >= 2 && primes.every((s) => s.lowTtl));
  // The peer calls; full TTL; unanswered for a window: quiet again.
  h.m.callMeMaybe([]);
  assert.equal(h.m.state().kind, 'connecting');
  h.clock.advance(DEFAULT_TIMING.probeWindowMs + 500);
  assert.match(h.m.state().reason, /stale NAT mappings expire/);
});

test('path: while quiet, a ping from the peer (it got through our router) is answered on that flow only, and its pong makes the path direct', () => {
  const h = lostDirect('203.0.113.6:41641', true, ['203.0.113.6:50000']);
  h.clock.advance(DEFAULT_TIMING.probeWindowMs + 500);
  assert.match(h.m.state().reason, /stale NAT mappings expire/);
  const t = h.clock.now();
  h.m.onPing('203.0.113.7:60000');
  assert.deepEqual(h.sent.filter((s) => s.t >= t).map((s) => [s.ep, s.lowTtl]), [['203.0.113.7:60000', false]]);
  h.pong('203.0.113.7:60000', 2);
  assert.deepEqual([h.m.state().kind, h.m.state().endpoint], ['direct', '203.0.113.7:60000']);
});

test('path: without a relay (a quiet spell would be an outage) the re-punch goes on every 5 s as before', () => {
  const h = lostDirect('203.0.113.6:41641', false);
  h.clock.advance(DEFAULT_TIMING.probeWindowMs + 500);
  assert.doesNotMatch(h.m.state().reason, /stale NAT mappings/);
  const t = h.clock.now();
  h.clock.advance(10_000);
  assert.ok(h.sent.filter((s) => s.t > t).length >= 2);
  // The peer's call brings a short burst, as before: the state stays unreachable.
  h.m.callMeMaybe([]);
  assert.equal(h.m.state().kind, 'unreachable');
});

test('path: without the gate (no priming) nothing goes quiet', () => {
  const h = harness({ candidates: ['203.0.113.6:41641'], relayed: true });
  h.m.start();
  h.pong('203.0.113.6:41641', 3);
  while (h.m.state().kind === 'direct') h.clock.advance(500);
  h.clock.advance(DEFAULT_TIMING.probeWindowMs + 500);
  const t = h.clock.now();
  h.clock.advance(10_000);
  assert.ok(h.sent.filter((s) => s.t > t).length >= 2, 'upgrade attempts every 5 s as before');
});

// --- one side leads the keepalives (the other answers and follows) --------------------------

test('path: a follower sends no keepalive while the peer pings the active path, only an RTT ping every 30 s', () => {
  const ep = '203.0.113.6:41641';
  const h = harness({ leads: false });
  h.m.start();
  h.pong(ep, 5);
  const t0 = h.clock.now();
  for (let i = 0; i < 24; i++) { // two minutes of the peer's 5 s keepalives
    h.clock.advance(5000);
    h.m.onPing(ep);
    h.answerNow(ep);
  }
  const ours = h.to(ep).filter((t) => t > t0);
  // The old rule (both sides ping every 5 s) sent 24 here.
  assert.ok(ours.length >= 3 && ours.length <= 5, `keepalives ${ours.join(',')}`);
  const gaps = ours.slice(1).map((t, i) => t - (ours[i] as number));
  assert.ok(gaps.every((g) => g >= 25_000 && g <= 35_000), `gaps ${gaps.join(',')}`);
  assert.equal(h.m.state().kind, 'direct');
  assert.equal(h.m.state().suspect, false);
});

test('path: a follower whose peer stops pinging keeps the path alive itself and loses a dead path as fast as a leader', () => {
  const ep = '203.0.113.6:41641';
  const h = harness({ leads: false });
  h.m.start();
  h.pong(ep, 5);
  for (let i = 0; i < 3; i++) {
    h.clock.advance(5000);
    h.m.onPing(ep);
  }
  const lastPing = h.clock.now();
  const before = h.to(ep).length;
  // The path dies: no more pings, nothing answered.
  let lostAt: number | null = null;
  for (let t = 0; t < 30_000 && lostAt === null; t += 100) {
    h.clock.advance(100);
    if (h.m.state().kind !== 'direct') lostAt = h.clock.now();
  }
  const own = h.to(ep).slice(before);
  assert.ok(own.length >= 3, `the follower took over: ${own.join(',')}`);
  assert.ok((own[0] as number) - lastPing <= DEFAULT_TIMING.keepaliveIntervalMs + DEFAULT_TIMING.followSlackMs, `first own keepalive ${(own[0] as number) - lastPing} ms after the last ping`);
  assert.ok(lostAt !== null, 'the dead path was lost');
  // A leader loses it ~14 s after the last pong (test above); the follower no later.
  assert.ok(lostAt - lastPing <= 14_000, `lost ${lostAt - lastPing} ms after the last ping`);
});

test('path: a follower whose peer stopped pinging but whose own keepalives are answered stays direct at the 5 s pace', () => {
  const ep = '203.0.113.6:41641';
  const h = harness({ leads: false });
  h.m.start();
  h.pong(ep, 5);
  h.clock.advance(5000);
  h.m.onPing(ep);
  const t0 = h.clock.now();
  for (let i = 0; i < 60; i++) { // 60 s: every own keepalive answered at once
    h.clock.advance(1000);
    h.answerNow(ep);
  }
  const own = h.to(ep).filter((t) => t > t0);
  const gaps = own.slice(1).map((t, i) => t - (own[i] as number));
  assert.equal(h.m.state().kind, 'direct');
  assert.ok(gaps.length >= 9 && gaps.slice(1).every((g) => g === DEFAULT_TIMING.keepaliveIntervalMs), `gaps ${gaps.join(',')}`);
});

test('path: a follower counts only pings from its active path; pings from elsewhere leave it keeping the path alive', () => {
  const ep = '203.0.113.6:41641';
  const h = harness({ leads: false });
  h.m.start();
  h.pong(ep, 5);
  const t0 = h.clock.now();
  for (let i = 0; i < 6; i++) {
    h.clock.advance(5000);
    h.m.onPing('198.51.100.2:41641');
    h.answerNow(ep);
  }
  assert.ok(h.to(ep).filter((t) => t > t0).length >= 5);
});

test('path: a leader and a follower wired together send half the keepalives, keep the NAT mapping busy and both notice a cut', () => {
  const clock = new ManualClock(0);
  const A = '203.0.113.6:41641';
  const B = '198.51.100.2:41641';
  let up = true;
  const pkts: number[] = []; // times a packet crossed the path (either way)
  let sentPings = 0;
  const machines = new Map<string, PathMachine>();
  const mk = (self: string, peer: string, leads: boolean): PathMachine => {
    let n = 0;
    const m = new PathMachine(
      {
        clock,
        gate: false,
        leads: () => leads,
        isLan: () => false,
        localNat: () => 'endpoint-independent',
        peerNat: () => 'endpoint-independent',
        newTxid: () => {
          const b = Buffer.alloc(12);
          b.write(self.slice(0, 4), 0);
          b.writeUInt32BE(++n, 8);
          return b;
        },
        io: {
          ping: (ep, txid) => {
            sentPings++;
            if (!up || ep !== peer) return;
            // 1 ms each way: the peer's machine hears the ping, the peer answers, ours hears the pong.
            clock.setTimeout(() => {
              pkts.push(clock.now());
              machines.get(peer)!.onPing(self);
              if (!up) return;
              clock.setTimeout(() => {
                pkts.push(clock.now());
                machines.get(self)!.onPong(peer, txid);
              }, 1);
            }, 1);
          },
          callMeMaybe: () => {},
          state: () => {},
        },
      },
      [peer],
    );
    machines.set(self, m);
    return m;
  };
  const a = mk(A, B, true);
  const b = mk(B, A, false);
  a.start();
  b.start();
  clock.advance(1000);
  assert.equal(a.state().kind, 'direct');
  assert.equal(b.state().kind, 'direct');
  const p0 = sentPings;
  const t0 = clock.now();
  clock.advance(120_000);
  const perMinute = (sentPings - p0) / 2;
  // Both sides pinging every 5 s (the old rule) sent 24 a minute; now 12 + one RTT ping per 30 s.
  assert.ok(perMinute <= 15, `${perMinute} pings a minute`);
  const inWin = pkts.filter((t) => t >= t0);
  const gaps = inWin.slice(1).map((t, i) => t - (inWin[i] as number));
  assert.ok(Math.max(...gaps) <= DEFAULT_TIMING.keepaliveIntervalMs, `longest silence ${Math.max(...gaps)} ms`);
  assert.equal(a.state().kind, 'direct');
  assert.equal(b.state().kind, 'direct');
  assert.ok(b.state().rttMs !== null);
  // Cut the path: both sides lose it within the leader's ~14 s.
  up = false;
  const cutAt = clock.now();
  const lost = new Map<string, number>();
  for (let t = 0; t < 30_000; t += 100) {
    clock.advance(100);
    for (const [k, m] of machines) if (!lost.has(k) && m.state().kind !== 'direct') lost.set(k, clock.now() - cutAt);
  }
  assert.ok((lost.get(A) ?? Infinity) <= 15_000, `leader lost it after ${lost.get(A)} ms`);
  assert.ok((lost.get(B) ?? Infinity) <= 15_000, `follower lost it after ${lost.get(B)} ms`);
  a.close();
  b.close();
});

test('path: exactly one side of a pair leads the keepalives', () => {
  const k1 = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
  const k2 = 'BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
  const k3 = 'aAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
  for (const [x, y] of [[k1, k2], [k2, k3], [k1, k3]] as const) {
    assert.notEqual(leadsKeepalives(x, y), leadsKeepalives(y, x), `${x} / ${y}`);
  }
});

test('path: while another way is on its way (birthday probing), connecting rounds only keep mappings primed, every 2 s', () => {
  let waiting = true;
  const h = harness({ gate: true, local: 'endpoint-dependent', peer: 'endpoint-independent', waiting: () => waiting });
  h.m.start();
  h.clock.advance(4000);
  assert.deepEqual(h.to('203.0.113.6:41641'), [0, 2000, 4000]);
  assert.ok(h.sent.every((x) => x.lowTtl), 'primes until the peer punches');
  // The peer punches: answered at once (full TTL), then the slow pace again.
  h.m.callMeMaybe(['203.0.113.6:41641']);
  assert.equal(h.sent.at(-1)?.lowTtl, false);
  assert.deepEqual(h.to('203.0.113.6:41641'), [0, 2000, 4000, 4000]);
  h.clock.advance(2000);
  assert.deepEqual(h.to('203.0.113.6:41641'), [0, 2000, 4000, 4000, 6000]);
  // Nothing more to wait for (the attempt runs or failed): the usual pace.
  waiting = false;
  h.clock.advance(2500);
  assert.deepEqual(h.to('203.0.113.6:41641').slice(4), [6000, 8000, 8500]);
  assert.equal(DEFAULT_TIMING.waitingProbeIntervalMs, 2000);
});

test('path: peerPunchedAt is when the peer first punched', () => {
  const h = harness({ gate: true });
  h.m.start();
  assert.equal(h.m.peerPunchedAt, null);
  h.clock.advance(700);
  h.m.callMeMaybe(['203.0.113.6:41641']);
  assert.equal(h.m.peerPunchedAt, 700);
  h.clock.advance(300);
  h.m.onPing('203.0.113.6:41641');
  assert.equal(h.m.peerPunchedAt, 700, 'the first punch counts');
});

// --- idle pairs keep their paths alive at a slower pace ------------------------------------

test('path: an idle pair keeps its direct path alive every 15 s and rescans every 2 min; data brings the 5 s pace back at once', () => {
  const ep = '203.0.113.6:41641';
  const other = '198.51.100.2:41641';
  let idle = true;
  const h = harness({ idle: () => idle });
  h.m.start();
  h.pong(ep, 5);
  const t0 = h.clock.now();
  for (let i = 0; i < 300; i++) { // five minutes, every keepalive answered
    h.clock.advance(1000);
    h.answerNow(ep);
  }
  const keep = h.to(ep).filter((t) => t > t0);
  const gaps = keep.slice(1).map((t, i) => t - (keep[i] as number));
  assert.ok(gaps.every((g) => g === DEFAULT_TIMING.idleKeepaliveIntervalMs), `idle keepalive gaps ${gaps.join(',')}`);
  assert.equal(keep.length, 20, 'five minutes at 15 s (60 at the busy pace)');
  const rescans = h.to(other).filter((t) => t > t0);
  assert.ok(rescans.length >= 2 && rescans.length <= 3, `rescans ${rescans.join(',')} (10 at the busy pace)`);
  assert.equal(h.m.state().kind, 'direct');
  // Data starts 1 s after a keepalive: the next comes within 5 s of that keepalive, not 15 s,
  // and the busy pace goes on.
  const last = keep.at(-1) as number;
  h.clock.advance(last + 1000 - h.clock.now());
  idle = false;
  h.m.wake();
  for (let i = 0; i < 20; i++) {
    h.clock.advance(1000);
    h.answerNow(ep);
  }
  const busy = h.to(ep).filter((t) => t > last);
  assert.ok((busy[0] as number) - last <= DEFAULT_TIMING.keepaliveIntervalMs, `first keepalive after wake() ${(busy[0] as number) - last} ms after the last`);
  const busyGaps = busy.slice(1).map((t, i) => t - (busy[i] as number));
  assert.ok(busyGaps.length >= 3 && busyGaps.every((g) => g <= DEFAULT_TIMING.keepaliveIntervalMs), `busy gaps ${busyGaps.join(',')}`);
});

test('path: an idle dead path is lost within ~21 s of its last pong', () => {
  const ep = '203.0.113.6:41641';
  const h = harness({ idle: () => true });
  h.m.start();
  h.pong(ep, 5);
  const lastPong = h.clock.now();
  let lostAt: number | null = null;
  for (let t = 0; t < 60_000 && lostAt === null; t += 100) {
    h.clock.advance(100);
    if (h.m.state().kind !== 'direct') lostAt = h.clock.now();
  }
  assert.ok(lostAt !== null, 'lost');
  const after = lostAt - lastPong;
  assert.ok(after <= DEFAULT_TIMING.idleKeepaliveIntervalMs + 3 * DEFAULT_TIMING.suspectIntervalMs, `lost ${after} ms after the last pong`);
});

test('path: an idle follower waits for the leader\'s pings at the idle pace and sends no keepalives of its own', () => {
  const ep = '203.0.113.6:41641';
  const h = harness({ leads: false, idle: () => true });
  h.m.start();
  h.pong(ep, 5);
  const t0 = h.clock.now();
  for (let i = 0; i < 16; i++) { // four minutes of the leader's idle keepalives
    h.clock.advance(DEFAULT_TIMING.idleKeepaliveIntervalMs);
    h.m.onPing(ep);
    h.answerNow(ep);
  }
  const ours = h.to(ep).filter((t) => t > t0);
  assert.ok(ours.length <= 2, `only the RTT ping every 2 min: ${ours.join(',')}`);
  // A follower that thinks the pair busy expects them at the idle pace too: once the leader's
  // pings arrive it takes nothing over (its own pings are answered, as a live peer would).
  const h2 = harness({ leads: false, idle: () => false });
  h2.m.start();
  h2.pong(ep, 5);
  const t1 = h2.clock.now();
  for (let s = 1; s <= 240; s++) {
    h2.clock.advance(1000);
    if (s % 15 === 0) h2.m.onPing(ep);
    h2.answerNow(ep);
  }
  const ours2 = h2.to(ep).filter((t) => t > t1 + 20_000);
  assert.ok(ours2.length <= 8, `RTT pings every 30 s only once the leader's pings come, no takeover: ${ours2.join(',')}`);
});

test('path: an idle unreachable pair punches again every 30 s and calls every 2 min; data brings 5 s back', () => {
  let idle = false;
  const h = harness({ idle: () => idle });
  h.m.start();
  h.clock.advance(DEFAULT_TIMING.probeWindowMs + 100);
  assert.equal(h.m.state().kind, 'unreachable');
  idle = true;
  const t0 = h.clock.now() + 5000; // the round already scheduled at the busy pace
  h.clock.advance(5 * 60_000);
  const tries = [...new Set(h.to('203.0.113.6:41641').filter((t) => t > t0))];
  const gaps = tries.slice(1).map((t, i) => t - (tries[i] as number));
  assert.ok(gaps.length >= 8 && gaps.every((g) => g === DEFAULT_TIMING.idleUpgradeIntervalMs), `idle tries every 30 s: ${gaps.join(',')}`);
  const calls = h.cmm.filter((t) => t > t0);
  assert.ok(calls.length >= 2 && calls.length <= 3, `calls every 2 min: ${calls.join(',')}`);
  idle = false;
  h.m.wake();
  const n = h.to('203.0.113.6:41641').length;
  h.clock.advance(DEFAULT_TIMING.upgradeIntervalMs);
  assert.equal(h.to('203.0.113.6:41641').length, n + 1, 'a try 5 s after the data started');
});
