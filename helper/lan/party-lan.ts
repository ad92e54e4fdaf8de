// The LAN relay as the helper runs it: one LanRelay while we are in a party with a virtual IP and
// broadcast_enabled is on, following membership (peers), settings (ports, on/off) and the tunnel
// (virtual IP, interface). Everything here is serialised and never throws into the party engine:
// a failure is logged with what to do, reported in LanStats.problem and retried later.

import { execFile } from 'node:child_process';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { LanStats } from '../gen/lanrage/v1/network.js';
import { removeLanTable, type LanRelayIo } from './linux.js';
import { DEFAULT_LAN_TABLE } from './nft.js';
import { localAddressSet } from './mdns-rewrite.js';
import { DEFAULT_GROUPS, DEFAULT_LAN_RELAY_PORT, LanRelay, MAX_GROUPS, MAX_PORTS, zeroCounters, type LanCounters, type LanLimits } from './relay.js';

/**
 * Broadcast ports of LAN server browsers we know for certain, carried without any setting until
 * game profiles exist. Multicast discovery (Minecraft 224.0.2.60:4445, mDNS, SSDP) is in
 * DEFAULT_GROUPS. Each game broadcasts its discovery query to this port on 255.255.255.255.
 */
export const WELL_KNOWN_LAN_PORTS: ReadonlyArray<{ port: number; game: string }> = [
  { port: 27015, game: 'Valve GoldSrc/Source games (Half-Life, Counter-Strike 1.6/Source, TF2): LAN server browser' },
  { port: 27960, game: 'Quake III Arena and ioquake3 games: LAN server list' },
  { port: 6112, game: 'Warcraft III: LAN game list' },
  { port: 3979, game: 'OpenTTD: LAN server search' },
  { port: 8303, game: 'Teeworlds / DDNet: LAN server browser' },
];

/**
 * Stats are published at most once per interval, and only when they changed: a change (a datagram,
 * a start, stop or problem) arms one timer, so a party with no LAN traffic runs no timer at all.
 */
export const LAN_STATS_INTERVAL_MS = 1000;
/** A relay that failed to start is tried again after this (or at the next change). */
export const LAN_RETRY_MS = 30_000;

export interface LanSelf {
  virtualIp: string;
  /** The WireGuard interface: the relay port accepts envelopes only from it. */
  tunnelInterface: string;
}

export interface LanWanted {
  self: LanSelf;
  ports: number[];
  groups: string[];
}

export type LanAction = 'none' | 'start' | 'stop' | 'restart' | 'retarget';

const sameList = <T>(a: readonly T[], b: readonly T[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** The relay's targets: the built-in game ports plus the user's, without the relay's own port. */
export function lanPorts(settingsPorts: readonly number[], relayPort: number = DEFAULT_LAN_RELAY_PORT): number[] {
  const all = new Set<number>([...WELL_KNOWN_LAN_PORTS.map((p) => p.port), ...settingsPorts]);
  all.delete(relayPort);
  return [...all].sort((a, b) => a - b);
}

/** Ports and groups the party's games want carried (servers/party-games.ts), beyond the built-in ones. */
export interface PartyTargets {
  ports: readonly number[];
  groups: readonly string[];
  carried: ReadonlyArray<{ target: string; why: string }>;
}

/** What the relay should be: undefined = not running (not in a party, or switched off). */
export function wantedLan(self: LanSelf | null, enabled: boolean, settingsPorts: readonly number[], relayPort: number = DEFAULT_LAN_RELAY_PORT, party?: Pick<PartyTargets, 'ports' | 'groups'>): LanWanted | undefined {
  if (!self || !enabled) return undefined;
  const ports = lanPorts([...settingsPorts, ...(party?.ports ?? [])], relayPort).slice(0, MAX_PORTS);
  const groups = [...new Set([...DEFAULT_GROUPS, ...(party?.groups ?? [])])].slice(0, MAX_GROUPS);
  return { self, ports, groups };
}

/**
 * The one decision: from what runs to what is wanted. A new virtual IP or interface needs a new
 * relay (its socket is bound to the address); new ports or groups only new capture rules.
 */
export function planLan(running: LanWanted | undefined, wanted: LanWanted | undefined): LanAction {
  if (!wanted) return running ? 'stop' : 'none';
  if (!running) return 'start';
  if (running.self.virtualIp !== wanted.self.virtualIp || running.self.tunnelInterface !== wanted.self.tunnelInterface) return 'restart';
  if (!sameList(running.ports, wanted.ports) || !sameList(running.groups, wanted.groups)) return 'retarget';
  return 'none';
}

const ZERO: LanCounters = zeroCounters();

function addCounters(a: LanCounters, b: LanCounters): LanCounters {
  const out = { ...a };
  for (const k of Object.keys(out) as Array<keyof LanCounters>) out[k] += b[k];
  return out;
}

/**
 * Removes the table a helper killed with -9 left behind (its rewrite rules would still change
 * the source of local datagrams from its old injector ports). Looks first, so that a helper that
 * never ran the relay does not write to the host's nftables; no nft (not Linux) = nothing to do.
 */
export function removeStaleLanTable(table: string = DEFAULT_LAN_TABLE): Promise<boolean> {
  return new Promise((resolve, reject) => {
    execFile('nft', ['list', 'table', 'ip', table], { timeout: 10_000 }, (err) => {
      if (err) return resolve(false);
      removeLanTable(table).then(() => resolve(true), reject);
    });
  });
}

export interface PartyLanOptions {
  log: Logger;
  /** The current settings (read at every change). */
  settings(): { broadcastEnabled: boolean; broadcastPorts: readonly number[] };
  /** Called with new stats when they changed, at most once per LAN_STATS_INTERVAL_MS. */
  publish(stats: LanStats): void;
  relayPort?: number;
  clock?: Clock;
  limits?: Partial<LanLimits>;
  /** The party's games (announcements): carried and accepted here too. Call targetsChanged() when they change. */
  partyTargets?: () => PartyTargets;
  /** mDNS answers we carry get this host's addresses replaced by our virtual IP (mdns-rewrite.ts); default on. */
  rewriteMdns?: boolean;
  /** Tests: the relay's system side (default: nftables on Linux). */
  io?: () => LanRelayIo;
  /** Tests: how a stale table of a killed helper is removed (default: removeStaleLanTable). */
  removeStale?: () => Promise<boolean>;
}

export class PartyLan {
  private readonly log: Logger;
  private readonly relayPort: number;
  private relay: LanRelay | undefined;
  private running: LanWanted | undefined;
  private self: LanSelf | null = null;
  private peerIps: string[] = [];
  /** Counters of relays that ran before the current one. */
  private past: LanCounters = { ...ZERO };
  private problem = '';
  private chain: Promise<void> = Promise.resolve();
  private publishTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private lastPublished = '';
  private closed = false;

  constructor(private readonly o: PartyLanOptions) {
    this.log = o.log.child({ part: 'lan' });
    this.relayPort = o.relayPort ?? DEFAULT_LAN_RELAY_PORT;
  }

  /** At helper start: a helper killed with -9 leaves its nft rules (copies to dead capture ports). */
  async start(): Promise<void> {
    try {
      if (await (this.o.removeStale ?? (() => removeStaleLanTable()))()) this.log.info('removed the LAN relay table a previous helper left behind');
    } catch (err) {
      this.log.warn('could not remove a stale LAN relay table; LAN discovery may not work until `nft delete table ip ${DEFAULT_LAN_TABLE}` is run as root', { err: String(err) });
    }
    this.lastPublished = JSON.stringify(this.stats());
  }

  /** The party engine's view: our tunnel (null when not in a party) and the other members' virtual IPs. */
  setParty(self: LanSelf | null, peers: readonly string[]): Promise<void> {
    this.self = self;
    this.peerIps = [...peers];
    return this.reconcile();
  }

  /** The party's games changed what they want carried. */
  targetsChanged(): Promise<void> {
    return this.reconcile();
  }

  /** Settings changed (broadcast_enabled, broadcast_ports): takes effect at once. */
  settingsChanged(): Promise<void> {
    if (this.o.settings().broadcastPorts.includes(this.relayPort)) {
      this.log.warn(`broadcast port ${this.relayPort} is the LAN relay's own port and is not carried: remove it from broadcast_ports`);
    }
    return this.reconcile();
  }

  stats(): LanStats {
    const c = addCounters(this.past, this.relay?.counters() ?? ZERO);
    const w = this.running;
    return {
      enabled: this.relay !== undefined,
      ports: w?.ports ?? [],
      groups: w?.groups ?? [],
      captured: c.captured,
      forwarded: c.forwarded,
      received: c.received,
      injected: c.injected,
      droppedDuplicate: c.droppedDuplicate,
      droppedRateLimited: c.droppedRateLimited,
      droppedInvalid: c.droppedInvalid,
      droppedLoop: c.droppedLoop,
      droppedPolicy: c.droppedPolicy,
      droppedNoListener: c.droppedNoListener,
      errors: c.errors,
      problem: this.problem,
      carried: w ? [...(this.o.partyTargets?.().carried ?? [])] : [],
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.publishTimer);
    clearTimeout(this.retryTimer);
    const run = this.chain.then(() => this.stopRelay());
    this.chain = run.catch(() => undefined);
    await this.chain;
  }

  /** Serialised: one change at a time, always towards the newest wish. Never rejects. */
  private reconcile(): Promise<void> {
    const run = this.chain.then(() => this.step());
    this.chain = run
      .catch((err: unknown) => this.log.error('LAN relay: unexpected failure', { err: String(err) }))
      .finally(() => this.changed());
    return this.chain;
  }

  private async step(): Promise<void> {
    if (this.closed) return;
    const s = this.o.settings();
    const wanted = wantedLan(this.self, s.broadcastEnabled, s.broadcastPorts, this.relayPort, this.o.partyTargets?.());
    if (!wanted) this.problem = '';
    const action = planLan(this.running, wanted);
    if (action === 'none') return;
    if (action === 'stop' || action === 'restart') await this.stopRelay();
    if (!wanted) {
      this.log.info('LAN relay stopped', { inParty: this.self !== null, broadcastEnabled: s.broadcastEnabled });
      return;
    }
    if (action === 'retarget' && this.relay) {
      try {
        await this.relay.setPorts(wanted.ports, wanted.groups);
        this.running = wanted;
        this.log.info('LAN relay carries new ports', { ports: wanted.ports });
      } catch (err) {
        this.fail(`LAN discovery stopped: could not change the captured ports (${String(err)}); see the helper log`);
        await this.stopRelay();
      }
      return;
    }
    await this.startRelay(wanted);
  }

  private async startRelay(w: LanWanted): Promise<void> {
    clearTimeout(this.retryTimer);
    if (!this.o.io && process.platform !== 'linux') {
      // Capture and injection exist for Linux only (README: the Windows and macOS plan).
      if (!this.problem) this.log.warn('LAN discovery is not available on this OS yet; games will not find each other by broadcast');
      this.problem = `LAN discovery is not available on ${process.platform} yet`;
      return;
    }
    const relay = new LanRelay({
      selfVirtualIp: w.self.virtualIp,
      peers: () => this.peerIps,
      ports: w.ports,
      groups: w.groups,
      relayPort: this.relayPort,
      log: this.o.log,
      tunnelInterface: w.self.tunnelInterface,
      onCounters: () => this.changed(),
      ...(this.o.rewriteMdns !== false ? { mdnsLocal: localAddressSet() } : {}),
      ...(this.o.clock ? { clock: this.o.clock } : {}),
      ...(this.o.limits ? { limits: this.o.limits } : {}),
      ...(this.o.io ? { io: this.o.io() } : {}),
    });
    try {
      await relay.start();
    } catch (err) {
      const msg = String(err);
      const hint = /EADDRINUSE/.test(msg)
        ? `UDP port ${this.relayPort} on ${w.self.virtualIp} is taken by another program: stop it`
        : /EPERM|EACCES|Operation not permitted|ENOENT.*nft|spawn nft/i.test(msg)
          ? 'capturing broadcasts needs root and nftables (the `nft` program): run the helper as root with nftables installed'
          : 'see the helper log';
      this.fail(`LAN discovery could not start: ${hint} (${msg})`);
      return;
    }
    this.relay = relay;
    this.running = w;
    this.problem = '';
  }

  private async stopRelay(): Promise<void> {
    const r = this.relay;
    this.relay = undefined;
    this.running = undefined;
    if (!r) return;
    this.past = addCounters(this.past, r.counters());
    await r.close().catch((err: unknown) => this.log.warn('LAN relay did not close cleanly', { err: String(err) }));
  }

  private fail(problem: string): void {
    // The same failure every 30 s is logged once.
    if (problem !== this.problem) this.log.error(problem, { retryInMs: LAN_RETRY_MS });
    else this.log.debug(problem, { retryInMs: LAN_RETRY_MS });
    this.problem = problem;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.reconcile(), LAN_RETRY_MS);
    this.retryTimer.unref();
  }

  /** Something may have changed: publish within LAN_STATS_INTERVAL_MS (one timer for a burst). */
  private changed(): void {
    if (this.publishTimer !== undefined || this.closed) return;
    this.publishTimer = setTimeout(() => {
      this.publishTimer = undefined;
      this.publishIfChanged();
    }, LAN_STATS_INTERVAL_MS);
    this.publishTimer.unref();
  }

  private publishIfChanged(): void {
    const s = this.stats();
    const key = JSON.stringify(s);
    if (key === this.lastPublished) return;
    this.lastPublished = key;
    this.o.publish(s);
  }
}
