// Our own side of magicsock's socket: this machine's addresses, the candidates we publish, our
// NAT as STUN sees it (mapping, public address) and, behind a sequential symmetric NAT, its port
// step per new flow (portpredict.ts) with the predicted ports of our flows towards a peer. STUN is
// asked every stunRefreshMs through the Binding client on the public socket.

import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { isLoopback, parseEndpoint } from './addr.js';
import { isOnLink, localAddresses, localCandidates, type AddressPolicy, type LocalAddress } from './candidates.js';
import type { Counters } from './magicsock-api.js';
import { detectPortDelta, FlowLog, predictPort, type PortSample } from './portpredict.js';
import type { NatInfo, StunClient } from './stun/client.js';

/** recheck() refreshes at most this often. */
const RECHECK_GAP_MS = 2000;
/** Old public addresses kept published after a STUN move (within the control server's 16). */
export const MAX_HELD = 4;

export interface LocalViewIo {
  clock: Clock;
  log: Logger;
  c: Counters;
  policy: AddressPolicy;
  stun: StunClient;
  /** Given by the control server; no other STUN server is ever contacted. */
  stunServers(): string[];
  bindAddress: string;
  /** Default 60 s; 0: only when localCandidates() is called. */
  stunRefreshMs?: number;
  networkInterfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  /** The public socket's port (0 until bound). */
  port(): number;
  /** Bound and not closed. */
  running(): boolean;
  closed(): boolean;
  natChanged(nat: NatInfo): void;
  /** Our candidates changed: publish them and tell every peer at once. */
  candidatesChanged(cands: string[]): void;
  /** Peers whose direct path to an internet (not LAN) address answers now (not suspect). */
  directPeers(): Iterable<string>;
}

/** A public address STUN no longer reports, kept while these peers' direct paths still use it. */
interface Held {
  addr: string;
  peers: Set<string>;
}

export class LocalView {
  private localAddrs: LocalAddress[] = [];
  /** Every flow our socket opened, numbered as a sequential NAT would allocate ports. */
  private readonly flows = new FlowLog();
  /** Our NAT's port step per new flow (0: not sequential or unknown) and the latest sample. */
  private delta = 0;
  private portRef: PortSample | null = null;
  private cands: string[] = [];
  private nat: NatInfo = { mapping: 'unknown', publicAddress: null };
  /** A router-mapped public address (UPnP / NAT-PMP / PCP): reachable from anywhere, listed first. */
  private mappedCand: string | null = null;
  private refreshing: Promise<string[]> | null = null;
  private cancelRefresh: () => void = () => {};
  private lastRecheck = -Infinity;
  private held: Held[] = [];

  constructor(private readonly io: LocalViewIo) {}

  /** The socket is bound: interface candidates now, STUN's in the first refresh. */
  start(): void {
    this.localAddrs = this.readAddresses();
    this.cands = localCandidates(this.localAddrs, this.io.port(), null, this.io.policy);
  }

  close(): void {
    this.cancelRefresh();
  }

  /** Addresses kept published after a STUN move (see holdMoved). */
  heldAddresses(): string[] {
    return this.held.map((h) => h.addr);
  }

  /**
   * A peer's path changed: a held address goes once none of the paths that were direct when it
   * moved still is (cheap while nothing is held: every path change calls this).
   */
  pathsChanged(): void {
    if (this.held.length === 0) return;
    const direct = new Set(this.io.directPeers());
    for (const h of this.held) for (const id of h.peers) if (!direct.has(id)) h.peers.delete(id);
    const left = this.held.filter((h) => h.peers.size > 0);
    if (left.length === this.held.length) return;
    for (const h of this.held) if (h.peers.size === 0) this.io.log.info('old public address released', { addr: h.addr });
    this.held = left;
    if (this.io.running()) this.publish(this.compose(this.nat.publicAddress));
  }

  get candidates(): readonly string[] {
    return this.cands;
  }

  natInfo(): NatInfo {
    return { ...this.nat };
  }

  get mapping(): NatInfo['mapping'] {
    return this.nat.mapping;
  }

  get publicAddress(): string | null {
    return this.nat.publicAddress;
  }

  /** Our NAT's port step per new destination (sequential symmetric NAT), else 0. */
  portDelta(): number {
    return this.delta;
  }

  /** A datagram left the public socket (in the kernel's order: a NAT's order). */
  noteSend(ip: string, port: number): void {
    // Behind a NAT that keeps one mapping nothing is predicted: the data path pays nothing.
    if (this.nat.mapping !== 'endpoint-independent') this.flows.note(`${ip}:${port}`, this.io.clock.now());
  }

  /** False once STUN shows our public address is one of our own (no NAT); true while unknown. */
  behindNat(): boolean {
    const pub = this.nat.publicAddress;
    if (pub === null) return true;
    const ip = pub.slice(0, pub.lastIndexOf(':'));
    return !this.localAddrs.some((a) => a.ip === ip);
  }

  isLan(endpoint: string): boolean {
    const ep = parseEndpoint(endpoint);
    if (!ep) return false;
    if (isLoopback(ep.ip)) return this.io.policy.allowLoopback;
    return isOnLink(ep.ip, this.localAddrs);
  }

  /** Refreshes interface addresses and STUN; reports candidates / NAT when they change. */
  localCandidates(): Promise<string[]> {
    if (!this.io.running()) return Promise.resolve([...this.cands]);
    this.refreshing ??= this.refresh().finally(() => {
      this.refreshing = null;
      this.scheduleRefresh();
    });
    return this.refreshing;
  }

  /**
   * A path died or went quiet: our NAT may have moved us to a new public port (a rebinding), which
   * the peer must learn before a direct path can come back. Refreshes now unless a refresh
   * started within RECHECK_GAP_MS (one rebinding makes every peer's path quiet at once).
   */
  recheck(): void {
    const now = this.io.clock.now();
    if (now - this.lastRecheck < RECHECK_GAP_MS) return;
    this.lastRecheck = now;
    void this.localCandidates().catch(() => undefined);
  }

  /** Sets (or clears) the port-mapped candidate; peers hear of it at once. */
  setMappedCandidate(addr: string | null): void {
    if (addr === this.mappedCand) return;
    this.mappedCand = addr;
    if (!this.io.running()) return;
    this.publish(this.compose(this.nat.publicAddress));
  }

  private publish(next: string[]): void {
    if (next.join(',') === this.cands.join(',')) return;
    this.cands = next;
    this.io.candidatesChanged([...next]);
  }

  /** Candidates for this public address: the mapped one first, held old addresses last. */
  private compose(publicAddress: string | null): string[] {
    const c = this.withMapped(localCandidates(this.localAddrs, this.io.port(), publicAddress, this.io.policy));
    for (const h of this.held) if (!c.includes(h.addr)) c.push(h.addr);
    return c;
  }

  /**
   * STUN answered from a new public address. A NAT that maps per flow (Linux masquerade) gives an
   * expired STUN flow a new port while our peers' flows keep the old one and still answer: listing
   * only the new address made every peer drop a working path at once ("the peer moved away", ~13
   * paths in an N=16 storm). So the old address stays listed while a path that was direct at the
   * move still is. With none (a real rebinding: the paths went quiet first) it goes at once, as
   * before; behind a symmetric NAT nothing is held (its STUN address serves STUN's flow only).
   */
  private holdMoved(old: string | null, nat: NatInfo): void {
    const now = nat.publicAddress;
    if (nat.mapping === 'endpoint-dependent') this.held = [];
    this.held = this.held.filter((h) => h.addr !== now);
    if (old === null || now === null || old === now || nat.mapping === 'endpoint-dependent') return;
    const peers = new Set(this.io.directPeers());
    if (peers.size === 0) return;
    this.held = [...this.held.filter((h) => h.addr !== old), { addr: old, peers }].slice(-MAX_HELD);
    this.io.log.info('public address moved; the old one stays listed while direct paths use it', { old, now, paths: peers.size });
  }

  /**
   * Behind a sequential symmetric NAT: the public ports our NAT gave our flows to these (a
   * peer's) internet candidates, by arithmetic from the latest STUN sample. Primed before the
   * call-me-maybe that carries them, so those flows exist.
   */
  predictedTowards(candidates: readonly string[]): string[] {
    const ref = this.portRef;
    if (this.delta === 0 || ref === null || this.nat.mapping !== 'endpoint-dependent') return [];
    const now = this.io.clock.now();
    const out: string[] = [];
    for (const c of candidates) {
      if (this.isLan(c)) continue;
      const idx = this.flows.indexOf(c, now);
      const port = idx === null ? null : predictPort(ref, this.delta, idx);
      const ep = port === null ? null : `${ref.ip}:${port}`;
      if (ep !== null && !out.includes(ep)) out.push(ep);
      if (out.length >= 4) break;
    }
    return out;
  }

  private withMapped(c: string[]): string[] {
    const m = this.mappedCand;
    return m === null ? c : [m, ...c.filter((x) => x !== m)];
  }

  private readAddresses(): LocalAddress[] {
    const ifs = (this.io.networkInterfaces ?? networkInterfaces)();
    return localAddresses(ifs, this.io.policy, this.io.bindAddress);
  }

  private async refresh(): Promise<string[]> {
    const { c, clock } = this.io;
    this.localAddrs = this.readAddresses();
    const servers = this.io.stunServers().filter((s) => parseEndpoint(s) !== null).slice(0, 4);
    let nat: NatInfo = this.nat;
    let delta = this.delta;
    let ref = this.portRef;
    if (servers.length > 0) {
      c.stun_queries += servers.length;
      const { nat: n, answers } = await this.io.stun.probe(servers);
      c.stun_unanswered += answers.filter((a) => a === null).length;
      if (n.publicAddress !== null || this.nat.publicAddress === null) nat = n;
      // Each answer came back on the flow we opened to that server: (flow number, mapped port).
      const now = clock.now();
      const samples: PortSample[] = [];
      answers.forEach((a, i) => {
        const ep = a === null ? null : parseEndpoint(a);
        const idx = this.flows.indexOf(servers[i] ?? '', now);
        if (ep && idx !== null) samples.push({ idx, ip: ep.ip, port: ep.port });
      });
      if (n.mapping === 'endpoint-dependent') {
        delta = detectPortDelta(samples);
        ref = delta === 0 ? null : samples.reduce((a, b) => (b.idx > a.idx ? b : a));
      } else if (n.mapping === 'endpoint-independent') {
        delta = 0;
        ref = null;
      }
    }
    if (this.io.closed()) return [...this.cands];
    if (randomPortMove(this.nat, nat, delta)) nat = { ...nat, publicAddress: this.nat.publicAddress };
    // A symmetric NAT's STUN-mapped port is meaningful only towards the STUN server: still listed,
    // because the peer-reflexive address learned from our pings covers the rest.
    this.holdMoved(this.nat.publicAddress, nat);
    const next = this.compose(nat.publicAddress);
    const natChanged = nat.mapping !== this.nat.mapping || nat.publicAddress !== this.nat.publicAddress;
    const deltaChanged = delta !== this.delta;
    const changed = next.join(',') !== this.cands.join(',') || deltaChanged;
    this.nat = nat;
    this.cands = next;
    this.delta = delta;
    this.portRef = ref;
    if (deltaChanged) this.io.log.info('nat port delta', { delta, ref });
    if (natChanged) this.io.natChanged(this.natInfo());
    // Peers must learn new addresses at once (e.g. the public address changed).
    if (changed) this.io.candidatesChanged([...next]);
    return [...next];
  }

  private scheduleRefresh(): void {
    this.cancelRefresh();
    const ms = this.io.stunRefreshMs ?? 60_000;
    if (ms > 0 && !this.io.closed()) this.cancelRefresh = this.io.clock.setTimeout(() => void this.localCandidates().catch(() => undefined), ms);
  }
}

/**
 * Behind a NAT that gives each flow a random port, STUN's port is new whenever STUN's own flow
 * expired (at every refresh of a helper at rest) and useless to peers either way. Publishing each
 * one sent the party to every member and called every peer: at rest in a 16-player lab party with
 * four such players, ~3 party updates and ~45 call-me-maybes a minute, each followed by a burst of
 * punches that cannot succeed. Only a new address, NAT kind or port pattern is news.
 */
export function randomPortMove(prev: NatInfo, next: NatInfo, delta: number): boolean {
  if (prev.mapping !== 'endpoint-dependent' || next.mapping !== 'endpoint-dependent' || delta !== 0) return false;
  const a = prev.publicAddress === null ? null : parseEndpoint(prev.publicAddress);
  const b = next.publicAddress === null ? null : parseEndpoint(next.publicAddress);
  return a !== null && b !== null && a.ip === b.ip && a.port !== b.port;
}
