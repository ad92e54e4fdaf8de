// One peer's relayed path, as a state machine with no I/O of its own (like path.ts for direct
// paths). The relayed path is our TURN allocation sending to the peer's relayed address: nothing
// is punched, so there is nothing to gate; it only has to be confirmed (a disco pong through it
// proves that both allocations permit each other) and kept measured.
//
// WireGuard uses the relay only once it is confirmed. Sent earlier, the first handshake can arrive
// before the peer's allocation permits ours and is dropped by the relay; WireGuard then waits 5 s.
// The hold queue keeps it instead, for the one round trip that confirmation costs.
//
//   idle       no target (no allocation of ours, or the peer published no relayed address)
//   probing    ping the target every probeIntervalMs until a pong
//   up         ping every keepaliveIntervalMs (suspectIntervalMs after a miss); missedForLoss
//              unanswered in a row → probing again
// While the peer has a direct path the caller pauses the machine (no traffic, no keepalive); on
// resume it probes at once, so a lost direct path falls back to the relay within one round trip.
// A pair without data (idle(), as for direct paths in path.ts) pings every idleKeepaliveIntervalMs
// and checks each ping's pong suspectIntervalMs later; wake() brings the busy pace back.
// While idle only one side keeps the path alive (`leads`, the same side as for direct paths): the
// other counts the peer's pings through the relay as its keepalive's pongs, pings itself once
// every followOwnPingMs (its RTT, and a check of its own allocation), and keeps the path alive as
// above once the pings stop for idleKeepaliveIntervalMs + followSlackMs. At rest in a 16-player
// party the random-NAT players' relayed pairs cost them more than their direct ones did.

import { randomBytes } from 'node:crypto';
import { monoOf, type Clock } from '../core/clock.js';
import { followerRestMs } from './follow.js';
import { ProbeStats } from './probe-stats.js';

export interface RelayPathTiming {
  probeIntervalMs: number;
  keepaliveIntervalMs: number;
  /** The keepalive pace while idle(). */
  idleKeepaliveIntervalMs: number;
  suspectIntervalMs: number;
  missedForLoss: number;
  pingTtlMs: number;
  /** A keepalive unanswered this long calls missed() (the path is not lost yet: that takes missedForLoss). */
  answerWaitMs: number;
  /** Idle and following: the leader's next ping is overdue this long after its idle interval. */
  followSlackMs: number;
  /** Idle and following: our own ping this often all the same. */
  followOwnPingMs: number;
}

export const DEFAULT_RELAY_PATH_TIMING: RelayPathTiming = {
  probeIntervalMs: 250,
  keepaliveIntervalMs: 5_000,
  idleKeepaliveIntervalMs: 15_000,
  suspectIntervalMs: 1_000,
  missedForLoss: 3,
  pingTtlMs: 10_000,
  answerWaitMs: 1_000,
  followSlackMs: 3_000,
  followOwnPingMs: 60_000,
};

export interface RelayPathState {
  up: boolean;
  /** The peer's relayed address we send to. */
  target: string | null;
  rttMs: number | null;
}

export interface RelayPathOptions {
  clock: Clock;
  ping(target: string, txid: Buffer): void;
  /** Called when up/target/rtt (noticeably) change. */
  changed(s: RelayPathState): void;
  /** A keepalive through the relay went unanswered for answerWaitMs (our allocation may be orphaned: check it). */
  missed?(): void;
  /** The pair carries no data (default: never): keepalives go at the idle pace. */
  idle?(): boolean;
  /** Whether this side leads the keepalives while idle (default true: both sides ping). */
  leads?(): boolean;
  timing?: Partial<RelayPathTiming>;
  newTxid?: () => Buffer;
}

const noop = (): void => {};

export class RelayPath {
  private readonly t: RelayPathTiming;
  private readonly newTxid: () => Buffer;
  /** txid → wall send time (expiry) and monotonic send time (RTT, sub-millisecond). */
  private readonly pending = new Map<string, { at: number; mono: number }>();
  private readonly mono: () => number;
  /** Keepalives through the relay and their answers: RTT, jitter and loss for metrics. */
  readonly probes = new ProbeStats();
  private target: string | null = null;
  private up = false;
  private rtt: number | null = null;
  private missed = 0;
  private keepaliveTxid: string | null = null;
  private lastKeepaliveAt = -Infinity;
  private peerPingAt = -Infinity;
  private nextRoundAt = Infinity;
  private paused = false;
  private closed = false;
  private cancelTimer: () => void = noop;
  private cancelAnswerWait: () => void = noop;

  constructor(private readonly o: RelayPathOptions) {
    this.t = { ...DEFAULT_RELAY_PATH_TIMING, ...o.timing };
    this.newTxid = o.newTxid ?? (() => randomBytes(12));
    this.mono = monoOf(o.clock);
  }

  state(): RelayPathState {
    return { up: this.up, target: this.target, rttMs: this.rtt };
  }

  /** The address to reach the peer through the relay, or null when there is none (either side). */
  setTarget(target: string | null): void {
    if (this.closed || target === this.target) return;
    this.target = target;
    this.reset();
    this.o.changed(this.state());
    this.round();
  }

  /** Paused while a direct path carries the traffic; resuming probes at once. */
  setPaused(paused: boolean): void {
    if (this.closed || paused === this.paused) return;
    this.paused = paused;
    if (paused) {
      this.cancelTimer();
      return;
    }
    // Not known to be up any more: confirm again before WireGuard relies on it.
    if (this.up) {
      this.up = false;
      this.o.changed(this.state());
    }
    this.missed = 0;
    this.keepaliveTxid = null;
    this.round();
  }

  /** A pong that came through the relay; its RTT when it answers one of our pings, else null. */
  onPong(txid: Buffer): number | null {
    if (this.closed) return null;
    const key = txid.toString('hex');
    const sent = this.pending.get(key);
    if (sent === undefined) return null;
    this.pending.delete(key);
    const now = this.o.clock.now();
    if (now - sent.at > this.t.pingTtlMs) return null;
    const rtt = Math.max(0, this.mono() - sent.mono);
    this.probes.answered(rtt);
    this.missed = 0;
    this.keepaliveTxid = null;
    const was = this.up;
    const moved = this.rtt === null || (Math.abs(rtt - this.rtt) > 1 && Math.abs(rtt - this.rtt) > 0.25 * Math.max(rtt, this.rtt));
    this.rtt = rtt;
    this.up = true;
    if (!was || moved) this.o.changed(this.state());
    if (!was && !this.paused) this.schedule(this.t.keepaliveIntervalMs);
    return rtt;
  }

  /**
   * A probe now, while the path is not confirmed yet, at a moment it is likely to be answered:
   * our relay has just installed the permission for the peer (a probe sent before that was
   * dropped by the relay: the first one always is, as the permission takes a round trip or two
   * to the relay), or the peer's ping just came through (a relay forwards only between
   * allocations that permit each other, so ours now gets through too). Otherwise the path waits
   * for the next round, up to probeIntervalMs: at a join that was the tunnel's first ~250 ms.
   */
  probeNow(): void {
    if (this.closed || this.paused || this.target === null || this.up) return;
    this.round();
  }

  /**
   * The peer's ping came through the relay. Not confirmed yet: ours gets through now too (a relay
   * forwards only between allocations that permit each other), so probe at once. Confirmed, idle
   * and following: it stands for our keepalive's pong (see the top).
   */
  onPing(): void {
    if (this.closed || this.paused || this.target === null) return;
    if (!this.up) return this.probeNow();
    const now = this.o.clock.now();
    this.peerPingAt = now;
    const rest = this.restMs(now);
    if (rest === null) return;
    this.missed = 0;
    this.keepaliveTxid = null;
    this.schedule(rest);
  }

  /** Data started on an idle pair: the next keepalive comes at the busy pace. */
  wake(): void {
    if (this.closed || this.paused || !this.up || this.target === null) return;
    const due = Math.max(0, this.lastKeepaliveAt + this.t.keepaliveIntervalMs - this.o.clock.now());
    if (this.nextRoundAt > this.o.clock.now() + due) this.schedule(due);
  }

  /** A ping outside the schedule (the user's ping command); the pong comes back through onPong. */
  pingNow(): Buffer | null {
    if (this.closed || this.target === null) return null;
    return this.send(this.target);
  }

  close(): void {
    this.closed = true;
    this.cancelTimer();
    this.cancelAnswerWait();
    this.pending.clear();
  }

  private reset(): void {
    this.cancelTimer();
    this.pending.clear();
    this.up = false;
    this.rtt = null;
    this.missed = 0;
    this.keepaliveTxid = null;
  }

  private send(target: string): Buffer {
    const txid = this.newTxid();
    this.pending.set(txid.toString('hex'), { at: this.o.clock.now(), mono: this.mono() });
    this.o.ping(target, txid);
    return txid;
  }

  private schedule(ms: number): void {
    this.cancelTimer();
    this.nextRoundAt = this.o.clock.now() + ms;
    this.cancelTimer = this.o.clock.setTimeout(() => this.round(), ms);
  }

  private keepaliveMs(): number {
    return this.o.idle?.() === true ? this.t.idleKeepaliveIntervalMs : this.t.keepaliveIntervalMs;
  }

  /** Idle, following, and the leader's pings arrive: how long this round sends nothing (null: it sends). */
  private restMs(now: number): number | null {
    if (!this.up || this.missed !== 0 || this.o.leads?.() !== false || this.o.idle?.() !== true) return null;
    return followerRestMs(now, this.peerPingAt, this.t.idleKeepaliveIntervalMs + this.t.followSlackMs, this.lastKeepaliveAt, this.t.followOwnPingMs);
  }

  private round(): void {
    this.cancelTimer();
    this.nextRoundAt = Infinity;
    if (this.closed || this.paused || this.target === null) return;
    const now = this.o.clock.now();
    for (const [k, p] of this.pending) if (now - p.at > this.t.pingTtlMs) this.pending.delete(k);
    const rest = this.restMs(now);
    if (rest !== null) {
      this.keepaliveTxid = null;
      return this.schedule(rest);
    }
    // Idle pace: the round after a keepalive only checked its pong; answered, wait out the interval.
    if (this.up && this.keepaliveTxid === null && this.missed === 0 && now - this.lastKeepaliveAt < this.keepaliveMs()) {
      return this.schedule(this.lastKeepaliveAt + this.keepaliveMs() - now);
    }
    if (this.up) {
      if (this.keepaliveTxid !== null && this.pending.has(this.keepaliveTxid)) {
        this.missed++;
        this.probes.lost();
      }
      if (this.missed >= this.t.missedForLoss) {
        this.up = false;
        this.missed = 0;
        this.keepaliveTxid = null;
        this.o.changed(this.state());
      } else {
        const txid = this.send(this.target).toString('hex');
        this.keepaliveTxid = txid;
        this.lastKeepaliveAt = now;
        this.probes.sent();
        this.cancelAnswerWait();
        this.cancelAnswerWait = this.o.clock.setTimeout(() => {
          if (!this.closed && this.pending.has(txid)) this.o.missed?.();
        }, this.t.answerWaitMs);
        const pace = this.keepaliveMs();
        return this.schedule(this.missed > 0 || pace > this.t.keepaliveIntervalMs ? this.t.suspectIntervalMs : pace);
      }
    }
    this.send(this.target);
    this.schedule(this.t.probeIntervalMs);
  }
}

/** Drops the suffix the direct machine adds when it gives up; the relayed reason says more. */
function directWhy(reason: string): string {
  return reason.replace(/;\s*a relay is needed$/, '');
}

export interface ViewInput {
  direct: { kind: 'connecting' | 'direct' | 'unreachable'; endpoint: string | null; rttMs: number | null; reason: string; fastPath: boolean; suspect?: boolean };
  relay: RelayPathState;
  /** "udp:203.0.113.1:3478" style description of our relay, or null without an allocation. */
  relayServer: string | null;
  /** Why there is no relay to fall back on, when there is none. */
  noRelayWhy: string | null;
}

export interface ViewState {
  kind: 'connecting' | 'direct' | 'relayed' | 'unreachable';
  endpoint: string | null;
  rttMs: number | null;
  reason: string;
  fastPath: boolean;
}

/** What a player sees: the direct path when there is one, else the relay when it answers. */
export function combinePath(v: ViewInput): ViewState {
  const { suspect, ...d } = v.direct;
  // A suspect direct path (traffic unanswered, re-probing) carries nothing once the relay answers.
  if (d.kind === 'direct' && !(suspect === true && v.relay.up && v.relayServer !== null)) return d;
  if (v.relay.up && v.relayServer !== null) {
    const why =
      d.kind === 'direct' ? `the direct path via ${d.endpoint ?? '?'} went quiet; re-probing it` : d.kind === 'unreachable' ? directWhy(d.reason) : `still looking for a direct path (${d.reason})`;
    return { kind: 'relayed', endpoint: v.relayServer, rttMs: v.relay.rttMs, reason: `relayed through ${v.relayServer}: ${why}`, fastPath: false };
  }
  if (d.kind === 'unreachable' && v.noRelayWhy) return { ...d, reason: `${directWhy(d.reason)}; ${v.noRelayWhy}` };
  return { ...d };
}
