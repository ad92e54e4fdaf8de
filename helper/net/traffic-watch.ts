// "A path that carries traffic and gets no answer is suspect at once" (DESIGN.md), decided from
// WireGuard's own byte counters, read about once a second. On the fast path the helper never sees
// WireGuard's packets, so counters are the one signal that covers both data paths; disco keepalives
// alone notice a dead path only after three misses (~14 s), long after a game has frozen.
// The side that only answers sees something else when the path dies: no unanswered bytes at all,
// because nothing reaches it to answer — its traffic simply stops, both ways at once. So two-way
// traffic (data both ways in one reading) that falls silent both ways for quietMs is reported too:
// the peer's probes then find out (after a NAT rebinding that side may be the one whose relay
// allocation and public port moved, and nothing the other side sends can reach it). A flow that
// merely ends (a game closed) costs one false report: a re-probe the path answers.
//
// Pure: the caller reads the counters and passes the time, and asks nextReadMs() when to read
// again: every fastReadMs while bytes move or an answer is awaited (a rebinding is noticed
// 1-1.5 s after it), backing off by doubling to idleReadMs while nothing moves, so an idle party
// costs one UAPI read every few seconds instead of one a second. The first reading after traffic
// resumes only starts the clock (observed on two readings), so the back-off delays a report by at
// most idleReadMs, and only for traffic that starts into an already dead path.
// Readings may come from elsewhere too: the per-peer metrics round reads the same counters every
// 1-4 s, and hands them over (PartyManager), so the watch's own read is due only readMs after the
// latest reading of either (dueInMs); at rest it waits REST_SLACK_MS longer, so that the metrics
// round, due at the same time, reads for both instead of one read each.
//
// A peer is reported when bytes went out and nothing came back for at least quietMs — observed
// on two readings, so a response that is merely in flight at one reading does not count — and
// only once per silence: the next report needs the peer to have answered in between. A lone
// WireGuard keepalive (32 bytes, never answered by design) is below minBytes.
//
// One-way streams (a game server broadcasting state, a voice stream) get nothing back from the
// peer's WireGuard but a passive keepalive 10 s after data arrives (WireGuard's
// KEEPALIVE_TIMEOUT), so a 1 s silence proves nothing there. The rule: what the peer sent last
// decides how long we wait. If its last bytes carried data (more than one 32-byte keepalive in a
// reading), traffic is two-way — a 20 pps ping is answered every 50 ms — and quietMs of silence
// is suspect (rebinding noticed in ~2 s). If the peer has only been sending keepalives, or
// nothing yet, silence counts only past oneWayQuietMs, longer than the passive keepalive plus a
// reading, so a healthy one-way stream is never reported and a dead one still is (~12 s, before
// three missed disco keepalives at ~14 s). Handshake messages count as data: at most one false
// report per rekey (2 min), which the path machine absorbs (re-probe, rate limited).
//
// A handshake alone is not two-way traffic, though: its initiation and response move bytes both
// ways in one reading, and the silence after it (no data yet, as in a join storm) looked like a
// flow that stopped — one "stop" and a re-probe of every candidate, a relay check and a control
// check per peer per handshake, right when the party is joining (3 per helper at N=8, up to 57 at
// N=16, from the helper logs). Byte counts tell them apart: WireGuard's handshake messages have
// fixed sizes that data messages (32 bytes + payload padded to 16) never have.

export interface TrafficSample {
  key: string;
  txBytes: number;
  rxBytes: number;
}

export interface TrafficWatchOptions {
  /** Unanswered bytes that count as traffic (default 96: more than one keepalive). */
  minBytes?: number;
  /** How long sent traffic may go unanswered (default 1000 ms). */
  quietMs?: number;
  /** How long sent traffic may go unanswered when the peer only sent keepalives lately (default 12 000 ms). */
  oneWayQuietMs?: number;
  /** Read interval while bytes move (default 500 ms). */
  fastReadMs?: number;
  /** Longest read interval while nothing moves (default 4000 ms). */
  idleReadMs?: number;
}

/** At rest the watch's own read waits this much past readMs for a shared reading to come first. */
export const REST_SLACK_MS = 500;

/** A WireGuard keepalive: an empty data message. Anything bigger in a reading carried data. */
const WG_KEEPALIVE_BYTES = 32;

/** WireGuard's handshake initiation, response and cookie reply, on the wire. */
const WG_INITIATION_BYTES = 148;
const WG_RESPONSE_BYTES = 92;
const WG_COOKIE_BYTES = 64;

/**
 * Byte counts one reading's worth of handshake messages adds up to, one direction: one or two
 * of them (a retried initiation, crossed handshakes: our initiation and our response), plus a
 * cookie reply and up to two keepalives (the initiator confirms a session with one). No more:
 * every extra message makes more sums that data could hit by chance (four 128-byte pings, 512,
 * are two initiations and two responses).
 */
const HANDSHAKE_SHAPED: ReadonlySet<number> = (() => {
  const s = new Set<number>();
  for (let i = 0; i <= 2; i++)
    for (let r = 0; r <= 2; r++)
      for (let c = 0; c <= 1; c++)
        for (let k = 0; k <= 2; k++) if (i + r > 0 && i + r <= 2) s.add(i * WG_INITIATION_BYTES + r * WG_RESPONSE_BYTES + c * WG_COOKIE_BYTES + k * WG_KEEPALIVE_BYTES);
  return s;
})();

/**
 * The reading's bytes one way carried data: more than a keepalive, and not only handshake
 * messages. A data reading that happens to have one of those sizes (a few tiny packets adding up
 * to 240, say) counts from the next reading on; a flow moves more than one reading's worth.
 */
export function carriesData(bytes: number): boolean {
  return bytes > WG_KEEPALIVE_BYTES && !HANDSHAKE_SHAPED.has(bytes);
}

/** Unanswered bytes older than this that stayed under minBytes are forgotten. */
const TRICKLE_WINDOW_MS = 3000;

interface PeerTraffic {
  tx: number;
  rx: number;
  /** Bytes sent since the last byte received. */
  unanswered: number;
  /** When the first of those was seen, or null. */
  since: number | null;
  reported: boolean;
  /** The peer's last bytes carried data (not only keepalives): traffic is two-way. */
  twoWay: boolean;
  /** Data moved both ways in one reading, and no report of its end yet. */
  flowing: boolean;
  /** When a flowing peer was first seen silent both ways, or null. */
  silentSince: number | null;
}

export class TrafficWatch {
  private readonly peers = new Map<string, PeerTraffic>();
  private readonly minBytes: number;
  private readonly quietMs: number;
  private readonly oneWayQuietMs: number;
  private readonly fastReadMs: number;
  private readonly idleReadMs: number;
  private readMs: number;
  private lastUpdateAt = -Infinity;
  /** Of the keys the latest update() returned, those reported because traffic stopped both ways. */
  readonly stopped = new Set<string>();
  /** The keys whose WireGuard data (not keepalives or handshakes) moved in the latest update(). */
  readonly moving = new Set<string>();

  constructor(o: TrafficWatchOptions = {}) {
    this.minBytes = o.minBytes ?? 96;
    this.quietMs = o.quietMs ?? 1000;
    this.oneWayQuietMs = o.oneWayQuietMs ?? 12_000;
    this.fastReadMs = o.fastReadMs ?? 500;
    this.idleReadMs = Math.max(this.fastReadMs, o.idleReadMs ?? 4000);
    this.readMs = this.fastReadMs;
  }

  /** When to read the counters next, after the latest update(). */
  nextReadMs(): number {
    return this.readMs;
  }

  /** How long until the watch needs a reading of its own, given the latest update() from anyone (0: now). */
  dueInMs(now: number): number {
    const slack = this.readMs >= this.idleReadMs ? REST_SLACK_MS : 0;
    return Math.max(0, this.lastUpdateAt + this.readMs + slack - now);
  }

  /** One reading of every peer's counters; returns the keys whose traffic went unanswered or stopped both ways. */
  update(samples: readonly TrafficSample[], now: number): string[] {
    const out: string[] = [];
    const seen = new Set<string>();
    let busy = false;
    this.lastUpdateAt = now;
    this.stopped.clear();
    this.moving.clear();
    for (const s of samples) {
      seen.add(s.key);
      const p = this.peers.get(s.key);
      if (!p || s.txBytes < p.tx || s.rxBytes < p.rx) {
        // New peer, or counters reset (peer re-added): start over.
        this.peers.set(s.key, { tx: s.txBytes, rx: s.rxBytes, unanswered: 0, since: null, reported: false, twoWay: false, flowing: false, silentSince: null });
        busy = true;
        continue;
      }
      const dtx = s.txBytes - p.tx;
      const drx = s.rxBytes - p.rx;
      if (carriesData(dtx) || carriesData(drx)) this.moving.add(s.key);
      // A lone keepalive either way is not traffic worth watching closely.
      if (dtx > WG_KEEPALIVE_BYTES || drx > WG_KEEPALIVE_BYTES) busy = true;
      p.tx = s.txBytes;
      p.rx = s.rxBytes;
      if (this.silence(p, dtx, drx, now)) {
        out.push(s.key);
        this.stopped.add(s.key);
        continue;
      }
      if (p.silentSince !== null) busy = true;
      if (drx > 0) {
        p.unanswered = 0;
        p.since = null;
        p.reported = false;
        p.twoWay = drx > WG_KEEPALIVE_BYTES;
        continue;
      }
      if (dtx > 0) {
        // A trickle (keepalives) spread over a long silence is not traffic: count afresh.
        if (p.since !== null && now - p.since > TRICKLE_WINDOW_MS && p.unanswered < this.minBytes) {
          p.unanswered = 0;
          p.since = null;
        }
        p.unanswered += dtx;
        p.since ??= now;
      }
      // Unanswered traffic not reported yet: the next reading may be the one that reports it.
      if (!p.reported && p.unanswered >= this.minBytes) busy = true;
      if (!p.reported && p.since !== null && p.unanswered >= this.minBytes && now - p.since >= (p.twoWay ? this.quietMs : this.oneWayQuietMs)) {
        p.reported = true;
        out.push(s.key);
      }
    }
    for (const k of this.peers.keys()) if (!seen.has(k)) this.peers.delete(k);
    this.readMs = busy ? this.fastReadMs : Math.min(this.idleReadMs, this.readMs * 2);
    return out;
  }

  /** Two-way traffic that stopped both ways for quietMs: true once per stop (see the top). */
  private silence(p: PeerTraffic, dtx: number, drx: number, now: number): boolean {
    if (carriesData(dtx) && carriesData(drx)) {
      p.flowing = true;
      p.silentSince = null;
      return false;
    }
    // Data one way only: the unanswered-traffic rule decides.
    if (dtx > WG_KEEPALIVE_BYTES || drx > WG_KEEPALIVE_BYTES || !p.flowing) {
      p.silentSince = null;
      return false;
    }
    p.silentSince ??= now;
    if (now - p.silentSince < this.quietMs) return false;
    p.flowing = false;
    p.silentSince = null;
    return true;
  }
}
