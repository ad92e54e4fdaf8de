// When the NAT report is (re)made: once the helper knows a control server (its stun_servers
// arrive), again when that list changes or a reconnect brings a snapshot (the network may have
// changed; at most once a minute), when this machine's addresses change (netmon.ts; at most once
// every 5 s), every 5 minutes while a server is known, and on demand.
// Concurrent requests share one run. Each finished run is handed to onReport (the live stream).

import type { Logger } from '../core/log.js';
import { systemClock, type Clock } from '../core/clock.js';
import { ApiError, Status } from '../core/api-error.js';
import type { NetcheckResult } from './netcheck-run.js';
import type { PortMapProtocol } from './portmapper/portmapper.js';
import type { RelayLatency } from './relayconn.js';

export const NETCHECK_INTERVAL_MS = 5 * 60_000;
/** A snapshot with the same STUN servers re-runs only if the last run is older than this. */
export const NETCHECK_SNAPSHOT_MIN_AGE_MS = 60_000;
/** A network change re-runs at most this often (a flapping interface must not flood the server). */
export const NETCHECK_CHANGE_MIN_GAP_MS = 5_000;

export interface NetcheckerOptions {
  /** The control server's stun_servers; empty while none is known. */
  stunServers(): string[];
  run(stunServers: string[]): Promise<NetcheckResult>;
  onReport(r: NetcheckResult): void;
  /** Which port-mapping protocols the gateway answers: asked at the same time as the STUN tests. */
  portMapping?: () => Promise<PortMapProtocol[]>;
  /** The offered relays' latencies, measured at the same time (empty while in no party). */
  relays?: () => Promise<RelayLatency[]>;
  log: Logger;
  intervalMs?: number;
  clock?: Clock;
}

export class Netchecker {
  private last: NetcheckResult | null = null;
  private lastServers = '';
  private lastRunAt = -Infinity;
  private running: Promise<NetcheckResult> | null = null;
  private cancelTimer: () => void = () => {};
  private cancelChange: () => void = () => {};
  private closed = false;
  private readonly clock: Clock;

  constructor(private readonly o: NetcheckerOptions) {
    this.clock = o.clock ?? systemClock;
  }

  latest(): NetcheckResult | null {
    return this.last;
  }

  /** Starts the periodic runs (the first comes when a control server is known). */
  start(): void {
    this.schedule();
    this.serversMayHaveChanged();
  }

  /** Call when the control connection brings a snapshot (connect, reconnect). */
  serversMayHaveChanged(): void {
    const servers = this.o.stunServers();
    if (servers.length === 0) return;
    if (servers.join(',') === this.lastServers && this.clock.now() - this.lastRunAt < NETCHECK_SNAPSHOT_MIN_AGE_MS) return;
    this.runNow().catch((err: unknown) => this.o.log.warn('netcheck failed', { err: err instanceof Error ? err.message : String(err) }));
  }

  /** This machine's network changed: run again soon (after the run under way, ≥5 s apart). */
  networkChanged(): void {
    if (this.closed || this.o.stunServers().length === 0) return;
    this.cancelChange();
    const wait = Math.max(0, this.lastRunAt + NETCHECK_CHANGE_MIN_GAP_MS - this.clock.now());
    this.cancelChange = this.clock.setTimeout(() => {
      const again = (): void => {
        this.runNow().catch((err: unknown) => this.o.log.warn('netcheck after a network change failed', { err: err instanceof Error ? err.message : String(err) }));
      };
      // A run under way started before the change: its answer may be stale.
      if (this.running) void this.running.catch(() => undefined).then(again);
      else again();
    }, wait);
  }

  /** Runs now (or joins the run under way) and returns its report. */
  runNow(): Promise<NetcheckResult> {
    if (this.closed) return Promise.reject(new ApiError(Status.UNAVAILABLE, 'the helper is shutting down'));
    if (this.running) return this.running;
    const servers = this.o.stunServers();
    if (servers.length === 0) {
      return Promise.reject(
        new ApiError(Status.FAILED_PRECONDITION, 'no control server yet: the NAT tests use its STUN service, so create or join a party first'),
      );
    }
    this.lastServers = servers.join(',');
    this.lastRunAt = this.clock.now();
    const run = Promise.all([
      this.o.run(servers),
      this.o.portMapping?.().catch(() => []) ?? Promise.resolve(undefined),
      this.o.relays?.().catch(() => []) ?? Promise.resolve(undefined),
    ])
      .then(([stun, portMapping, relays]): NetcheckResult => ({ ...stun, ...(portMapping ? { portMapping } : {}), ...(relays ? { relays } : {}) }))
      .then((r) => {
        if (!this.closed) {
          this.last = r;
          this.o.log.info('netcheck', { udp: r.udp, mapping: r.mapping, filtering: r.filtering, publicAddress: r.publicAddress, portMapping: r.portMapping, relays: r.relays, ms: r.durationMs });
          this.o.onReport(r);
        }
        return r;
      })
      .finally(() => {
        this.running = null;
      });
    this.running = run;
    return run;
  }

  private schedule(): void {
    this.cancelTimer = this.clock.setTimeout(() => {
      if (this.closed) return;
      if (this.o.stunServers().length > 0) {
        this.runNow().catch((err: unknown) => this.o.log.warn('periodic netcheck failed', { err: err instanceof Error ? err.message : String(err) }));
      }
      this.schedule();
    }, this.o.intervalMs ?? NETCHECK_INTERVAL_MS);
  }

  close(): void {
    this.closed = true;
    this.cancelTimer();
    this.cancelChange();
  }
}
