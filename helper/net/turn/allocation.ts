// The TURN client's allocation state machine, apart from the requests that drive it (client.ts).
// Pure: no sockets, no timers; the client tells it what happened and asks it what to do.
//
//   idle ──begin──▶ allocating ──allocated──▶ allocated ──lose──▶ recovering ──allocated──▶ allocated
//     ▲                 │ startFailed                                  │
//     └─────────────────┘                       (any state) ──close──▶ closed
//
// A generation number is bumped on every loss and on close: work started for an older allocation
// (a sync, a recovery attempt) compares its generation and drops its results. The allocation held
// before a loss is kept as `previous`: the relay may still have it (a restart of ours, a relay that
// was silent for a while), and resuming it keeps our relayed address; an orphaned one (our 5-tuple
// moved: NAT rebinding) is never resumed, only replaced. Replaced allocations are remembered a
// while (`older`): the relay keeps an orphaned one until its lifetime ends, and a later rebinding
// can hand our flow its old public port back — the relay then answers that 5-tuple for the old
// allocation, which only its own credentials can claim (client.ts).

import type { Auth } from '../stun/codec.js';
import type { Liveness } from './liveness.js';

export type TurnState = 'idle' | 'allocating' | 'allocated' | 'recovering' | 'closed';

export class TurnError extends Error {
  constructor(
    readonly code: number | null,
    message: string,
  ) {
    super(message);
    this.name = 'TurnError';
  }
}

export interface Allocation {
  auth: Auth;
  relayed: string;
  mapped: string | null;
  lifetimeS: number;
  refreshDue: number;
  /** Our 5-tuple moved away from it (NAT rebinding): never resumed, only replaced. */
  orphaned?: boolean;
}

/** Replaced allocations remembered for a claim (each rebinding while relayed adds one). */
const MAX_OLDER = 3;

export class AllocationMachine {
  private st: TurnState = 'idle';
  private cur: Allocation | null = null;
  private prev: Allocation | null = null;
  private old: Allocation[] = [];
  private g = 0;

  get state(): TurnState {
    return this.st;
  }

  get closed(): boolean {
    return this.st === 'closed';
  }

  /** The allocation in use (null unless allocated). */
  get current(): Allocation | null {
    return this.cur;
  }

  /** The allocation before a loss, to resume when the relay still holds it. */
  get previous(): Allocation | null {
    return this.prev;
  }

  /** Allocations replaced since (newest first, at most MAX_OLDER): the relay may still hold them. */
  get older(): readonly Allocation[] {
    return this.old;
  }

  get gen(): number {
    return this.g;
  }

  /** Our relayed "ip:port" while allocated, else null. */
  get relayed(): string | null {
    return this.st === 'allocated' ? (this.cur?.relayed ?? null) : null;
  }

  /** start(): only once, from idle. */
  begin(): void {
    if (this.st !== 'idle') throw new TurnError(null, `start() in state ${this.st}`);
    this.st = 'allocating';
  }

  /** The first allocation failed: start() may be called again (unless closed meanwhile). */
  startFailed(): void {
    if (!this.closed) this.st = 'idle';
  }

  /**
   * `a` is the allocation now (fresh, or `previous` resumed). Returns what it replaced: `resumed`
   * when it is the previous one, and the previous one's relayed address for the event.
   */
  allocated(a: Allocation): { resumed: boolean; previousRelayed: string | null } {
    const prev = this.prev;
    this.old = this.old.filter((x) => x !== a);
    if (prev && prev !== a) this.old = [prev, ...this.old].slice(0, MAX_OLDER);
    this.cur = a;
    this.prev = null;
    this.st = 'allocated';
    return { resumed: prev === a, previousRelayed: prev?.relayed ?? null };
  }

  /**
   * The allocation stopped working. False (nothing changes) unless allocated: a loss is reported
   * once. Otherwise a new generation starts, recovery is due, and the lost allocation becomes
   * `previous` (marked orphaned when not `resumable`).
   */
  lose(resumable: boolean): boolean {
    if (this.st !== 'allocated') return false;
    this.g++;
    this.st = 'recovering';
    this.prev = this.cur;
    if (!resumable && this.prev) this.prev.orphaned = true;
    this.cur = null;
    return true;
  }

  /** Still the recovery that generation `gen` started (no newer loss, not closed, not recovered). */
  recovering(gen: number): boolean {
    return gen === this.g && this.st === 'recovering';
  }

  /** We moved to another 5-tuple: the previous allocation is not ours to resume from there. */
  forgetPrevious(): void {
    this.prev = null;
    this.old = [];
  }

  /** Stops for good; returns the allocation to delete at the relay (null: none, or closed already). */
  close(): Allocation | null {
    if (this.closed) return null;
    this.st = 'closed';
    this.g++;
    const a = this.cur ?? this.prev;
    this.cur = null;
    this.prev = null;
    this.old = [];
    return a;
  }
}

/** Seconds to count on from a granted LIFETIME: never 0 or none (refresh soon rather than lose it). */
export function grantedLifetime(lifetimeS: number | null): number {
  return lifetimeS !== null && lifetimeS > 0 ? lifetimeS : 60;
}

/** Records a granted lifetime on `a`; its refresh falls due at half of it. */
export function setLifetime(a: Allocation, lifetimeS: number | null, now: number): void {
  a.lifetimeS = grantedLifetime(lifetimeS);
  a.refreshDue = now + (a.lifetimeS * 1000) / 2;
}

/** The wait before re-allocation attempt `attempt` (0-based); the schedule's last entry repeats. */
export function backoffWait(backoff: readonly number[], attempt: number): number {
  return backoff[Math.min(attempt, backoff.length - 1)] ?? 30_000;
}

/** When the next sync is due: the keepalive probe or the allocation's refresh, whichever is first. */
export function nextProbeAt(now: number, keepaliveMs: number, a: Allocation): number {
  return Math.min(now + keepaliveMs, a.refreshDue);
}

/** What a sync does after its probe: lose the allocation, or go on (refreshing it when due). */
export type SyncStep = { lose: string; resumable: boolean } | { refresh: boolean };

export function afterProbe(liveness: Liveness, a: Allocation, mappedNow: string | null, now: number): SyncStep {
  if (liveness === 'orphaned') return { lose: `NAT rebinding (${a.mapped ?? '?'} → ${mappedNow ?? '?'})`, resumable: false };
  // A 401 without a mapped address to compare: a relay restart and a NAT rebinding look the same
  // here, and a fresh allocation at once cures both.
  if (liveness === 'gone') return { lose: 'allocation gone (relay restarted, allocation expired, or our NAT mapping changed)', resumable: true };
  return { refresh: now >= a.refreshDue };
}

const MAX_PASSWORD = 512;

export interface TurnCredentials {
  username: string;
  password: string;
  /** When given, the relay's REALM must be this one. */
  realm?: string;
}

/** Credentials from getCredentials(), checked before they go into a request. */
export function checkCredentials(c: unknown): TurnCredentials {
  const o = c as Partial<TurnCredentials> | null;
  if (!o || typeof o.username !== 'string' || typeof o.password !== 'string') throw new TurnError(null, 'getCredentials() returned no username/password');
  const u = Buffer.byteLength(o.username);
  if (u === 0 || u > 513 || /[\x00-\x1f]/.test(o.username)) throw new TurnError(null, 'TURN username must be 1-513 printable bytes');
  if (o.password.length === 0 || o.password.length > MAX_PASSWORD) throw new TurnError(null, 'TURN password must be 1-512 characters');
  if (o.realm !== undefined && (typeof o.realm !== 'string' || o.realm.length > 763)) throw new TurnError(null, 'bad TURN realm');
  return { username: o.username, password: o.password, ...(o.realm !== undefined ? { realm: o.realm } : {}) };
}
