// One peer's path finding, as a state machine with no I/O of its own: it is told about
// candidates, pings from and pongs of the peer, and asks (through PathIO) for pings and
// call-me-maybe messages to be sent. Time comes from an injected Clock, so every rule below is
// unit-tested with a manual clock. The model is Tailscale's magicsock endpoint:
//
//   connecting   ping every candidate every 500 ms for 10 s; the first pong confirms a path
//   direct       ping the active path every 5 s (keepalive well under the 25 s NAT budget), every 2 s
//                once one went unanswered; three unanswered in a row → lost (~14 s after the last
//                pong) → connecting again. Only one side of a pair keeps the path alive (`leads`:
//                the lower disco key); the other answers, and counts each authenticated ping
//                from the peer on the active path as its keepalive's pong. When those pings stop
//                for keepaliveIntervalMs + followSlackMs it keeps the path alive itself as above
//                (so its own dead-path detection is unchanged: ~14 s after the last ping); and
//                it pings the active path itself every 30 s for its RTT. Every 30 s ping all candidates and
//                move to a clearly better one (hysteresis, LAN preferred when RTTs are close);
//                traffic that goes unanswered (suspect()) re-probes at once and loses the path
//                after two re-probes without a pong (~2 s); the state says `suspect` meanwhile
//                (the caller sends through the relay); traffic that merely stopped both ways
//                (suspect(true)) says so only once a re-probe went unanswered
//   unreachable  the 10 s window passed without a pong: say why in words, keep trying every 5 s
//
// A pair that carries no data (idle(): the caller's WireGuard counters, traffic-watch.ts) keeps its
// path alive every idleKeepaliveIntervalMs (15 s, still under the 30 s of a Linux NAT's unreplied
// UDP entry) and rescans every idleRescanIntervalMs (2 min). At rest in a 16-player party those
// keepalives and rescans were, by their rates, ~80 % of each helper's datagrams, and datagrams
// ~60 % of its CPU (profiled).
// An unreachable idle pair (relayed) punches again every idleUpgradeIntervalMs (30 s, calling the
// peer every 2 min) instead of every 5 s (calling every 30 s): two random NATs stay relayed however
// often they try, and at rest their tries were most of those players' datagrams.
// A dead idle path is then lost ~21 s after its last pong instead of ~14 s; traffic that starts
// brings the 5 s pace back at once (wake()), and unanswered traffic re-probes as before. The
// follower expects the leader's pings at the slower pace whatever it sees itself, so a pair whose
// sides disagree for a moment about being idle costs no keepalives of its own.
//
// Punching across two port-restricted Linux NATs deadlocks if a full-TTL packet of ours reaches
// the peer's router before the peer has sent anything towards us (STACK-NOTES). So, when `gate` is
// on, packets to non-LAN candidates are sent with a low TTL (they only open our own NAT) until the
// peer shows that it has opened its NAT too: it sent us call-me-maybe or a ping.
//
// Behind a NAT that allocates a new port per destination, the peer's call-me-maybe proves less:
// the peer opened its NAT towards the ports it knew of ours, not (yet) towards the port our NAT
// just gave our flow to it. A full-TTL packet of ours arriving at its router first leaves an
// unreplied conntrack entry there, and the peer's own packets to that port then get another
// source port: the deadlock above. So there (`peerCallOpensGate` false), only the peer's ping —
// which reached the very port our NAT allocated — opens the gate (portpredict.ts tells the peer
// that port).
//
// After a NAT rebinding (both routers forgot every mapping) the gate alone is not enough. Measured
// in the lab (conntrack -L on both routers): packets that arrived before the local side had sent
// anything (the peer's probes, the relay's data) left unreplied entries that made our new flows
// clash and take random ports; the routers then held two mappings for one socket (the kept port
// for the flow to the peer, the random one for STUN and TURN, which STUN reports and we publish),
// so each side punched towards a port the other side's router did not map for it — and every
// probe, even a low-TTL one, kept those entries alive. So when the first re-punch after losing a
// direct path fails (or a later one that sent full-TTL packets) while a relay carries the traffic,
// we go quiet towards the peer's internet candidates for quietMs — longer than conntrack's 30 s
// for unreplied UDP — closing the gate, and then prime and call again: fresh flows take the
// mapping STUN reports, and the gate orders the punches.

import { randomBytes } from 'node:crypto';
import { monoOf, type Clock } from '../core/clock.js';
import { followerRestMs } from './follow.js';
import { ProbeStats } from './probe-stats.js';
import type { NatMapping } from './stun/client.js';

export type PathKind = 'connecting' | 'direct' | 'unreachable';

export interface PathState {
  kind: PathKind;
  endpoint: string | null;
  rttMs: number | null;
  reason: string;
  fastPath: boolean;
  /**
   * Direct, but traffic on it went unanswered and it is being re-probed (suspect()): the caller
   * sends through the relay meanwhile, when the relay answers, so a rebinding costs seconds.
   */
  suspect: boolean;
}

export interface PathTiming {
  probeIntervalMs: number;
  /**
   * The probe interval while `waiting()` says a better way than plain punching is on its way
   * (birthday probing, see PathOptions.waiting): pings that cannot succeed only keep our NAT open.
   */
  waitingProbeIntervalMs: number;
  probeWindowMs: number;
  upgradeIntervalMs: number;
  /** Unreachable and idle(): punching again this often (the relay carries the pair meanwhile). */
  idleUpgradeIntervalMs: number;
  keepaliveIntervalMs: number;
  /** The keepalive pace while idle() (no data on the pair). */
  idleKeepaliveIntervalMs: number;
  /** After an unanswered keepalive the next one goes sooner, so a dead path is noticed in ~14 s. */
  suspectIntervalMs: number;
  missedPongsForLoss: number;
  rescanIntervalMs: number;
  /** The rescan interval while idle(). */
  idleRescanIntervalMs: number;
  callMeMaybeIntervalMs: number;
  /** The call-me-maybe interval while unreachable and idle(). */
  idleCallMeMaybeIntervalMs: number;
  /** After suspect() (traffic went unanswered): the active path must answer within this, or it is lost. */
  reprobeMs: number;
  /** After a call-me-maybe while unreachable: probe at the fast rate for this long. */
  burstMs: number;
  /** Pings older than this are forgotten; a pong for them is ignored. */
  pingTtlMs: number;
  maxLearned: number;
  /** Silence towards the peer's internet candidates after a failed re-punch (see above). */
  quietMs: number;
  /** STUN is asked again this long before a quiet spell ends, so the candidates punched to are current. */
  quietRecheckMs: number;
  /**
   * The side that does not lead keepalives starts its own this long after the peer's expected
   * next ping (keepaliveIntervalMs after its last): room for a late timer or a slow network.
   */
  followSlackMs: number;
}

export const DEFAULT_TIMING: PathTiming = {
  probeIntervalMs: 500,
  waitingProbeIntervalMs: 2_000,
  probeWindowMs: 10_000,
  upgradeIntervalMs: 5_000,
  idleUpgradeIntervalMs: 30_000,
  keepaliveIntervalMs: 5_000,
  idleKeepaliveIntervalMs: 15_000,
  suspectIntervalMs: 2_000,
  missedPongsForLoss: 3,
  rescanIntervalMs: 30_000,
  idleRescanIntervalMs: 120_000,
  callMeMaybeIntervalMs: 30_000,
  idleCallMeMaybeIntervalMs: 120_000,
  reprobeMs: 1_000,
  burstMs: 3_000,
  pingTtlMs: 15_000,
  maxLearned: 8,
  // Linux conntrack forgets an unreplied UDP entry 30 s after its last packet; 10 s of margin.
  quietMs: 40_000,
  quietRecheckMs: 5_000,
  followSlackMs: 3_000,
};

export interface PathIO {
  /** Send a disco ping; lowTtl = a priming packet that must not get past our own NAT. */
  ping(endpoint: string, txid: Buffer, lowTtl: boolean): void;
  /** Ask the peer (through the control plane) to punch towards our candidates now. */
  callMeMaybe(): void;
  state(s: PathState): void;
  /**
   * Ask STUN for our public address now: near the end of a quiet spell, because a rebinding while
   * relayed moves our mapping (and so our published candidate) without losing a direct path.
   */
  recheckNat?(): void;
}

export interface PathOptions {
  clock: Clock;
  io: PathIO;
  /** Candidates on one of our own subnets: no NAT between, always pinged at full TTL. */
  isLan(endpoint: string): boolean;
  /** Low-TTL priming until the peer has punched too (see above). */
  gate: boolean;
  /**
   * False when this host is on a public address (no NAT of its own to open). Such a host must
   * not send to a NATed peer before the peer punches: even a TTL-2 packet from a public host
   * reaches the peer's router, whose conntrack entry then makes the peer's own mapping clash
   * and move to another port (measured in the lab: a 3-player party deadlocked). Default: true.
   */
  behindNat?: () => boolean;
  /**
   * Whether the peer's call-me-maybe opens the gate (default true). False behind a NAT with
   * endpoint-dependent mapping whose ports we predict: only a ping from the peer does (see above).
   */
  peerCallOpensGate?: () => boolean;
  /**
   * The peer is reachable through a relay right now. Only then does a failed re-punch go quiet
   * (see the top): the relay carries the traffic meanwhile, and it is the relay's packets that
   * were measured to leave the clashing entries. Without one, a quiet spell would be an outage
   * (a restarted peer would wait for it). Default: never quiet.
   */
  relayed?: () => boolean;
  localNat(): NatMapping;
  peerNat(): NatMapping | undefined;
  /**
   * Whether this side leads the keepalives of the active path (default true: both sides ping,
   * as a peer that does not know the rule does). Exactly one side of a pair must lead: magicsock
   * lets the lower disco key lead. The other follows (see the top): half the keepalive traffic.
   */
  leads?: () => boolean;
  /**
   * Plain punching cannot succeed and another way will (birthday probing between a random
   * symmetric NAT and a peer with one mapping, not started yet): connecting rounds go at
   * waitingProbeIntervalMs. Measured in a join storm: those 500 ms rounds of every such pair were
   * spent only on keeping mappings primed. Default: never.
   */
  waiting?: () => boolean;
  /**
   * The pair carries no data (default: never): keepalives and rescans go at their idle pace (see
   * the top). Call wake() when data starts.
   */
  idle?: () => boolean;
  timing?: Partial<PathTiming>;
  newTxid?: () => Buffer;
}

interface Cand {
  endpoint: string;
  lan: boolean;
  /** Learned from the source of the peer's ping (peer-reflexive), not from the control plane. */
  learned: boolean;
  /**
   * When the peer last named it in call-me-maybe while its published list did not (e.g. its
   * predicted port behind a sequential symmetric NAT), else null. The published list leaving it
   * out says nothing about it: it is kept until one call-me-maybe interval passes without it.
   */
  toldAt: number | null;
  rttMs: number | null;
  lastPongAt: number | null;
}

interface PendingPing {
  endpoint: string;
  sentAt: number;
  /** Monotonic send time: RTTs need sub-millisecond resolution (a LAN RTT is ~0.3 ms). */
  sentMono: number;
}

const noop = (): void => {};

/** Better enough to switch to: a clear RTT win, or a LAN path that is about as fast. */
export function isClearlyBetter(cand: { rttMs: number; lan: boolean }, cur: { rttMs: number; lan: boolean }): boolean {
  if (cand.lan && !cur.lan) return cand.rttMs <= cur.rttMs * 1.5 + 2;
  if (!cand.lan && cur.lan) return cand.rttMs * 1.5 + 2 < cur.rttMs;
  return cand.rttMs < cur.rttMs * 0.8 && cur.rttMs - cand.rttMs >= 1;
}

/** Whether our side of a pair leads the direct path's keepalives: the lower disco key does (any order both sides agree on would). */
export function leadsKeepalives(ourDiscoKey: string, peerDiscoKey: string): boolean {
  return ourDiscoKey < peerDiscoKey;
}

export interface UnreachableContext {
  local: NatMapping;
  peer: NatMapping | undefined;
  candidates: number;
  /** The peer answered call-me-maybe or pinged us. */
  peerHeard: boolean;
  windowMs: number;
}

export function unreachableReason(c: UnreachableContext): string {
  const relay = 'a relay is needed';
  if (c.candidates === 0) return `no direct path: the peer has no address candidates (it may be offline or not registered yet); ${relay}`;
  const lsym = c.local === 'endpoint-dependent';
  const psym = c.peer === 'endpoint-dependent';
  if (lsym && psym) return `no direct path answered: both sides are behind NATs that change ports per destination (symmetric); ${relay}`;
  if (lsym) return `no direct path answered: this side is behind a NAT that changes ports per destination (symmetric), so the peer never learns the port to answer; ${relay}`;
  if (psym) return `no direct path answered: the peer is behind a NAT that changes ports per destination (symmetric), so its packets arrive from ports our NAT does not expect; ${relay}`;
  if (!c.peerHeard) return `no direct path answered: nothing came back from the peer (it may be offline, or its helper has not punched towards us yet); ${relay}`;
  return `no direct path answered within ${Math.round(c.windowMs / 1000)} s on ${c.candidates} candidate${c.candidates === 1 ? '' : 's'}: a firewall may be blocking UDP between the two sides; ${relay}`;
}

export class PathMachine {
  private readonly t: PathTiming;
  private readonly newTxid: () => Buffer;
  private readonly cands = new Map<string, Cand>();
  private readonly pending = new Map<string, PendingPing>();
  private kind: PathKind = 'connecting';
  private active: Cand | null = null;
  private reason = 'looking for a direct path';
  private windowEnd = 0;
  private burstUntil = 0;
  private peerReady = false;
  /** When peerReady last turned true (the peer punched, or answered), else null. */
  private readyAt: number | null = null;
  private missed = 0;
  private keepaliveTxid: string | null = null;
  /** suspect() is waiting for the active path to answer. */
  private reprobing = false;
  /** That re-probe began on weak evidence: not `suspect` in the state until a re-probe goes unanswered. */
  private reprobeQuiet = false;
  /** When the active path last answered a re-probe: suspect() is ignored for a keepalive interval after. */
  private reprobeAnsweredAt = -Infinity;
  /** suspect() came within that interval: re-probe at the next keepalive instead. */
  private suspectLater = false;
  private lastRescan = 0;
  private lastCallMeMaybe = -Infinity;
  private fastPath = false;
  /** Set while connecting again after a direct path died, so the reason says so. */
  private lostFrom: string | null = null;
  private lostWhy: string | null = null;
  /** Nothing goes to internet candidates before this time (a quiet spell after a failed re-punch). */
  private quietUntil = 0;
  /** A direct path was lost and is not found again yet. */
  private afterLoss = false;
  /** The first window after a loss goes quiet when it fails, whatever it sent: our own priming keeps a clashed mapping alive. */
  private quietOnFail = false;
  /** A full-TTL ping went to an internet candidate in this probing window. */
  private fullSent = false;
  private quietRechecked = false;
  private cancelTimer: () => void = noop;
  /** When the scheduled round runs (wake() may bring it forward). */
  private nextRoundAt = Infinity;
  private started = false;
  private closed = false;
  private last: PathState | null = null;
  private readonly mono: () => number;
  /** Keepalives on the active path and their answers: RTT, jitter and loss for metrics. */
  readonly probes = new ProbeStats();
  /** Extra RTT probes while somebody watches (setMetricProbing); 0 = off. */
  private metricMs = 0;
  private metricTxid: string | null = null;
  private cancelMetric: () => void = noop;
  /** Following: the peer's pings kept the path alive since our last keepalive (ours were not sent). */
  private rested = false;
  /** Following: when the peer's last authenticated ping arrived from the active path. */
  private peerPingAt = -Infinity;
  /** When our last keepalive (or re-probe) went to the active path. */
  private lastKeepaliveAt = -Infinity;

  constructor(private readonly o: PathOptions, candidates: readonly string[] = []) {
    this.t = { ...DEFAULT_TIMING, ...o.timing };
    this.mono = monoOf(o.clock);
    this.newTxid = o.newTxid ?? (() => randomBytes(12));
    for (const c of candidates) this.addCand(c, false);
  }

  /** Begins punching: pings (or primes) every candidate now and asks the peer to punch back. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.beginWindow();
    this.round();
  }

  get peerHasPunched(): boolean {
    return this.peerReady;
  }

  /** When the peer punched (its call-me-maybe or ping opened the gate), null while it has not. */
  get peerPunchedAt(): number | null {
    return this.readyAt;
  }

  private setPeerReady(on: boolean): void {
    if (on && !this.peerReady) this.readyAt = this.o.clock.now();
    if (!on) this.readyAt = null;
    this.peerReady = on;
  }

  state(): PathState {
    return {
      kind: this.kind,
      endpoint: this.active?.endpoint ?? null,
      rttMs: this.active?.rttMs ?? null,
      reason: this.reason,
      fastPath: this.kind === 'direct' && this.fastPath,
      suspect: this.kind === 'direct' && this.reprobing && !this.reprobeQuiet,
    };
  }

  candidates(): string[] {
    return [...this.cands.keys()];
  }

  /** The peer's candidates as the control plane lists them now (learned ones are kept). */
  setCandidates(list: readonly string[]): void {
    if (this.closed) return;
    const a = this.active;
    if (this.kind === 'direct' && a && !a.learned && a.toldAt === null && list.length > 0 && !list.includes(a.endpoint)) {
      // The peer no longer lists the address we use: it restarted or its NAT gave it a new port.
    // (An empty list only means its candidates are not known yet.)
      // Waiting for three lost keepalives would cost WireGuard ~15 s; go probing at once.
      this.cands.delete(a.endpoint);
      this.lose(`the peer moved away from ${a.endpoint}`);
    }
    let added = false;
    const now = this.o.clock.now();
    const toldLive = (c: Cand): boolean => c.toldAt !== null && now - c.toldAt <= this.t.callMeMaybeIntervalMs;
    for (const [ep, c] of this.cands) if (!c.learned && !toldLive(c) && !list.includes(ep) && c !== this.active) this.cands.delete(ep);
    for (const ep of list) {
      const c = this.cands.get(ep);
      if (c) {
        c.learned = false;
        c.toldAt = null;
      } else {
        this.addCand(ep, false);
        added = true;
      }
    }
    if (added && this.started && this.kind !== 'direct') {
      if (this.kind === 'unreachable') this.burstUntil = this.o.clock.now() + this.t.burstMs;
      // New candidates (the peer restarted or moved) need the peer to punch towards us again
      // now, not when the call-me-maybe made for its old ones is 30 s old.
      this.lastCallMeMaybe = -Infinity;
      this.round();
    }
  }

  /**
   * The peer asks us to punch towards these candidates of its. opensGate false: it sent its call
   * while it knew only our old candidates, so its NAT is not open towards us (disco-exchange.ts
   * callOpensGate); its candidates are probed, our gate stays as it is.
   */
  callMeMaybe(list: readonly string[], opensGate = true): void {
    if (this.closed) return;
    const now = this.o.clock.now();
    for (const ep of list) {
      const c = this.cands.get(ep);
      if (!c) this.addCand(ep, false).toldAt = now;
      else if (c.toldAt !== null) c.toldAt = now;
    }
    // While quiet the peer's call proves nothing about our side's stale entries: it calls again.
    if (this.started && now < this.quietUntil) return;
    if (opensGate && (this.o.peerCallOpensGate?.() ?? true)) this.setPeerReady(true);
    if (!this.started) return this.start();
    if (this.kind === 'direct') {
      for (const c of this.cands.values()) if (c !== this.active && c.lastPongAt === null) this.sendPing(c, false);
      return;
    }
    if (this.kind === 'unreachable' && this.afterLoss && this.o.relayed?.() === true) {
      // A re-punch after a loss gets a window of its own, so that its failure goes quiet again.
      this.kind = 'connecting';
      this.fullSent = false;
      this.windowEnd = now + this.t.probeWindowMs;
    } else if (this.kind === 'unreachable') this.burstUntil = now + this.t.burstMs;
    else this.windowEnd = Math.max(this.windowEnd, now + this.t.probeWindowMs);
    this.round();
  }

  /** An authenticated ping from the peer arrived from `from`: it punched, and `from` works one way. */
  onPing(from: string): void {
    if (this.closed) return;
    let c = this.cands.get(from);
    if (!c) c = this.addCand(from, true);
    if (this.started && this.o.clock.now() < this.quietUntil) {
      // Its ping got through our router, so an answer on that very flow is safe; the rest stay quiet.
      if (c.lastPongAt === null) this.sendPing(c, false);
      return;
    }
    const wasReady = this.peerReady;
    this.setPeerReady(true);
    if (!this.started) return this.start();
    if (this.kind === 'direct') {
      if (c === this.active) this.peerKeptAlive();
      return;
    }
    if (!wasReady) this.round();
    else if (c.lastPongAt === null) this.sendPing(c, false);
  }

  /** A pong: returns its RTT when it answers one of our pings from the address pinged, else null. */
  onPong(from: string, txid: Buffer): number | null {
    if (this.closed) return null;
    const key = txid.toString('hex');
    const p = this.pending.get(key);
    if (!p || p.endpoint !== from) return null;
    this.pending.delete(key);
    const c = this.cands.get(from);
    const now = this.o.clock.now();
    if (!c || now - p.sentAt > this.t.pingTtlMs) return null;
    const rtt = Math.max(0, this.mono() - p.sentMono);
    c.rttMs = rtt;
    if (c === this.active || this.kind !== 'direct') this.probes.answered(rtt);
    c.lastPongAt = now;
    this.setPeerReady(true);
    if (this.kind !== 'direct' || !this.active) {
      this.setDirect(c);
      return rtt;
    }
    if (c === this.active) {
      this.missed = 0;
      this.keepaliveTxid = null;
      this.suspectLater = false;
      if (this.reprobing) {
        this.reprobing = false;
        this.reprobeAnsweredAt = now;
        this.schedule(this.keepaliveMs());
      }
      this.emit();
      // Not "or while re-probing": suspect() also fires on false alarms (one-way traffic, a peer
      // that went direct later than us), and taking whichever candidate answers first would move
      // a healthy path (endpoint + nft change). If the re-probe goes unanswered, lose() returns to
      // connecting, where any candidate's pong is accepted.
    } else if (this.active.rttMs === null || isClearlyBetter({ rttMs: rtt, lan: c.lan }, { rttMs: this.active.rttMs, lan: this.active.lan })) {
      this.setDirect(c);
    }
    return rtt;
  }

  /** A ping outside the schedule (the user's ping command); the pong comes back through onPong. */
  pingNow(endpoint: string): Buffer | null {
    const c = this.cands.get(endpoint);
    if (!c || this.closed) return null;
    return this.sendPing(c, false);
  }

  /**
   * Traffic sent on the active path got no answer (WireGuard's counters, traffic-watch.ts): the
   * path is suspect at once. Ping it and every other candidate now; unless the active one answers
   * within reprobeMs (twice) it is lost — instead of three missed keepalives, ~14 s. The state says
   * `suspect` meanwhile, and the caller moves the traffic to the relay as soon as the relay
   * answers: a dead path costs the time to notice it, not the re-probes on top.
   */
  suspect(confirmFirst = false): void {
    if (this.closed || this.kind !== 'direct' || !this.active) return;
    if (this.reprobing) {
      // Stronger evidence while a quiet re-probe runs: suspect now.
      if (!confirmFirst && this.reprobeQuiet) {
        this.reprobeQuiet = false;
        this.emit();
      }
      return;
    }
    const now = this.o.clock.now();
    // The path answered within a re-probe window: it works, whatever the caller inferred.
    if (this.active.lastPongAt !== null && now - this.active.lastPongAt < this.reprobeWait()) return;
    // Rate limit: a false alarm that repeats (one-way traffic, relayed packets of a peer still
    // switching to direct) would otherwise re-probe all candidates every time. A real failure in
    // this interval is still caught: the re-probe moves to the next keepalive.
    if (now - this.reprobeAnsweredAt < this.t.keepaliveIntervalMs) {
      this.suspectLater = true;
      return;
    }
    this.beginReprobe(confirmFirst);
  }

  /**
   * While somebody watches the metrics: ping the active direct path every `ms` (0 stops) so the
   * RTT shown has a fresh sample each second instead of one per keepalive (5 s). These pings
   * only measure: an unanswered one counts as lost for the metrics but does not drive `lose()`,
   * so watching never changes how paths are kept.
   */
  setMetricProbing(ms: number): void {
    if (this.closed || ms === this.metricMs) return;
    this.metricMs = ms;
    this.cancelMetric();
    this.metricTxid = null;
    if (ms > 0) this.cancelMetric = this.o.clock.setTimeout(() => this.metricRound(), ms);
  }

  private metricRound(): void {
    if (this.closed || this.metricMs <= 0) return;
    if (this.kind === 'direct' && this.active) {
      if (this.metricTxid !== null && this.pending.has(this.metricTxid)) this.probes.lost();
      this.metricTxid = this.sendPing(this.active, false).toString('hex');
      this.probes.sent();
    } else {
      this.metricTxid = null;
    }
    this.cancelMetric = this.o.clock.setTimeout(() => this.metricRound(), this.metricMs);
  }

  setFastPath(on: boolean): void {
    this.fastPath = on;
    this.emit();
  }

  close(): void {
    this.closed = true;
    this.cancelTimer();
    this.cancelMetric();
    this.pending.clear();
  }

  // --- internals -------------------------------------------------------------------------------

  private addCand(endpoint: string, learned: boolean): Cand {
    if (learned) {
      const ls = [...this.cands.values()].filter((c) => c.learned && c !== this.active);
      if (ls.length >= this.t.maxLearned && ls[0]) this.cands.delete(ls[0].endpoint);
    }
    const c: Cand = { endpoint, lan: this.o.isLan(endpoint), learned, toldAt: null, rttMs: null, lastPongAt: null };
    this.cands.set(endpoint, c);
    return c;
  }

  private beginWindow(): void {
    this.windowEnd = this.o.clock.now() + this.t.probeWindowMs;
    this.fullSent = false;
    this.reason = this.probingReason();
    this.emit();
  }

  private probingReason(): string {
    const lost = this.lostWhy ? `${this.lostWhy}; ` : this.lostFrom ? `the direct path via ${this.lostFrom} stopped answering (${this.t.missedPongsForLoss} pings lost); ` : '';
    if (this.cands.size === 0) return `${lost}waiting for the peer's address candidates`;
    if (this.o.gate && !this.peerReady && [...this.cands.values()].some((c) => !c.lan)) return `${lost}opened our NAT and asked the peer to punch back (call-me-maybe); waiting for it`;
    return `${lost}probing ${this.cands.size} candidate${this.cands.size === 1 ? '' : 's'}`;
  }

  private sendPing(c: Cand, lowTtl: boolean): Buffer {
    const txid = this.newTxid();
    this.pending.set(txid.toString('hex'), { endpoint: c.endpoint, sentAt: this.o.clock.now(), sentMono: this.mono() });
    if (!lowTtl && !c.lan) this.fullSent = true;
    this.o.io.ping(c.endpoint, txid, lowTtl);
    return txid;
  }

  private prune(now: number): void {
    for (const [k, p] of this.pending) if (now - p.sentAt > this.t.pingTtlMs) this.pending.delete(k);
  }

  /**
   * Two unanswered re-probes lose the path, not one: a single late pong (the machine stalled for
   * a second) must not drop a healthy direct path. `missed` counts towards missedPongsForLoss as
   * for keepalives, started so that two more misses reach it.
   */
  private beginReprobe(quiet = false): void {
    if (!this.active) return;
    this.reprobing = true;
    this.reprobeQuiet = quiet;
    this.suspectLater = false;
    this.missed = Math.max(this.missed, this.t.missedPongsForLoss - 2, 0);
    this.keepaliveTxid = this.sendPing(this.active, false).toString('hex');
    this.lastKeepaliveAt = this.o.clock.now();
    this.rested = false;
    for (const c of this.cands.values()) if (c !== this.active) this.sendPing(c, false);
    this.schedule(this.reprobeWait());
    this.emit();
  }

  /** A loaded machine answers slowly: never less than three of the path's round trips. */
  private reprobeWait(): number {
    return Math.max(this.t.reprobeMs, 3 * (this.active?.rttMs ?? 0));
  }

  private schedule(ms: number): void {
    this.cancelTimer();
    this.nextRoundAt = this.o.clock.now() + ms;
    this.cancelTimer = this.o.clock.setTimeout(() => this.round(), ms);
  }

  /**
   * Following: the peer's ping on the active path proves it works as its keepalive's pong would,
   * so ours is not needed. Our next round moves to when the peer's next ping is overdue (or our
   * own RTT ping is due); a round that finds the pings stopped keeps the path alive itself.
   */
  private peerKeptAlive(): void {
    if (this.leads()) return;
    const now = this.o.clock.now();
    this.peerPingAt = now;
    // A re-probe wants our own pong (traffic went unanswered); a re-probe due must not wait.
    if (this.reprobing || this.suspectLater) return;
    this.missed = 0;
    this.keepaliveTxid = null;
    this.rested = true;
    this.schedule(this.followerRest(now) ?? 0);
  }

  private leads(): boolean {
    return this.o.leads?.() ?? true;
  }

  /** The leader's pings are expected at the slower of its two paces (see the top). */
  private followWait(): number {
    const pace = this.o.idle ? Math.max(this.t.keepaliveIntervalMs, this.t.idleKeepaliveIntervalMs) : this.t.keepaliveIntervalMs;
    return pace + this.t.followSlackMs;
  }

  private keepaliveMs(): number {
    return this.o.idle?.() === true ? this.t.idleKeepaliveIntervalMs : this.t.keepaliveIntervalMs;
  }

  private rescanMs(): number {
    return this.o.idle?.() === true ? this.t.idleRescanIntervalMs : this.t.rescanIntervalMs;
  }

  /**
   * Data started on an idle pair: the next keepalive (and a rescan now overdue) comes at the
   * busy pace, not at the end of the idle interval already scheduled.
   */
  wake(): void {
    if (this.closed) return;
    const now = this.o.clock.now();
    if (this.kind === 'unreachable') {
      if (this.nextRoundAt > now + this.t.upgradeIntervalMs) this.schedule(this.t.upgradeIntervalMs);
      return;
    }
    if (this.kind !== 'direct' || !this.active) return;
    const due = Math.max(0, this.lastKeepaliveAt + this.t.keepaliveIntervalMs - now);
    if (this.nextRoundAt > now + due) this.schedule(due);
  }

  /**
   * Idle pace: a round soon after each keepalive checks for its pong (a dead idle path is then
   * lost ~21 s after its last pong, not three 15 s intervals); answered, it rests until the next.
   */
  private idleRests(now: number): boolean {
    return this.o.idle?.() === true && this.keepaliveTxid === null && !this.reprobing && !this.suspectLater && this.missed === 0
      && now - this.lastKeepaliveAt < this.keepaliveMs() && this.followerRest(now) === null;
  }

  /** Following and the peer's pings arrive: how long this round sends nothing to the active path (null: it sends). */
  private followerRest(now: number): number | null {
    if (this.leads() || this.reprobing || this.suspectLater || this.missed !== 0) return null;
    return followerRestMs(now, this.peerPingAt, this.followWait(), this.lastKeepaliveAt, this.rescanMs());
  }

  private round(): void {
    if (this.closed) return;
    this.cancelTimer();
    this.nextRoundAt = Infinity;
    const now = this.o.clock.now();
    this.prune(now);
    if (this.kind === 'direct' && this.active) {
      if (this.idleRests(now)) return this.schedule(this.lastKeepaliveAt + this.keepaliveMs() - now);
      const rest = this.followerRest(now);
      if (rest !== null) {
        this.rested = true;
        this.keepaliveTxid = null;
        return this.schedule(rest);
      }
      if (this.keepaliveTxid !== null && this.pending.has(this.keepaliveTxid)) {
        this.missed++;
        this.probes.lost();
        // A quiet re-probe went unanswered: now the path is suspect (the caller may use the relay).
        if (this.reprobing && this.reprobeQuiet) {
          this.reprobeQuiet = false;
          this.emit();
        }
      }
      if (this.missed >= this.t.missedPongsForLoss) return this.lose(this.reprobing ? `the direct path via ${this.active.endpoint} stopped answering (traffic and two re-probes went unanswered)` : undefined);
      if (this.suspectLater && !this.reprobing) return this.beginReprobe();
      // Following, and the peer's pings stopped: our keepalives take over at the suspect pace
      // (the peer's were already one interval + slack late), so loss comes as soon as it did.
      const takeOver = this.rested && !this.reprobing && this.missed === 0 && now - this.peerPingAt >= this.followWait();
      this.rested = false;
      this.keepaliveTxid = this.sendPing(this.active, false).toString('hex');
      this.lastKeepaliveAt = now;
      this.probes.sent();
      if (now - this.lastRescan >= this.rescanMs()) {
        this.lastRescan = now;
        for (const c of this.cands.values()) if (c !== this.active) this.sendPing(c, false);
      }
      const pace = this.keepaliveMs();
      return this.schedule(this.reprobing ? this.reprobeWait() : this.missed > 0 || takeOver || pace > this.t.keepaliveIntervalMs ? this.t.suspectIntervalMs : pace);
    }
    if (this.quietUntil > 0 && now >= this.quietUntil) this.endQuiet(now);
    const quiet = now < this.quietUntil;
    if (quiet && !this.quietRechecked && now >= this.quietUntil - this.t.quietRecheckMs) {
      this.quietRechecked = true;
      this.o.io.recheckNat?.();
    }
    const gated = this.o.gate && !this.peerReady;
    const hold = quiet || (gated && this.o.behindNat?.() === false);
    for (const c of this.cands.values()) {
      if (hold && !c.lan) continue;
      this.sendPing(c, gated && !c.lan);
    }
    // "Call me" tells the peer our NAT is open to it. Behind a NAT that is only true once we have
    // primed one of its internet candidates; said earlier (its candidates not known yet), the
    // peer's full-TTL reply reaches our router first and our mapping clashes (lab: 3 players).
    const primed = !quiet && (!gated || hold || [...this.cands.values()].some((c) => !c.lan));
    const idleUpgrade = this.kind === 'unreachable' && this.o.idle?.() === true;
    if (primed && now - this.lastCallMeMaybe >= (idleUpgrade ? this.t.idleCallMeMaybeIntervalMs : this.t.callMeMaybeIntervalMs)) {
      this.lastCallMeMaybe = now;
      this.o.io.callMeMaybe();
    }
    if (this.kind === 'connecting' && now >= this.windowEnd) {
      this.kind = 'unreachable';
      this.reason = unreachableReason({
        local: this.o.localNat(),
        peer: this.o.peerNat(),
        candidates: this.cands.size,
        peerHeard: this.peerReady,
        windowMs: this.t.probeWindowMs,
      });
      if (this.o.gate && (this.quietOnFail || (this.afterLoss && this.fullSent)) && this.o.relayed?.() === true) this.beginQuiet(now);
    } else if (this.kind === 'connecting') {
      this.reason = this.probingReason();
    }
    this.emit();
    const fast = this.kind === 'connecting' || now < this.burstUntil;
    const upgrade = this.kind === 'unreachable' && this.o.idle?.() === true ? this.t.idleUpgradeIntervalMs : this.t.upgradeIntervalMs;
    let next = fast ? (this.o.waiting?.() === true ? this.t.waitingProbeIntervalMs : this.t.probeIntervalMs) : upgrade;
    if (this.quietUntil > now) {
      next = Math.min(next, this.quietUntil - now);
      const recheckAt = this.quietUntil - this.t.quietRecheckMs;
      if (!this.quietRechecked && recheckAt > now) next = Math.min(next, recheckAt - now);
    }
    this.schedule(next);
  }

  /** The re-punch failed: let every conntrack entry of this pair's flows expire (see the top). */
  private beginQuiet(now: number): void {
    this.quietUntil = now + this.t.quietMs;
    this.quietRechecked = false;
    this.quietOnFail = false;
    this.setPeerReady(false);
    this.reason = `${this.reason}; no direct probes for ${Math.round(this.t.quietMs / 1000)} s so that stale NAT mappings expire, then punching again`;
  }

  /** Prime again and ask the peer to punch: a fresh window, gated as at the start. */
  private endQuiet(now: number): void {
    this.quietUntil = 0;
    this.setPeerReady(false);
    this.lastCallMeMaybe = -Infinity;
    this.kind = 'connecting';
    this.windowEnd = now + this.t.probeWindowMs;
    this.fullSent = false;
  }

  private setDirect(c: Cand): void {
    const first = this.kind !== 'direct';
    if (c !== this.active) this.peerPingAt = -Infinity;
    this.kind = 'direct';
    this.active = c;
    this.lostFrom = null;
    this.afterLoss = false;
    this.quietOnFail = false;
    this.quietUntil = 0;
    this.missed = 0;
    this.keepaliveTxid = null;
    this.rested = false;
    // Reached by a pong to our ping (an RTT sample), or by the user's ping command.
    this.lastKeepaliveAt = this.o.clock.now();
    const wasReprobing = this.reprobing;
    this.reprobing = false;
    this.suspectLater = false;
    this.reprobeAnsweredAt = -Infinity;
    this.reason = `direct via ${c.endpoint} (${c.lan ? 'LAN' : 'internet'})`;
    this.emit();
    if (first || wasReprobing) {
      if (first) this.lastRescan = this.o.clock.now();
      this.schedule(this.keepaliveMs());
    }
  }

  private lose(why?: string): void {
    this.lostFrom = this.active?.endpoint ?? '?';
    this.lostWhy = why ?? null;
    this.kind = 'connecting';
    this.active = null;
    this.missed = 0;
    this.keepaliveTxid = null;
    this.reprobing = false;
    this.suspectLater = false;
    this.rested = false;
    // Mappings may have expired on either side: open ours again before pinging at full TTL.
    this.setPeerReady(false);
    this.lastCallMeMaybe = -Infinity;
    this.afterLoss = true;
    this.quietOnFail = true;
    this.fullSent = false;
    this.windowEnd = this.o.clock.now() + this.t.probeWindowMs;
    this.round();
  }

  private emit(): void {
    const s = this.state();
    const l = this.last;
    if (l && l.kind === s.kind && l.endpoint === s.endpoint && l.reason === s.reason && l.fastPath === s.fastPath && l.suspect === s.suspect && !rttMoved(l.rttMs, s.rttMs)) return;
    this.last = s;
    this.o.io.state(s);
  }
}

/** RTT changes worth telling anyone about: >25 % and >1 ms, or appearing/disappearing. */
function rttMoved(a: number | null, b: number | null): boolean {
  if (a === null || b === null) return a !== b;
  return Math.abs(a - b) > 1 && Math.abs(a - b) > 0.25 * Math.max(a, b);
}
