// Birthday probing: a direct path between a NAT that picks a RANDOM public port for every new
// destination ("hard" side) and a NAT that keeps one mapping per socket ("easy" side, e.g.
// port-restricted). Pure: time and randomness are passed in, nothing is sent from here.
//
// The easy side's filter only lets in what it has sent to; the hard side's port towards the easy
// side cannot be predicted. So the hard side opens SPRAY_SOCKETS sockets and sends one priming
// packet (low TTL: it opens the hard NAT and dies before the easy router, STACK-NOTES) from each
// towards the easy side's public address: that makes SPRAY_SOCKETS random public ports that each
// let the easy side in. Then it asks the easy side, in a call-me-maybe through the control plane,
// to probe random ports of its public IP. Each probe is an authenticated disco ping; one landing on
// any of those ports is answered from that socket, the easy side's NAT has sent to that port, and
// both directions work. The hard side then pins that peer's endpoint to the winning socket
// (WireGuard included); the others close.
//
// With n open ports among R possible ones and k probes, P(hit) = 1 − (1 − n/R)^k: 256 ports and
// 2048 probes over Linux's 1024-65535 give 99.97 % (1024 would give 98 %: one failed pair in 50);
// the probes stop at the first hit, after R/n = 252 on average (~1 s at 250/s). Everything is bounded: sockets, probes, rate, attempts per peer, and the easy side
// only probes an IP the peer published.

import { randomInt } from 'node:crypto';
import type { NatMapping } from './stun/client.js';

export const SPRAY_SOCKETS = 256;
export const SPRAY_PROBES = 2048;
export const SPRAY_PER_SECOND = 250;
/** Linux's port range for NAT source ports above 1023 (what `masquerade random` draws from). */
export const SPRAY_PORT_LOW = 1024;
export const SPRAY_PORT_HIGH = 65535;
/** No birthday attempt before cheaper ways had their chance (a cone peer answers in <0.6 s). */
export const START_AFTER_MS = 1500;
/**
 * Attempts per peer and the pauses between them; then the pair stays relayed. Attempts 2 and 3
 * prime one hop further than 1 and 4: a carrier NAT (CGNAT) behind the home router is one hop
 * further out, and TTL-2 packets die before it and open nothing there. (The order puts the
 * likelier retry first: behind a CGNAT the first attempt always fails and sometimes spoils the
 * second, see below; behind a plain NAT the first nearly always succeeds.)
 *
 * Why not both TTLs in one attempt, and why the long pause before the third (measured in the lab,
 * from both routers' conntrack tables): any packet of ours that reaches the peer's router
 * unsolicited leaves a conntrack entry there; the peer's probe to that very port then gets another
 * source port, and Linux masquerade reuses that new port for every later flow of the peer's
 * socket, so no later probe can match our mappings — until those entries expire (30 s without
 * traffic). Mixing TTLs in one attempt failed half the trials that way; and our public socket's
 * ordinary full-TTL pings (needed for cone peers) leave one such port, which the first attempt
 * behind a CGNAT (where nothing else can answer) hits in 3 % of the trials (2048 of 64512 ports).
 */
export const MAX_ATTEMPTS = 4;
export const RETRY_AFTER_MS = 3000;
/** Before the third and fourth attempt: the peer's spoilt mapping has expired by then. */
export const RETRY_LATER_MS = 35_000;

/** The pause after attempt `attempt` (1-based) before the next one. */
export function retryGapMs(attempt: number): number {
  return attempt <= 1 ? RETRY_AFTER_MS : RETRY_LATER_MS;
}

/**
 * The priming TTL of attempt `attempt` (1-based); 0 stays 0 (priming off). `learned`: the TTL of
 * an attempt that succeeded towards another peer. The hops to our NAT are the same for every
 * peer, so that TTL goes first (attempts 1 and 4) and the other one second: behind a CGNAT, later
 * peers then skip the first attempt that always fails there (and may spoil the next, see above).
 */
export function sprayTtl(primingTtl: number, attempt: number, learned: number | null = null): number {
  if (primingTtl <= 0) return 0;
  const usual = primingTtl;
  const further = Math.min(255, primingTtl + 1);
  const first = learned === further ? further : usual;
  const second = first === usual ? further : usual;
  return attempt === 2 || attempt === 3 ? second : first;
}

/**
 * Attempts running at once over all peers, on each side: a player behind a random NAT with
 * several friends would otherwise open 256 sockets per friend, and a probing side would multiply
 * its 250 probes/s. Others wait their turn (both sides: the probing side queues the peer's call).
 */
export const MAX_CONCURRENT = 2;

/**
 * ...but one at a time until an attempt of this helper succeeded. In a join storm (measured:
 * birthday probing was 80-89 % of all path-finding datagrams) parallel attempts that all fail the
 * same way (a wrong priming TTL behind a CGNAT) only multiply the sockets and probes; the first
 * success tells the TTL that works (sprayTtl's `learned`) and that attempts here can succeed.
 */
export function concurrentAttempts(succeeded: boolean): number {
  return succeeded ? MAX_CONCURRENT : 1;
}

/**
 * A probing attempt that sent this many probes without a hit (99 % of hits come earlier,
 * hitProbability) is most likely one that cannot succeed (the peer primed with a TTL that did not
 * open its NAT, behind a CGNAT); it goes on, but no longer holds a slot. Measured in an N=8 join
 * storm: a port-restricted player probing for the CGNAT player's failing first attempt (2048
 * probes, 8 s) made another peer's queued request too late for its sockets, and that pair stayed
 * relayed.
 */
export const SLOT_PROBES = 1150;

/** How long the hard side keeps its sockets open: the probes' duration plus the call's latency. */
export const ATTEMPT_MS = Math.ceil((SPRAY_PROBES / SPRAY_PER_SECOND) * 1000) + 3000;

export type BirthdayRole = 'open-sockets' | 'probe';

export interface NatView {
  mapping: NatMapping;
  /** Port step of a sequential NAT; 0 when random or unknown. */
  portDelta: number;
}

/**
 * What this side does for this peer: open sockets (we are behind a random symmetric NAT, the peer
 * keeps one mapping), probe (the reverse), or nothing (two hard sides, two easy sides — plain
 * punching works or nothing does — or a sequential NAT, which portpredict.ts handles).
 */
export function birthdayRole(local: NatView, peer: NatView | null): BirthdayRole | null {
  if (peer === null) return null;
  const hard = (n: NatView): boolean => n.mapping === 'endpoint-dependent' && n.portDelta === 0;
  const easy = (n: NatView): boolean => n.mapping === 'endpoint-independent';
  if (hard(local) && easy(peer)) return 'open-sockets';
  if (easy(local) && hard(peer)) return 'probe';
  return null;
}

/** The chance that k random probes hit one of n open ports among `range`. */
export function hitProbability(n: number, k: number, range = SPRAY_PORT_HIGH - SPRAY_PORT_LOW + 1): number {
  if (n <= 0 || k <= 0 || range <= 0) return 0;
  return 1 - Math.pow(1 - Math.min(1, n / range), k);
}

/**
 * Probes to random, distinct ports of one IP, paced to `perSecond` and capped at `total`. The
 * ports are drawn as they are due, so a hit early on costs nothing more.
 */
export class Spray {
  private readonly used = new Set<number>();
  private readonly perSecond: number;
  private readonly total: number;
  private readonly started: number;
  private stopped = false;
  sent = 0;

  constructor(
    readonly ip: string,
    now: number,
    o: { total?: number; perSecond?: number; rand?: (lo: number, hiExclusive: number) => number } = {},
  ) {
    this.total = o.total ?? SPRAY_PROBES;
    this.perSecond = o.perSecond ?? SPRAY_PER_SECOND;
    this.rand = o.rand ?? randomInt;
    this.started = now;
  }

  private readonly rand: (lo: number, hiExclusive: number) => number;

  get done(): boolean {
    return this.stopped || this.sent >= this.total;
  }

  stop(): void {
    this.stopped = true;
  }

  /** The endpoints ("ip:port") due by `now`, never more than the rate allows since the start. */
  due(now: number): string[] {
    if (this.done) return [];
    const allowed = Math.min(this.total, Math.floor(((now - this.started) * this.perSecond) / 1000) + 1);
    const out: string[] = [];
    while (this.sent < allowed) {
      out.push(`${this.ip}:${this.nextPort()}`);
      this.sent++;
    }
    return out;
  }

  /** When the next probe is due (ms since the epoch of `now`), or null when done. */
  nextDueAt(): number | null {
    if (this.done) return null;
    return this.started + Math.ceil((this.sent * 1000) / this.perSecond);
  }

  private nextPort(): number {
    const range = SPRAY_PORT_HIGH - SPRAY_PORT_LOW + 1;
    for (;;) {
      const p = this.rand(SPRAY_PORT_LOW, SPRAY_PORT_HIGH + 1);
      if (!this.used.has(p) || this.used.size >= range) {
        this.used.add(p);
        return p;
      }
    }
  }
}

/** Attempts per peer: at most MAX_ATTEMPTS, `gapMs(k)` after attempt k, one at a time. */
export class AttemptLimiter {
  private count = 0;
  private active = false;
  private endedAt = -Infinity;

  constructor(private readonly max = MAX_ATTEMPTS, private readonly gapMs: (attempt: number) => number = retryGapMs) {}

  /** How long after the last attempt's end the next may start. */
  nextGapMs(): number {
    return this.count === 0 ? 0 : this.gapMs(this.count);
  }

  get attempts(): number {
    return this.count;
  }

  get running(): boolean {
    return this.active;
  }

  /** Every attempt was made and none runs: the pair stays relayed. */
  get spent(): boolean {
    return !this.active && this.count >= this.max;
  }

  /** Whether an attempt may start now; starts it when it may. */
  begin(now: number): boolean {
    if (this.active || this.count >= this.max || now - this.endedAt < this.nextGapMs()) return false;
    this.count++;
    this.active = true;
    return true;
  }

  end(now: number): void {
    if (!this.active) return;
    this.active = false;
    this.endedAt = now;
  }
}

/**
 * The IP the easy side may probe: the first of the call's internet candidates whose IP the peer
 * also published through the control server (so a member cannot aim our probes at a stranger).
 */
export function sprayTarget(told: readonly string[], published: readonly string[], isLan: (ep: string) => boolean): string | null {
  const ipOf = (ep: string): string => ep.slice(0, ep.lastIndexOf(':'));
  const publishedIps = new Set(published.filter((c) => !isLan(c)).map(ipOf));
  for (const c of told) {
    if (isLan(c)) continue;
    const ip = ipOf(c);
    if (publishedIps.has(ip)) return ip;
  }
  return null;
}
