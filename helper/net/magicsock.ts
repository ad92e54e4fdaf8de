// The one public UDP port (Tailscale's magicsock): STUN, disco and WireGuard share one socket so
// that the NAT mapping STUN reports is the one WireGuard uses. Every datagram is classified by its
// first bytes (demux.ts) and routed:
//   disco      authenticated (disco.ts) → pings answered, pongs fed to the peer's PathMachine
//   WireGuard  from an address that spoke authenticated disco for a peer → that peer's proxy port
//   STUN       answers to our Binding transactions (stun.ts); anything else to onUnclaimed
// Outbound, WireGuard's packets for a peer (sent to its 127.0.0.1 proxy port) leave on the peer's
// active path, or wait in a 4-packet hold queue until a path answers. With the Linux fast path a
// direct peer's WireGuard traffic bypasses Node entirely (fastpath.ts); disco keeps running.
//
// Relayed paths (relayconn.ts, relaypath.ts): when the control server offers a TURN relay we keep
// one allocation on it; each peer publishes its relayed address, and our allocation sends to it.
// Until a direct path answers, WireGuard's packets go that way as soon as a disco pong through the
// relay confirms it; direct probing goes on meanwhile and the first direct pong takes over.
//
// Symmetric NATs with sequential ports (portpredict.ts): every datagram we send is logged as a NAT
// flow, STUN answers turn into (flow, port) samples and the port step. Behind such a NAT our
// call-me-maybe to a peer also names the port our NAT gave our flow to it; a peer behind such a
// NAT has the ports it names, and a small window around them, probed within a ProbeBudget.
//
// Symmetric NATs with random ports (birthday.ts, spraysock.ts): behind one, towards a peer that
// keeps one mapping, we open many sockets that each prime a mapping towards the peer and ask it
// (call-me-maybe with spray_sockets) to probe random ports of our public IP; the socket that hears
// it carries that peer's endpoint from then on (its "pin"), WireGuard included; on the fast path,
// WireGuard's packets to it take that socket's port instead of the public one.

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import type { Logger } from '../core/log.js';
import { isLoopback, isPrivate, parseEndpoint, type Endpoint } from './addr.js';
import { isCandidateAllowed, isOnLink, localAddresses, localCandidates, makePolicy, validatePeerCandidates, type AddressPolicy, type LocalAddress } from './candidates.js';
import { systemClock, type Clock } from '../core/clock.js';
import { AttemptLimiter, ATTEMPT_MS, birthdayRole, MAX_CONCURRENT, RETRY_AFTER_MS, Spray, SPRAY_SOCKETS, sprayTarget, sprayTtl, START_AFTER_MS, type BirthdayRole } from './birthday.js';
import { classify } from './demux.js';
import { DiscoBox, isKey, type DiscoMessage } from './disco.js';
import { FastPath, type FastPathCounters, type NftRunner } from './fastpath.js';
import type { ProbeStats } from './probe-stats.js';
import { HandshakeGuard, isHandshakeInitiation, releaseHeld, WG_HANDSHAKE_INITIATION, WG_HANDSHAKE_RESPONSE } from './handshake.js';
import { PathMachine, type PathTiming } from './path.js';
import { detectPortDelta, FlowLog, MAX_DETECTED_DELTA, MAX_PREDICTED_PER_PEER, predictionWindow, predictPort, ProbeBudget, type PortSample } from './portpredict.js';
import { RelayConn, type RelayLatency, type RelayOffer } from './relayconn.js';
import { combinePath, RelayPath, type RelayPathTiming, type ViewState } from './relaypath.js';
import type { TurnTiming } from './turn/index.js';
import { PublicSocket } from './socket.js';
import { SpraySockets } from './spraysock.js';
import { StunClient, type NatInfo, type NatMapping } from './stun/client.js';
import { HoldQueue, WgProxy } from './wgproxy.js';

/** A peer's path as players see it: direct, relayed, connecting or unreachable. */
export type PathState = ViewState;
export type { RelayLatency, RelayOffer } from './relayconn.js';
export type { NatInfo, NatMapping } from './stun/client.js';

export interface MagicPeer {
  id: string;
  discoPublicKey: string;
  wgPublicKey: string;
  candidates: string[];
  natHint?: NatMapping;
  /** The peer's NAT port step per new destination (0 or absent: not sequential, or unknown). */
  portDelta?: number;
  /** The peer's TURN relayed addresses (from the control plane). */
  relayed?: string[];
}

export interface PeerProbes {
  direct: ProbeStats;
  relay: ProbeStats;
  /** Datagrams the helper forwarded for this peer (relayed and proxied direct paths). */
  proxied: { rx: number; tx: number };
  /** The endpoint nftables counts this peer's fast-path packets under, or null. */
  fastEndpoint: string | null;
}

export interface PingResult {
  seq: number;
  answered: boolean;
  rttMs: number | null;
  via: string | null;
  path: 'direct' | 'relayed' | 'none';
}

export interface MagicSockOptions {
  port: number;
  discoPrivateKey: string;
  log: Logger;
  /** Given by the control server; no other STUN server is ever contacted. */
  stunServers(): string[];
  /** WireGuard's own local UDP port. */
  wgPort(): number;
  setWgEndpoint(wgPublicKey: string, endpoint: string): Promise<void>;
  /** spraySockets > 0: we just opened that many sockets towards the peer (birthday.ts). */
  sendCallMeMaybe(peerId: string, myCandidates: string[], spraySockets?: number): void;
  /** Linux only: direct peers bypass Node via nftables (needs CAP_NET_ADMIN and `nft`). */
  fastPath?: boolean;
  /** TTL of priming packets (0 disables priming); 2 leaves a home NAT and dies one hop later. */
  primingTtl?: number;
  /** Tests only: 127.0.0.0/8 candidates. */
  allowLoopbackCandidates?: boolean;
  clock?: Clock;
  /** Never a candidate, ours or a peer's. Default ['10.66.0.0/16'] (the virtual LAN). */
  excludeSubnets?: string[];
  /** Default 0.0.0.0; a specific address makes it the only local candidate. */
  bindAddress?: string;
  /** The helper's WireGuard interface: excluded from candidates, names the fast-path nft table. */
  wgInterface?: string;
  excludeInterfaces?: string[];
  /** STUN refresh period (default 60 s, 0 = only when localCandidates() is called). */
  stunRefreshMs?: number;
  timing?: Partial<PathTiming>;
  /** Tests: replaces os.networkInterfaces(). */
  networkInterfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  /** Tests: replaces running `nft -f -`. */
  nft?: NftRunner;
  /** STUN/TURN datagrams that are neither ours nor our relay's. */
  onUnclaimed?(kind: 'stun' | 'channeldata', msg: Buffer, from: string): void;
  /** Relays with fresh credentials from the control server; without it, no relayed paths. */
  fetchRelayOffers?(): Promise<RelayOffer[]>;
  relayTiming?: Partial<RelayPathTiming>;
  turnTiming?: Partial<TurnTiming>;
  /** Start TURN over TCP when UDP to the relay has not answered by then (default 1500 ms). */
  relayTcpAfterMs?: number;
}

interface PeerRec {
  peer: MagicPeer;
  machine: PathMachine;
  relay: RelayPath;
  /** The peer's relayed address our allocation sends to (null: no relayed path). */
  relayTarget: string | null;
  view: ViewState | null;
  handshake: HandshakeGuard;
  hold: HoldQueue;
  proxyPort: number;
  active: Endpoint | null;
  activeKey: string | null;
  /** Addresses that sent authenticated disco as this peer. */
  known: Set<string>;
  /** When we last sent a disco packet to each candidate (priming decisions). */
  lastSent: Map<string, number>;
  /** The endpoint WireGuard currently has on the fast path, or null. */
  fastEp: string | null;
  /** The local port the fast path gives that endpoint's traffic when pinned, else null. */
  fastPort: number | null;
  /** The first probing window ended without a direct path (logged once, with the packets spent). */
  unreachableLogged: boolean;
  /** Predicted ports of a symmetric peer (its call-me-maybe + window): probed within `budget`. */
  predicted: Set<string>;
  budget: ProbeBudget;
  /** Birthday probing: attempts, our open sockets (hard side), our probes (easy side). */
  bday: AttemptLimiter;
  bdayTimer: () => void;
  addedAt: number;
  spraySocks: SpraySockets | null;
  spray: { probes: Spray; txid: Buffer; cancel: () => void } | null;
  /** The endpoint a spray socket won for this peer: everything to it leaves from that socket. */
  pin: { key: string; sock: PublicSocket } | null;
  reconciling: boolean;
  removed: boolean;
}

const PEER_ID_RE = /^[A-Za-z0-9._:@-]{1,128}$/;
const DEFAULT_PRIMING_TTL = 2;
/** A mapping opened by our last packet is assumed gone after this much silence towards a candidate. */
const REPRIME_AFTER_MS = 20_000;
const PENDING_CMM_MS = 30_000;
/** Source addresses remembered per peer (a symmetric NAT can show us many over time). */
const MAX_KNOWN_ADDRS = 32;
const MAX_PENDING_CMM = 256;
/** Birthday probing waits this long at most for both NATs to be known. */
const KNOW_NATS_WITHIN_MS = 30_000;

const COUNTERS = [
  'rx_wireguard', 'rx_disco', 'rx_stun', 'rx_channeldata', 'rx_unknown',
  'tx_wireguard', 'tx_disco',
  'disco_ping_rx', 'disco_pong_rx', 'disco_ping_tx', 'disco_pong_tx', 'disco_primes',
  'disco_unknown_key', 'disco_bad_auth', 'disco_malformed', 'disco_bad_source', 'disco_pong_unmatched',
  'wg_to_wireguard', 'wg_unknown_source', 'wg_no_proxy', 'wg_held', 'wg_hold_dropped', 'wg_flushed', 'wg_stale_dropped', 'wg_crossing_dropped', 'wg_crossing_yielded',
  'cmm_sent', 'cmm_received', 'cmm_buffered', 'cmm_invalid',
  'predict_cmm', 'predict_probes', 'predict_refused',
  'birthday_attempts', 'birthday_sockets', 'birthday_opened', 'birthday_probes', 'birthday_hits', 'birthday_refused', 'birthday_failed',
  /** Datagrams sent by direct path finding: pings, keepalives and their priming copies. */
  'path_datagrams',
  'stun_unclaimed', 'stun_queries', 'stun_unanswered',
  'tx_relay', 'rx_relay_wireguard', 'rx_relay_disco', 'relay_send_failed', 'relay_bad_source', 'relay_target_refused',
  'fastpath_on', 'fastpath_off', 'fastpath_errors', 'wg_endpoint_errors', 'socket_errors', 'peers_rejected',
] as const;
type CounterName = (typeof COUNTERS)[number];
export type MagicCounters = Record<CounterName | 'dropped_while_priming' | 'peers' | 'peers_direct' | 'peers_relayed' | 'peers_fastpath', number>;

export class MagicSock extends EventEmitter {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly box: DiscoBox;
  private readonly policy: AddressPolicy;
  private readonly primingTtl: number;
  private readonly sock: PublicSocket;
  private readonly stun: StunClient;
  private readonly proxy: WgProxy;
  private readonly fast: FastPath | null;
  private readonly peers = new Map<string, PeerRec>();
  private readonly byDisco = new Map<string, string>();
  private readonly byAddr = new Map<string, string>();
  /** A peer's relayed address → its id (WireGuard and disco arriving through our relay). */
  private readonly byRelay = new Map<string, string>();
  private readonly relayConn: RelayConn | null;
  private relayedAddr: string | null = null;
  private readonly pendingCmm = new Map<string, { candidates: string[]; at: number }>();
  private readonly userPings = new Map<string, (rtt: number, via: string) => void>();
  private readonly c: Record<CounterName, number>;
  private localAddrs: LocalAddress[] = [];
  /** Every flow our socket opened, numbered as a sequential NAT would allocate ports. */
  private readonly flows = new FlowLog();
  /** Our NAT's port step per new flow (0: not sequential or unknown) and the latest sample. */
  private delta = 0;
  private portRef: PortSample | null = null;

  /** False once STUN shows our public address is one of our own (no NAT); true while unknown. */
  private behindNat(): boolean {
    const pub = this.nat.publicAddress;
    if (pub === null) return true;
    const ip = pub.slice(0, pub.lastIndexOf(':'));
    return !this.localAddrs.some((a) => a.ip === ip);
  }
  private cands: string[] = [];
  private nat: NatInfo = { mapping: 'unknown', publicAddress: null };
  /** A router-mapped public address (UPnP / NAT-PMP / PCP): reachable from anywhere, listed first. */
  private mappedCand: string | null = null;
  private refreshing: Promise<string[]> | null = null;
  private cancelRefresh: () => void = () => {};
  private boundPort = 0;
  private started = false;
  private closed = false;

  constructor(private readonly o: MagicSockOptions) {
    super();
    this.clock = o.clock ?? systemClock;
    this.log = o.log;
    this.box = new DiscoBox(o.discoPrivateKey);
    this.policy = makePolicy({
      excludeSubnets: o.excludeSubnets,
      excludeInterfaces: [...(o.excludeInterfaces ?? []), ...(o.wgInterface ? [o.wgInterface] : [])],
      allowLoopback: o.allowLoopbackCandidates ?? false,
    });
    const ttl = o.primingTtl ?? DEFAULT_PRIMING_TTL;
    if (!Number.isInteger(ttl) || ttl < 0 || ttl > 255) throw new Error(`primingTtl must be 0-255, got ${ttl}`);
    this.primingTtl = ttl;
    this.c = Object.fromEntries(COUNTERS.map((k) => [k, 0])) as Record<CounterName, number>;
    this.sock = new PublicSocket({
      bindAddress: o.bindAddress ?? '0.0.0.0',
      port: o.port,
      primingTtl: ttl,
      onMessage: (m, ip, port) => this.onMessage(m, ip, port),
      // In the order datagrams reach the kernel (primes overtake queued sends): a NAT's order.
      // Behind a NAT that keeps one mapping nothing is predicted: the data path pays nothing.
      onSend: (ip, port) => {
        if (this.nat.mapping !== 'endpoint-independent') this.flows.note(`${ip}:${port}`, this.clock.now());
      },
      onError: (err) => {
        this.c.socket_errors++;
        this.log.debug('public socket error', { err });
      },
    });
    this.stun = new StunClient((b, ip, port) => this.send(b, port, ip), this.clock);
    this.proxy = new WgProxy({
      wgPort: () => o.wgPort(),
      fromWireGuard: (id, m) => this.fromWireGuard(id, m),
      onError: (err) => {
        this.c.socket_errors++;
        this.log.debug('proxy socket error', { err });
      },
    });
    const fastOk = (o.fastPath ?? false) && (process.platform === 'linux' || o.nft !== undefined);
    this.fast = fastOk ? new FastPath({ iface: o.wgInterface ?? 'lanrage0', wgPort: () => o.wgPort(), pubPort: () => this.boundPort, run: o.nft }) : null;
    const fetch = o.fetchRelayOffers;
    this.relayConn = fetch
      ? new RelayConn({
          log: this.log,
          clock: this.clock,
          fetchOffers: () => fetch(),
          shared: { send: (b, ip, port) => this.send(b, port, ip) },
          measure: (server) => this.measure(server),
          onData: (from, data) => this.onRelayData(from, data),
          onChange: () => this.onRelayChange(),
          ...(o.turnTiming ? { turnTiming: o.turnTiming } : {}),
          ...(o.relayTcpAfterMs !== undefined ? { tcpAfterMs: o.relayTcpAfterMs } : {}),
        })
      : null;
  }

  async start(): Promise<{ port: number }> {
    if (this.started) return { port: this.boundPort };
    this.started = true;
    this.boundPort = await this.sock.bind();
    this.localAddrs = this.readAddresses();
    this.cands = localCandidates(this.localAddrs, this.boundPort, null, this.policy);
    if (this.fast) await this.fast.reset();
    this.log.info('magicsock listening', { port: this.boundPort, primingTtl: this.primingTtl, fastPath: this.fast !== null });
    void this.localCandidates().catch(() => undefined);
    return { port: this.boundPort };
  }

  get port(): number {
    return this.boundPort;
  }

  get discoPublicKey(): string {
    return this.box.publicKey;
  }

  /** Refreshes interface addresses and STUN; emits 'candidates' / 'nat' when they change. */
  localCandidates(): Promise<string[]> {
    if (!this.started || this.closed) return Promise.resolve([...this.cands]);
    this.refreshing ??= this.refresh().finally(() => {
      this.refreshing = null;
      this.scheduleRefresh();
    });
    return this.refreshing;
  }

  /** Sets (or clears) the port-mapped candidate; peers hear of it at once. */
  setMappedCandidate(addr: string | null): void {
    if (addr === this.mappedCand) return;
    this.mappedCand = addr;
    if (!this.started || this.closed) return;
    const next = this.withMapped(localCandidates(this.localAddrs, this.boundPort, this.nat.publicAddress, this.policy));
    if (next.join(',') === this.cands.join(',')) return;
    this.cands = next;
    this.emit('candidates', [...next]);
    for (const rec of this.peers.values()) void this.callMeMaybe(rec);
  }

  private withMapped(c: string[]): string[] {
    const m = this.mappedCand;
    return m === null ? c : [m, ...c.filter((x) => x !== m)];
  }

  natInfo(): NatInfo {
    return { ...this.nat };
  }

  /** Our NAT's port step per new destination (sequential symmetric NAT), else 0. */
  portDelta(): number {
    return this.delta;
  }

  /** Keeps an allocation on the control server's best relay (while in a party). */
  startRelay(): void {
    if (!this.closed && this.started) this.relayConn?.start();
  }

  async stopRelay(): Promise<void> {
    await this.relayConn?.stop();
  }

  /** Ask the control server for relays again (it may have restarted or changed them). */
  refreshRelay(): void {
    this.relayConn?.refresh();
  }

  /** Our TURN relayed "ip:port", to publish to the party; null without an allocation. */
  relayedAddress(): string | null {
    return this.relayConn?.relayed() ?? null;
  }

  /** Every offered relay's RTT from our public socket, measured now (empty without relays). */
  relayLatencies(): Promise<RelayLatency[]> {
    return this.relayConn?.latencies() ?? Promise.resolve([]);
  }

  relayStats(): ReturnType<RelayConn['stats']> {
    return this.relayConn?.stats() ?? null;
  }

  setPeers(peers: MagicPeer[]): void {
    if (this.closed) return;
    const want = new Map<string, MagicPeer>();
    for (const p of peers) {
      const v = this.validatePeer(p);
      if (!v) {
        this.c.peers_rejected++;
        continue;
      }
      if (!want.has(v.id)) want.set(v.id, v);
    }
    for (const id of [...this.peers.keys()]) if (!want.has(id)) this.removePeer(id);
    for (const p of want.values()) {
      const rec = this.peers.get(p.id);
      if (!rec || rec.peer.discoPublicKey !== p.discoPublicKey) {
        if (rec) this.removePeer(p.id);
        this.addPeer(p);
        continue;
      }
      const oldWg = rec.peer.wgPublicKey;
      rec.peer = p;
      rec.machine.setCandidates(p.candidates);
      if (oldWg !== p.wgPublicKey && rec.proxyPort) this.pushWgEndpoint(rec, rec.fastEp ?? `127.0.0.1:${rec.proxyPort}`);
    }
    this.updateRelayTargets();
  }

  handleCallMeMaybe(peerId: string, candidates: string[], spraySockets = 0): void {
    if (this.closed || typeof peerId !== 'string' || !PEER_ID_RE.test(peerId)) return;
    const valid = validatePeerCandidates(candidates, this.policy);
    this.c.cmm_received++;
    const rec = this.peers.get(peerId);
    if (rec) {
      rec.machine.callMeMaybe(this.expandPredicted(rec, valid));
      if (Number.isInteger(spraySockets) && spraySockets > 0) this.startSpray(rec, valid, spraySockets);
      return;
    }
    // The peer may know about us before the control plane tells us about it: keep its call.
    this.c.cmm_buffered++;
    if (this.pendingCmm.size >= MAX_PENDING_CMM) {
      const oldest = this.pendingCmm.keys().next().value;
      if (oldest !== undefined) this.pendingCmm.delete(oldest);
    }
    this.pendingCmm.delete(peerId);
    this.pendingCmm.set(peerId, { candidates: valid, at: this.clock.now() });
  }

  /** WireGuard's traffic to this peer went unanswered (traffic-watch.ts): re-probe its direct path now. */
  suspect(peerId: string): void {
    const rec = this.peers.get(peerId);
    if (!rec || rec.active === null) return;
    this.log.debug('traffic unanswered: re-probing', { peer: peerId, endpoint: rec.activeKey });
    rec.machine.suspect();
  }

  path(peerId: string): PathState | undefined {
    const rec = this.peers.get(peerId);
    return rec ? this.viewOf(rec) : undefined;
  }

  /** Disco pings over the active path (or every candidate while there is none), one after another. */
  async ping(peerId: string, count: number, timeoutMs = 1000): Promise<PingResult[]> {
    if (!Number.isInteger(count) || count < 1 || count > 100) throw new Error('ping count must be 1-100');
    if (!Number.isFinite(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000) throw new Error('ping timeout must be 1-60000 ms');
    const out: PingResult[] = [];
    for (let seq = 1; seq <= count; seq++) {
      const rec = this.peers.get(peerId);
      if (!rec) throw new Error(`unknown peer ${peerId}`);
      const active = rec.machine.state().endpoint;
      const relayed = !active && rec.relay.state().up;
      const targets = active ? [active] : relayed ? [] : rec.machine.peerHasPunched ? rec.machine.candidates() : [];
      const txids = (relayed ? [rec.relay.pingNow()] : targets.map((t) => rec.machine.pingNow(t)))
        .filter((t): t is Buffer => t !== null)
        .map((t) => t.toString('hex'));
      const answer = await new Promise<{ rtt: number; via: string } | null>((resolve) => {
        if (txids.length === 0) return resolve(null);
        const cancel = this.clock.setTimeout(() => finish(null), timeoutMs);
        const finish = (r: { rtt: number; via: string } | null): void => {
          cancel();
          for (const t of txids) this.userPings.delete(t);
          resolve(r);
        };
        for (const t of txids) this.userPings.set(t, (rtt, via) => finish({ rtt, via }));
      });
      out.push(answer
        ? { seq, answered: true, rttMs: answer.rtt, via: answer.via, path: answer.via.startsWith('relay ') ? 'relayed' : 'direct' }
        : { seq, answered: false, rttMs: null, via: null, path: 'none' });
    }
    return out;
  }

  /** A peer's disco probe records and forwarded packets, for per-peer metrics (null: unknown peer). */
  peerProbes(peerId: string): PeerProbes | null {
    const rec = this.peers.get(peerId);
    if (!rec) return null;
    return { direct: rec.machine.probes, relay: rec.relay.probes, proxied: this.proxy.packets(peerId), fastEndpoint: rec.fastPort === null ? rec.fastEp : null };
  }

  /** Extra RTT probes on direct paths every `ms` while somebody watches metrics (0 = off). */
  setMetricProbing(ms: number): void {
    this.metricProbeMs = ms;
    for (const rec of this.peers.values()) rec.machine.setMetricProbing(ms);
  }

  private metricProbeMs = 0;

  /** The fast path's nftables packet counters by peer id (one `nft` run; empty without a fast path). */
  fastPathCounters(): Promise<Map<string, FastPathCounters>> {
    return this.fast ? this.fast.counters() : Promise.resolve(new Map());
  }

  counters(): MagicCounters {
    return {
      ...this.c,
      disco_primes: this.sock.primesSent,
      dropped_while_priming: this.sock.droppedWhilePriming,
      peers: this.peers.size,
      peers_direct: [...this.peers.values()].filter((r) => r.active !== null).length,
      peers_relayed: [...this.peers.values()].filter((r) => r.active === null && r.relay.state().up).length,
      peers_fastpath: [...this.peers.values()].filter((r) => r.fastEp !== null).length,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cancelRefresh();
    for (const id of [...this.peers.keys()]) this.removePeer(id);
    this.userPings.clear();
    this.stun.close();
    this.proxy.close();
    await this.relayConn?.stop().catch(() => undefined);
    if (this.fast) await this.fast.close().catch((err: Error) => this.log.warn('fast path: could not remove nft table', { err }));
    await this.sock.close();
  }

  // --- receive -----------------------------------------------------------------------------------

  private onMessage(msg: Buffer, ip: string, port: number): void {
    switch (classify(msg)) {
      case 'wireguard': {
        this.c.rx_wireguard++;
        const id = this.byAddr.get(`${ip}:${port}`);
        if (id === undefined) {
          this.c.wg_unknown_source++;
          return;
        }
        return this.toWireGuard(id, msg);
      }
      case 'disco':
        this.c.rx_disco++;
        return this.onDisco(msg, ip, port);
      case 'stun':
        this.c.rx_stun++;
        if (this.stun.handle(msg, `${ip}:${port}`)) return;
        if (this.relayConn?.handleDatagram(msg, `${ip}:${port}`)) return;
        this.c.stun_unclaimed++;
        this.o.onUnclaimed?.('stun', msg, `${ip}:${port}`);
        return;
      case 'channeldata':
        this.c.rx_channeldata++;
        if (this.relayConn?.handleDatagram(msg, `${ip}:${port}`)) return;
        this.o.onUnclaimed?.('channeldata', msg, `${ip}:${port}`);
        return;
      default:
        this.c.rx_unknown++;
    }
  }

  private onDisco(msg: Buffer, ip: string, port: number): void {
    const opened = this.openDisco(msg);
    if (!opened) return;
    const { rec, message: m } = opened;
    const from = `${ip}:${port}`;
    // A path through the virtual LAN itself (tunnel in tunnel) or through loopback is no path.
    if (!isCandidateAllowed(from, this.policy)) {
      this.c.disco_bad_source++;
      return;
    }
    this.learnAddress(rec, from);
    if (m.type === 'ping') {
      this.c.disco_ping_rx++;
      this.sendDisco(rec, { ip, port }, this.box.seal(rec.peer.discoPublicKey, { type: 'pong', txid: m.txid, observed: from }));
      this.c.disco_pong_tx++;
      rec.machine.onPing(from);
      return;
    }
    this.c.disco_pong_rx++;
    const rtt = rec.machine.onPong(from, m.txid);
    if (rtt === null) {
      if (!this.sprayAnswered(rec, m.txid, from)) this.c.disco_pong_unmatched++;
      return;
    }
    this.userPings.get(m.txid.toString('hex'))?.(rtt, from);
  }

  /** An authenticated disco message from a known peer, or null (counted). */
  private openDisco(b: Buffer): { rec: PeerRec; message: DiscoMessage } | null {
    const r = this.box.open(b);
    if (!r.ok) {
      if (r.error === 'unknown-key') this.c.disco_unknown_key++;
      else if (r.error === 'auth') this.c.disco_bad_auth++;
      else this.c.disco_malformed++;
      return null;
    }
    const id = this.byDisco.get(r.sender);
    const rec = id === undefined ? undefined : this.peers.get(id);
    if (!rec) {
      this.c.disco_unknown_key++;
      return null;
    }
    return { rec, message: r.message };
  }

  // --- send ----------------------------------------------------------------------------------------

  private sendDisco(rec: PeerRec, ep: Endpoint, b: Buffer): void {
    this.c.tx_disco++;
    const key = `${ep.ip}:${ep.port}`;
    rec.lastSent.set(key, this.clock.now());
    this.sockFor(rec, key).send(b, ep.port, ep.ip);
  }

  /** The socket traffic to this endpoint of this peer leaves from: its pin, else the public one. */
  private sockFor(rec: PeerRec, key: string | null): PublicSocket {
    const pin = rec.pin;
    return pin !== null && pin.key === key ? pin.sock : this.sock;
  }

  private send(b: Buffer, port: number, ip: string): void {
    this.sock.send(b, port, ip);
  }

  // --- port prediction (portpredict.ts) ----------------------------------------------------------

  /** Packets this helper spent on path finding so far (all peers), for the lab's figures. */
  private pathSent(): { datagrams: number; predicted: number; refused: number } {
    return { datagrams: this.c.path_datagrams, predicted: this.c.predict_probes, refused: this.c.predict_refused };
  }

  /**
   * Behind a sequential symmetric NAT: the public ports our NAT gave our flows to this peer's
   * internet candidates, by arithmetic from the latest STUN sample. Primed before the
   * call-me-maybe that carries them, so those flows exist.
   */
  private predictedSelf(rec: PeerRec): string[] {
    const ref = this.portRef;
    if (this.delta === 0 || ref === null || this.nat.mapping !== 'endpoint-dependent') return [];
    const now = this.clock.now();
    const out: string[] = [];
    for (const c of rec.machine.candidates()) {
      if (this.isLan(c)) continue;
      const idx = this.flows.indexOf(c, now);
      const port = idx === null ? null : predictPort(ref, this.delta, idx);
      const ep = port === null ? null : `${ref.ip}:${port}`;
      if (ep !== null && !out.includes(ep)) out.push(ep);
      if (out.length >= 4) break;
    }
    return out;
  }

  /**
   * A call-me-maybe from a peer behind a sequential symmetric NAT: the endpoints it names beyond
   * its published candidates are its predicted ports towards us; add a window around each (other
   * hosts behind its NAT may have taken ports it never saw). Probed within the peer's budget.
   */
  private expandPredicted(rec: PeerRec, valid: string[]): string[] {
    const delta = rec.peer.portDelta ?? 0;
    if (rec.peer.natHint !== 'endpoint-dependent' || delta === 0) {
      this.log.debug('call-me-maybe', { peer: rec.peer.id, candidates: valid, natHint: rec.peer.natHint, delta });
      return valid;
    }
    const told = valid.filter((c) => !rec.peer.candidates.includes(c) && !this.isLan(c));
    this.log.debug('call-me-maybe from a sequential NAT', { peer: rec.peer.id, candidates: valid, told, delta });
    if (told.length === 0) return valid;
    const win: string[] = [];
    for (const c of told) {
      const ep = parseEndpoint(c);
      if (!ep) continue;
      for (const w of predictionWindow(ep.ip, ep.port, delta)) if (!win.includes(w)) win.push(w);
    }
    const predicted = win.slice(0, MAX_PREDICTED_PER_PEER);
    if (!rec.budget.begin(told.join(','))) {
      // This very prediction was probed twice already: stay relayed until the peer's NAT moves.
      this.c.predict_refused++;
      return valid.filter((c) => !told.includes(c));
    }
    rec.predicted = new Set([...rec.predicted, ...predicted].slice(-2 * MAX_PREDICTED_PER_PEER));
    return [...valid, ...predicted.filter((p) => !valid.includes(p))];
  }

  private fromWireGuard(id: string, msg: Buffer): void {
    const rec = this.peers.get(id);
    if (!rec) return;
    // Only handshake initiations concern the guard: data packets skip the clock.
    if (msg[0] === WG_HANDSHAKE_INITIATION && !rec.handshake.outgoing(msg, this.clock.now())) {
      this.c.wg_crossing_dropped++;
      return;
    }
    const a = rec.active;
    if (a) {
      this.c.tx_wireguard++;
      this.sockFor(rec, rec.activeKey).send(msg, a.port, a.ip);
      return;
    }
    if (this.sendRelayed(rec, msg)) return;
    rec.handshake.unsent(msg); // held, not sent: judged again when it leaves (releaseHeld)
    const dropped = rec.hold.dropped;
    rec.hold.push(msg);
    this.c.wg_held++;
    if (rec.hold.dropped > dropped) this.c.wg_hold_dropped++;
  }

  /** Hands a peer's WireGuard datagram to WireGuard, unless handshake.ts says it would cross ours. */
  private toWireGuard(id: string, msg: Buffer): void {
    const rec = msg[0] === WG_HANDSHAKE_INITIATION || msg[0] === WG_HANDSHAKE_RESPONSE ? this.peers.get(id) : undefined;
    if (rec) {
      const verdict = rec.handshake.incoming(msg, this.clock.now());
      if (verdict === 'drop') {
        this.c.wg_crossing_yielded++;
        return;
      }
      if (verdict === 'deliver-discard-held') this.c.wg_stale_dropped += rec.hold.discard(isHandshakeInitiation);
    }
    if (this.proxy.toWireGuard(id, msg)) this.c.wg_to_wireguard++;
    else this.c.wg_no_proxy++;
  }

  private isLan(endpoint: string): boolean {
    const ep = parseEndpoint(endpoint);
    if (!ep) return false;
    if (isLoopback(ep.ip)) return this.policy.allowLoopback;
    return isOnLink(ep.ip, this.localAddrs);
  }

  // --- peers ---------------------------------------------------------------------------------------

  private validatePeer(p: MagicPeer): MagicPeer | null {
    if (!p || typeof p.id !== 'string' || !PEER_ID_RE.test(p.id)) return null;
    if (!isKey(p.discoPublicKey) || !isKey(p.wgPublicKey) || p.discoPublicKey === this.box.publicKey) return null;
    const hint = p.natHint;
    const natHint = hint === 'endpoint-independent' || hint === 'endpoint-dependent' || hint === 'unknown' ? hint : undefined;
    const relayed = Array.isArray(p.relayed) ? validatePeerCandidates(p.relayed, this.policy).slice(0, 4) : [];
    // A step we would never probe with (predictionWindow refuses it) is no step.
    const d = p.portDelta;
    const portDelta = typeof d === 'number' && Number.isInteger(d) && Math.abs(d) <= MAX_DETECTED_DELTA ? d : 0;
    return { id: p.id, discoPublicKey: p.discoPublicKey, wgPublicKey: p.wgPublicKey, candidates: validatePeerCandidates(p.candidates, this.policy), relayed, ...(natHint ? { natHint } : {}), portDelta };
  }

  private addPeer(p: MagicPeer): void {
    try {
      this.box.addPeer(p.discoPublicKey);
    } catch (err) {
      this.c.peers_rejected++;
      this.log.warn('peer rejected', { peer: p.id, err });
      return;
    }
    const id = p.id;
    const rec: PeerRec = {
      peer: p,
      hold: new HoldQueue(),
      proxyPort: 0,
      active: null,
      activeKey: null,
      known: new Set(),
      lastSent: new Map(),
      fastEp: null,
      fastPort: null,
      unreachableLogged: false,
      predicted: new Set(),
      budget: new ProbeBudget(),
      bday: new AttemptLimiter(),
      bdayTimer: () => {},
      addedAt: this.clock.now(),
      spraySocks: null,
      spray: null,
      pin: null,
      reconciling: false,
      removed: false,
      machine: null as unknown as PathMachine,
      relay: null as unknown as RelayPath,
      relayTarget: null,
      view: null,
      handshake: new HandshakeGuard(this.box.publicKey < p.discoPublicKey),
    };
    rec.relay = new RelayPath({
      clock: this.clock,
      timing: this.o.relayTiming,
      ping: (target, txid) => {
        this.c.disco_ping_tx++;
        this.sendViaRelay(target, this.box.seal(rec.peer.discoPublicKey, { type: 'ping', txid }), 'disco');
      },
      changed: (st) => {
        if (rec.removed) return;
        if (st.up && rec.active === null) {
          this.log.info('relayed path', { peer: id, target: st.target, rttMs: st.rttMs, relay: this.relayConn?.server() });
          this.flushHeld(rec);
        }
        this.emitView(rec);
      },
    });
    rec.machine = new PathMachine(
      {
        clock: this.clock,
        gate: this.primingTtl > 0,
        isLan: (ep) => this.isLan(ep),
        localNat: () => this.nat.mapping,
        behindNat: () => this.behindNat(),
        peerCallOpensGate: () => !(this.nat.mapping === 'endpoint-dependent' && this.delta !== 0),
        peerNat: () => rec.peer.natHint,
        timing: this.o.timing,
        io: {
          ping: (ep, txid, lowTtl) => this.machinePing(rec, ep, txid, lowTtl),
          callMeMaybe: () => void this.callMeMaybe(rec),
          state: (s) => this.onPathState(rec, s),
        },
      },
      p.candidates,
    );
    this.peers.set(id, rec);
    this.byDisco.set(p.discoPublicKey, id);
    this.proxy.add(id).then(
      (port) => {
        if (rec.removed) return;
        rec.proxyPort = port;
        if (rec.fastEp === null) this.pushWgEndpoint(rec, `127.0.0.1:${port}`);
      },
      (err: Error) => {
        if (!rec.removed) this.log.warn('could not open the WireGuard proxy port', { peer: id, err });
      },
    );
    rec.machine.start();
    rec.machine.setMetricProbing(this.metricProbeMs);
    this.scheduleBirthday(rec, START_AFTER_MS);
    const pend = this.pendingCmm.get(id);
    if (pend) {
      this.pendingCmm.delete(id);
      if (this.clock.now() - pend.at < PENDING_CMM_MS) rec.machine.callMeMaybe(this.expandPredicted(rec, pend.candidates));
    }
  }

  private removePeer(id: string): void {
    const rec = this.peers.get(id);
    if (!rec) return;
    rec.removed = true;
    rec.machine.close();
    rec.relay.close();
    this.endBirthday(rec);
    this.unpin(rec);
    if (rec.relayTarget !== null && this.byRelay.get(rec.relayTarget) === id) this.byRelay.delete(rec.relayTarget);
    this.peers.delete(id);
    this.byDisco.delete(rec.peer.discoPublicKey);
    this.box.removePeer(rec.peer.discoPublicKey);
    for (const a of rec.known) if (this.byAddr.get(a) === id) this.byAddr.delete(a);
    this.proxy.remove(id);
    if (rec.fastEp !== null && this.fast) {
      rec.fastEp = null;
      this.fast.set(id, null).catch((err: Error) => this.log.warn('fast path: removal failed', { peer: id, err }));
    }
  }

  private machinePing(rec: PeerRec, endpoint: string, txid: Buffer, lowTtl: boolean): void {
    const ep = parseEndpoint(endpoint);
    if (!ep || rec.removed) return;
    const b = this.box.seal(rec.peer.discoPublicKey, { type: 'ping', txid });
    this.c.disco_ping_tx++;
    const now = this.clock.now();
    // Guesses are budgeted; a predicted port the peer has spoken from is a path like any other.
    if (rec.predicted.has(endpoint) && !rec.known.has(endpoint)) {
      if (!rec.budget.take(now)) {
        this.c.predict_refused++;
        return;
      }
      this.c.predict_probes++;
    }
    const last = rec.lastSent.get(endpoint);
    this.c.path_datagrams++;
    if (lowTtl) {
      rec.lastSent.set(endpoint, now);
      this.sockFor(rec, endpoint).prime(b, ep.port, ep.ip);
      return;
    }
    // The first packet towards a candidate (or the first after a long silence) is preceded by the
    // same ping at the priming TTL, so our NAT mapping exists before the peer's packets arrive.
    if (this.primingTtl > 0 && !this.isLan(endpoint) && (last === undefined || now - last > REPRIME_AFTER_MS)) {
      this.c.path_datagrams++;
      this.sockFor(rec, endpoint).prime(b, ep.port, ep.ip);
    }
    this.sendDisco(rec, ep, b);
  }

  private async callMeMaybe(rec: PeerRec, spraySockets = 0): Promise<void> {
    // The peer punches when this arrives: our priming packets must have left first.
    await this.sock.whenPrimed();
    if (rec.removed || this.closed) return;
    this.c.cmm_sent++;
    const mine = this.predictedSelf(rec);
    if (mine.length > 0) {
      this.c.predict_cmm++;
      this.log.debug('call-me-maybe with predicted ports', { peer: rec.peer.id, predicted: mine });
    }
    try {
      // Predictions first: the peer keeps at most MAX_PEER_CANDIDATES.
      // With sockets to probe, our public address first: the peer probes the first IP it finds.
      const pub = spraySockets > 0 ? this.nat.publicAddress : null;
      const first = pub !== null ? [pub, ...mine.filter((c) => c !== pub)] : mine;
      this.o.sendCallMeMaybe(rec.peer.id, [...first, ...this.cands.filter((c) => !first.includes(c))], spraySockets);
    } catch (err) {
      this.log.warn('sendCallMeMaybe failed', { peer: rec.peer.id, err });
    }
  }

  private onPathState(rec: PeerRec, s: PathState): void {
    if (rec.removed) return;
    const id = rec.peer.id;
    if (s.kind === 'direct' && s.endpoint) {
      if (s.endpoint !== rec.activeKey) {
        rec.active = parseEndpoint(s.endpoint);
        rec.activeKey = s.endpoint;
        this.learnAddress(rec, s.endpoint);
        this.flushHeld(rec);
        rec.budget.end();
        this.log.info('direct path', { peer: id, endpoint: s.endpoint, rttMs: s.rttMs, predicted: rec.predicted.has(s.endpoint), sent: this.pathSent() });
      }
    } else if (rec.active) {
      rec.active = null;
      rec.activeKey = null;
      this.log.info('path lost', { peer: id, reason: s.reason });
      // The winning socket's mapping is gone with the path; another attempt may find a new one.
      if (rec.pin !== null) {
        this.unpin(rec);
        this.scheduleBirthday(rec, 0);
      }
    } else if (s.kind === 'unreachable' && !rec.unreachableLogged) {
      rec.unreachableLogged = true;
      this.log.debug('no direct path yet', { peer: id, reason: s.reason, sent: this.pathSent() });
    }
    if (this.fast) void this.reconcileFast(rec);
    // A direct path carries everything: the relayed one rests until the direct one is lost.
    rec.relay.setPaused(rec.active !== null);
    this.emitView(rec);
  }

  private viewOf(rec: PeerRec): ViewState {
    return combinePath({
      direct: rec.machine.state(),
      relay: rec.relay.state(),
      relayServer: this.relayConn?.server() ?? null,
      noRelayWhy: this.relayConn ? (rec.relayTarget === null && this.relayedAddr !== null ? 'the peer has no relay allocation yet' : this.relayConn.unavailableReason()) : 'no relay is configured',
    });
  }

  private emitView(rec: PeerRec): void {
    if (rec.removed) return;
    const v = this.viewOf(rec);
    const l = rec.view;
    if (l && l.kind === v.kind && l.endpoint === v.endpoint && l.reason === v.reason && l.fastPath === v.fastPath && l.rttMs === v.rttMs) return;
    rec.view = v;
    this.emit('path', rec.peer.id, v);
  }

  // --- birthday probing (birthday.ts) --------------------------------------------------------------

  private birthdayRole(rec: PeerRec): BirthdayRole | null {
    const hint = rec.peer.natHint;
    return birthdayRole({ mapping: this.nat.mapping, portDelta: this.delta }, hint ? { mapping: hint, portDelta: rec.peer.portDelta ?? 0 } : null);
  }

  private scheduleBirthday(rec: PeerRec, ms: number): void {
    rec.bdayTimer();
    if (rec.removed || this.closed) return;
    rec.bdayTimer = this.clock.setTimeout(() => void this.openSprayIfUseful(rec), ms);
  }

  /**
   * The hard side: without a direct path to a peer that keeps one mapping, open SPRAY_SOCKETS
   * sockets, prime a mapping from each towards the peer's internet candidates, then ask the peer
   * to probe (call-me-maybe with spray_sockets). A socket that hears the peer becomes its pin.
   */
  private async openSprayIfUseful(rec: PeerRec): Promise<void> {
    if (rec.removed || this.closed || rec.active !== null || rec.pin !== null || rec.spraySocks !== null) return;
    if (this.birthdayRole(rec) !== 'open-sockets') {
      // Our NAT or the peer's may not be known yet (STUN, the peer's first update): look again.
      const unknown = this.nat.mapping === 'unknown' || rec.peer.natHint === undefined || rec.peer.natHint === 'unknown';
      if (unknown && this.clock.now() - rec.addedAt < KNOW_NATS_WITHIN_MS) this.scheduleBirthday(rec, START_AFTER_MS);
      return;
    }
    // The peer's public address is what its probes come from; private ones cost sockets × 1 packet.
    const internet = rec.peer.candidates.filter((c) => !this.isLan(c)).map(parseEndpoint).filter((e): e is Endpoint => e !== null);
    const publicOnes = internet.filter((e) => !isPrivate(e.ip));
    const targets = (publicOnes.length > 0 ? publicOnes : internet).slice(0, 2);
    if (targets.length === 0) return;
    if (this.sprayingPeers('sockets') >= MAX_CONCURRENT) return this.scheduleBirthday(rec, RETRY_AFTER_MS);
    if (!rec.bday.begin(this.clock.now())) return;
    this.c.birthday_attempts++;
    const socks = new SpraySockets({
      bindAddress: this.o.bindAddress ?? '0.0.0.0',
      count: SPRAY_SOCKETS,
      primingTtl: sprayTtl(this.primingTtl, rec.bday.attempts),
      onMessage: (m, ip, port, sock) => this.onSprayMessage(rec, socks, m, ip, port, sock),
      onError: (err) => {
        this.c.socket_errors++;
        this.log.debug('spray socket error', { err });
      },
    });
    rec.spraySocks = socks;
    const opened = await socks.open();
    if (rec.removed || this.closed || rec.spraySocks !== socks || rec.active !== null) return void this.endBirthday(rec, socks);
    this.c.birthday_sockets += opened;
    const sent = await socks.prime(() => this.box.seal(rec.peer.discoPublicKey, { type: 'ping', txid: randomBytes(12) }), targets);
    this.c.birthday_opened += sent;
    this.c.path_datagrams += sent;
    if (rec.removed || this.closed || rec.spraySocks !== socks) return void this.endBirthday(rec, socks);
    this.log.info('birthday: sockets open, asking the peer to probe', { peer: rec.peer.id, sockets: opened, towards: targets.map((t) => `${t.ip}:${t.port}`), attempt: rec.bday.attempts, ttl: sprayTtl(this.primingTtl, rec.bday.attempts) });
    void this.callMeMaybe(rec, opened);
    rec.bdayTimer();
    rec.bdayTimer = this.clock.setTimeout(() => {
      if (rec.spraySocks !== socks) return;
      this.c.birthday_failed++;
      this.log.info('birthday: no probe arrived; staying relayed', { peer: rec.peer.id, attempt: rec.bday.attempts, sent: this.pathSent() });
      this.endBirthday(rec, socks);
      this.scheduleBirthday(rec, rec.bday.nextGapMs());
    }, ATTEMPT_MS);
  }

  /** A datagram on a spray socket: the peer's first authenticated disco there wins the pin. */
  private onSprayMessage(rec: PeerRec, socks: SpraySockets, msg: Buffer, ip: string, port: number, sock: PublicSocket): void {
    if (rec.pin?.sock === sock) return this.onMessage(msg, ip, port);
    if (rec.removed || rec.spraySocks !== socks || classify(msg) !== 'disco') return;
    const from = `${ip}:${port}`;
    const opened = this.openDisco(msg);
    if (opened?.rec !== rec || !rec.peer.candidates.includes(from)) return;
    socks.keep(sock);
    rec.spraySocks = null;
    rec.pin = { key: from, sock };
    rec.bdayTimer();
    this.c.birthday_hits++;
    rec.bday = new AttemptLimiter();
    this.log.info('birthday: the peer reached one of our sockets', { peer: rec.peer.id, endpoint: from, localPort: sock.port, sent: this.pathSent() });
    this.onMessage(msg, ip, port);
  }

  private sprayingPeers(what: 'sockets' | 'probes'): number {
    let n = 0;
    for (const r of this.peers.values()) if (what === 'sockets' ? r.spraySocks !== null : r.spray !== null) n++;
    return n;
  }

  /** The easy side: the peer opened sockets; probe random ports of its public IP, paced. */
  private startSpray(rec: PeerRec, told: string[], sockets: number): void {
    const ip = sprayTarget(told, rec.peer.candidates, (c) => this.isLan(c));
    const role = this.birthdayRole(rec);
    const busy = this.sprayingPeers('probes') >= MAX_CONCURRENT;
    if (role !== 'probe' || ip === null || rec.active !== null || busy || !rec.bday.begin(this.clock.now())) {
      this.c.birthday_refused++;
      this.log.debug('birthday: not probing', { peer: rec.peer.id, role, ip, direct: rec.active !== null, busy, attempts: rec.bday.attempts });
      return;
    }
    this.c.birthday_attempts++;
    rec.spray = { probes: new Spray(ip, this.clock.now()), txid: randomBytes(12), cancel: () => {} };
    this.log.info('birthday: probing the peer\'s ports', { peer: rec.peer.id, ip, sockets });
    this.sprayTick(rec);
  }

  private sprayTick(rec: PeerRec): void {
    const sp = rec.spray;
    if (sp === null) return;
    if (rec.removed || this.closed || rec.active !== null) return this.endSpray(rec);
    const now = this.clock.now();
    for (const ep of sp.probes.due(now)) {
      const e = parseEndpoint(ep);
      if (!e) continue;
      this.c.birthday_probes++;
      this.c.path_datagrams++;
      this.c.disco_ping_tx++;
      this.c.tx_disco++;
      // Not through sendDisco: thousands of one-off ports must not fill the priming bookkeeping.
      this.send(this.box.seal(rec.peer.discoPublicKey, { type: 'ping', txid: sp.txid }), e.port, e.ip);
    }
    const next = sp.probes.nextDueAt();
    if (next === null) {
      // The last probes are in flight: give them a moment to be answered.
      sp.cancel = this.clock.setTimeout(() => {
        if (rec.spray !== sp) return;
        this.c.birthday_failed++;
        this.log.info('birthday: no answer to our probes; staying relayed', { peer: rec.peer.id, probes: sp.probes.sent, sent: this.pathSent() });
        this.endSpray(rec);
      }, 1000);
      return;
    }
    // Batches of a few probes: a timer per probe would cost more than the probes.
    sp.cancel = this.clock.setTimeout(() => this.sprayTick(rec), Math.max(20, next - now));
  }

  /** A pong to one of our probes: that port of the peer's NAT leads to one of its sockets. */
  private sprayAnswered(rec: PeerRec, txid: Buffer, from: string): boolean {
    const sp = rec.spray;
    if (sp === null || !txid.equals(sp.txid)) return false;
    this.c.birthday_hits++;
    this.log.info('birthday: a probe was answered', { peer: rec.peer.id, endpoint: from, probes: sp.probes.sent, sent: this.pathSent() });
    this.endSpray(rec);
    rec.bday = new AttemptLimiter();
    rec.machine.callMeMaybe([from]);
    return true;
  }

  private endSpray(rec: PeerRec): void {
    const sp = rec.spray;
    if (sp === null) return;
    sp.cancel();
    sp.probes.stop();
    rec.spray = null;
    rec.bday.end(this.clock.now());
  }

  /** Ends a hard-side attempt (its sockets) and an easy-side one. */
  private endBirthday(rec: PeerRec, socks: SpraySockets | null = rec.spraySocks): void {
    rec.bdayTimer();
    this.endSpray(rec);
    if (socks !== null) {
      void socks.close();
      if (rec.spraySocks === socks) rec.spraySocks = null;
      rec.bday.end(this.clock.now());
    }
  }

  private unpin(rec: PeerRec): void {
    const pin = rec.pin;
    if (pin === null) return;
    rec.pin = null;
    void pin.sock.close();
  }

  // --- relayed paths ---------------------------------------------------------------------------------

  /** WireGuard through the relay once it is confirmed for this peer (see relaypath.ts). */
  private sendRelayed(rec: PeerRec, msg: Buffer): boolean {
    const t = rec.relayTarget;
    if (t === null || !rec.relay.state().up) return false;
    this.c.tx_wireguard++;
    return this.sendViaRelay(t, msg, 'wireguard');
  }

  private sendViaRelay(target: string, b: Buffer, what: 'disco' | 'wireguard'): boolean {
    const ok = this.relayConn?.send(target, b) ?? false;
    if (ok) {
      this.c.tx_relay++;
      if (what === 'disco') this.c.tx_disco++;
    } else this.c.relay_send_failed++;
    return ok;
  }

  private onRelayData(from: string, data: Buffer): void {
    const kind = classify(data);
    if (kind === 'wireguard') {
      const id = this.byRelay.get(from);
      if (id === undefined) {
        this.c.relay_bad_source++;
        return;
      }
      this.c.rx_relay_wireguard++;
      // The peer sends through the relay while we send direct: it has lost the direct path (a NAT
      // forgot our mapping), so ours is suspect too — our packets may be the ones not arriving.
      // Often a false alarm (at every join one side goes direct first; the other's packets keep
      // coming relayed): suspect() ignores a path that answered within the re-probe window and
      // re-probes at most once per keepalive interval after an answered re-probe (path.ts).
      const rec = this.peers.get(id);
      if (rec && rec.active !== null) rec.machine.suspect();
      return this.toWireGuard(id, data);
    }
    if (kind !== 'disco') {
      this.c.relay_bad_source++;
      return;
    }
    this.c.rx_relay_disco++;
    const opened = this.openDisco(data);
    if (!opened) return;
    const { rec, message: m } = opened;
    // Only from the relayed address this very peer published: another member cannot speak for it.
    if (rec.relayTarget !== from) {
      this.c.relay_bad_source++;
      return;
    }
    if (m.type === 'ping') {
      this.c.disco_ping_rx++;
      this.c.disco_pong_tx++;
      this.sendViaRelay(from, this.box.seal(rec.peer.discoPublicKey, { type: 'pong', txid: m.txid, observed: from }), 'disco');
      return;
    }
    this.c.disco_pong_rx++;
    const rtt = rec.relay.onPong(m.txid);
    if (rtt === null) {
      this.c.disco_pong_unmatched++;
      return;
    }
    this.userPings.get(m.txid.toString('hex'))?.(rtt, `relay ${this.relayConn?.server() ?? '?'}`);
  }

  private onRelayChange(): void {
    if (this.closed) return;
    const now = this.relayConn?.relayed() ?? null;
    const changed = now !== this.relayedAddr;
    this.relayedAddr = now;
    this.updateRelayTargets();
    for (const rec of this.peers.values()) this.emitView(rec);
    if (changed) this.emit('relayed', now);
  }

  /** Each peer's relayed target follows our allocation and the address the peer published. */
  private updateRelayTargets(): void {
    const conn = this.relayConn;
    if (!conn) return;
    const hosts = conn.relayHosts();
    const permits: string[] = [];
    const targets = new Map<PeerRec, string | null>();
    for (const rec of this.peers.values()) {
      let target: string | null = null;
      for (const r of rec.peer.relayed ?? []) {
        const ep = parseEndpoint(r);
        if (ep && hosts.has(ep.ip)) {
          target = `${ep.ip}:${ep.port}`;
          break;
        }
        this.c.relay_target_refused++;
      }
      if (target !== null) permits.push(target);
      targets.set(rec, this.relayedAddr !== null ? target : null);
    }
    conn.permit(permits);
    for (const [rec, target] of targets) {
      if (rec.relayTarget === target) continue;
      if (rec.relayTarget !== null && this.byRelay.get(rec.relayTarget) === rec.peer.id) this.byRelay.delete(rec.relayTarget);
      rec.relayTarget = target;
      this.log.debug('relayed path target', { peer: rec.peer.id, target, published: rec.peer.relayed ?? [] });
      if (target !== null) this.byRelay.set(target, rec.peer.id);
      rec.relay.setTarget(target);
    }
  }

  /** RTT of one STUN Binding to a relay over the public socket (relay choice). */
  private async measure(server: string): Promise<number | null> {
    const t0 = this.clock.now();
    const mapped = await this.stun.query(server);
    return mapped === null ? null : this.clock.now() - t0;
  }

  /** WireGuard datagrams from this address now belong to this peer. */
  private learnAddress(rec: PeerRec, addr: string): void {
    const id = rec.peer.id;
    if (rec.known.has(addr)) rec.known.delete(addr); // re-insert: most recent last
    else if (rec.known.size >= MAX_KNOWN_ADDRS) {
      for (const old of rec.known) {
        if (old === rec.activeKey) continue;
        rec.known.delete(old);
        if (this.byAddr.get(old) === id) this.byAddr.delete(old);
        break;
      }
    }
    rec.known.add(addr);
    this.byAddr.set(addr, id);
  }

  private flushHeld(rec: PeerRec): void {
    const a = rec.active;
    const viaRelay = !a && rec.relayTarget !== null && rec.relay.state().up;
    if (!a && !viaRelay) return;
    const { send, dropped } = releaseHeld(rec.handshake, rec.hold.take(), this.clock.now());
    this.c.wg_crossing_dropped += dropped;
    if (!a) {
      for (const m of send) {
        if (this.sendRelayed(rec, m)) this.c.wg_flushed++;
        else rec.handshake.unsent(m); // not on the wire: the guard must not count it (handshake.ts)
      }
      return;
    }
    const sock = this.sockFor(rec, rec.activeKey);
    for (const m of send) {
      this.c.wg_flushed++;
      this.c.tx_wireguard++;
      sock.send(m, a.port, a.ip);
    }
  }

  private pushWgEndpoint(rec: PeerRec, endpoint: string): Promise<boolean> {
    return this.o.setWgEndpoint(rec.peer.wgPublicKey, endpoint).then(
      () => true,
      (err: Error) => {
        this.c.wg_endpoint_errors++;
        this.log.warn('could not set the WireGuard endpoint', { peer: rec.peer.id, endpoint, err });
        return false;
      },
    );
  }

  /** Moves a peer on or off the fast path until what WireGuard has matches the path state. */
  private async reconcileFast(rec: PeerRec): Promise<void> {
    const fast = this.fast;
    if (!fast || rec.reconciling) return;
    rec.reconciling = true;
    try {
      for (;;) {
        const want = !rec.removed && !this.closed && rec.activeKey !== null && this.o.wgPort() > 0 ? rec.activeKey : null;
        // A pinned endpoint's packets use its own socket's port instead of the public one.
        const wantPort = want !== null && rec.pin !== null && rec.pin.key === want ? rec.pin.sock.port : null;
        if (want === rec.fastEp && wantPort === rec.fastPort) return;
        if (want !== null) {
          try {
            await fast.set(rec.peer.id, want, wantPort);
          } catch (err) {
            this.c.fastpath_errors++;
            this.log.warn('fast path: nft failed, staying on the proxy path', { peer: rec.peer.id, err });
            await fast.set(rec.peer.id, null).catch(() => undefined);
            return;
          }
          if (!(await this.pushWgEndpoint(rec, want))) {
            await fast.set(rec.peer.id, null).catch(() => undefined);
            return;
          }
          rec.fastEp = want;
          rec.fastPort = wantPort;
          this.c.fastpath_on++;
          rec.machine.setFastPath(true);
        } else {
          if (rec.proxyPort && !rec.removed) await this.pushWgEndpoint(rec, `127.0.0.1:${rec.proxyPort}`);
          await fast.set(rec.peer.id, null).catch((err: Error) => this.log.warn('fast path: removal failed', { peer: rec.peer.id, err }));
          rec.fastEp = null;
          rec.fastPort = null;
          this.c.fastpath_off++;
          if (!rec.removed) rec.machine.setFastPath(false);
        }
      }
    } finally {
      rec.reconciling = false;
    }
  }

  // --- local candidates ------------------------------------------------------------------------------

  private readAddresses(): LocalAddress[] {
    const ifs = (this.o.networkInterfaces ?? networkInterfaces)();
    return localAddresses(ifs, this.policy, this.o.bindAddress ?? '0.0.0.0');
  }

  private async refresh(): Promise<string[]> {
    this.localAddrs = this.readAddresses();
    const servers = this.o.stunServers().filter((s) => parseEndpoint(s) !== null).slice(0, 4);
    let nat: NatInfo = this.nat;
    let delta = this.delta;
    let ref = this.portRef;
    if (servers.length > 0) {
      this.c.stun_queries += servers.length;
      const { nat: n, answers } = await this.stun.probe(servers);
      this.c.stun_unanswered += answers.filter((a) => a === null).length;
      if (n.publicAddress !== null || this.nat.publicAddress === null) nat = n;
      // Each answer came back on the flow we opened to that server: (flow number, mapped port).
      const now = this.clock.now();
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
    if (this.closed) return [...this.cands];
    // A symmetric NAT's STUN-mapped port is meaningful only towards the STUN server: still listed,
    // because the peer-reflexive address learned from our pings covers the rest.
    const next = this.withMapped(localCandidates(this.localAddrs, this.boundPort, nat.publicAddress, this.policy));
    const natChanged = nat.mapping !== this.nat.mapping || nat.publicAddress !== this.nat.publicAddress;
    const deltaChanged = delta !== this.delta;
    const changed = next.join(',') !== this.cands.join(',') || deltaChanged;
    this.nat = nat;
    this.cands = next;
    this.delta = delta;
    this.portRef = ref;
    if (deltaChanged) this.log.info('nat port delta', { delta, ref });
    if (natChanged) this.emit('nat', this.natInfo());
    if (changed) {
      this.emit('candidates', [...next]);
      // Peers must learn new addresses at once (e.g. the public address changed).
      for (const rec of this.peers.values()) void this.callMeMaybe(rec);
    }
    return [...next];
  }

  private scheduleRefresh(): void {
    this.cancelRefresh();
    const ms = this.o.stunRefreshMs ?? 60_000;
    if (ms > 0 && !this.closed) this.cancelRefresh = this.clock.setTimeout(() => void this.localCandidates().catch(() => undefined), ms);
  }
}
