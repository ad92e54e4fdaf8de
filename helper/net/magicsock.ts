// The one public UDP port (Tailscale's magicsock): STUN, disco and WireGuard share one socket so
// that the NAT mapping STUN reports is the one WireGuard uses. Every datagram is classified by its
// first bytes (demux.ts) and routed:
//   disco      authenticated (disco.ts) → pings answered, pongs fed to the peer's PathMachine
//   WireGuard  from an address that spoke authenticated disco for a peer → that peer's proxy port
//   STUN       answers to our Binding transactions (stun/client.ts), else our relay's, else onUnclaimed
// Outbound, WireGuard's packets for a peer (sent to its 127.0.0.1 proxy port) leave on the peer's
// active path, or wait in a 4-packet hold queue until a path answers. With the Linux fast path a
// direct peer's WireGuard traffic bypasses Node entirely (fastpath.ts); disco keeps running.
//
// This file is the socket, the demux and the orchestration; the work is done in:
//   endpoint.ts         a peer's state (path machine, relayed path, pin, hold queue, handshake guard)
//   peer-table.ts       the peers: added, changed, removed, found by disco key and source address;
//                       what follows a path change (held packets, fast path, the view players see)
//   disco-exchange.ts   disco with peers: pings and pongs, call-me-maybe both ways, user pings
//   local-view.ts       our side: addresses, candidates, NAT mapping and port step (STUN refresh)
//   relay-glue.ts       relayed paths (below)
//   birthday-runner.ts  random-port symmetric NATs (below)
//   fastpath.ts         the Linux fast path and its per-peer reconcile loop
//
// Relayed paths (relay-glue.ts: relayconn.ts, relaypath.ts): when the control server offers a TURN relay we keep
// one allocation on it; each peer publishes its relayed address, and our allocation sends to it.
// Until a direct path answers, WireGuard's packets go that way as soon as a disco pong through the
// relay confirms it; direct probing goes on meanwhile and the first direct pong takes over.
//
// Symmetric NATs with sequential ports (portpredict.ts): every datagram we send is logged as a NAT
// flow, STUN answers turn into (flow, port) samples and the port step. Behind such a NAT our
// call-me-maybe to a peer also names the port our NAT gave our flow to it; a peer behind such a
// NAT has the ports it names, and a small window around them, probed within a ProbeBudget.
//
// Symmetric NATs with random ports (birthday-runner.ts: birthday.ts, spraysock.ts): behind one, towards a peer that
// keeps one mapping, we open many sockets that each prime a mapping towards the peer and ask it
// (call-me-maybe with spray_sockets) to probe random ports of our public IP; the socket that hears
// it carries that peer's endpoint from then on (its "pin"), WireGuard included; on the fast path,
// WireGuard's packets to it take that socket's port instead of the public one.


import { EventEmitter } from 'node:events';
import type { Logger } from '../core/log.js';
import { makePolicy, type AddressPolicy } from './candidates.js';
import { systemClock, type Clock } from '../core/clock.js';
import { BirthdayRunner } from './birthday-runner.js';
import { classify } from './demux.js';
import { DiscoBox } from './disco.js';
import { DiscoExchange } from './disco-exchange.js';
import type { PeerEndpoint } from './endpoint.js';
import { FastPath, reconcileFastPath, type FastPathCounters, type ReconcileIo } from './fastpath.js';
import { isHandshakeInitiation, WG_HANDSHAKE_INITIATION, WG_HANDSHAKE_RESPONSE } from './handshake.js';
import { LocalView } from './local-view.js';
import { newCounters, pathSent, type Counters, type MagicCounters, type MagicPeer, type MagicSockOptions, type PeerProbes, type PingResult } from './magicsock-api.js';
import { PeerTable } from './peer-table.js';
import { RelayGlue } from './relay-glue.js';
import type { RelayConn, RelayLatency } from './relayconn.js';
import type { ViewState } from './relaypath.js';
import { PublicSocket } from './socket.js';
import { SpraySockets } from './spraysock.js';
import { StunClient, type NatInfo } from './stun/client.js';
import { WgProxy } from './wgproxy.js';

/** A peer's path as players see it: direct, relayed, connecting or unreachable. */
export type PathState = ViewState;
export type { RelayLatency, RelayOffer } from './relayconn.js';
export type { NatInfo, NatMapping } from './stun/client.js';

export { COUNTERS, type MagicCounters, type MagicPeer, type MagicSockOptions, type PeerProbes, type PingResult } from './magicsock-api.js';

const DEFAULT_PRIMING_TTL = 2;
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
  private readonly peers: PeerTable;
  private readonly disco: DiscoExchange;
  private readonly relay: RelayGlue;
  private readonly bday: BirthdayRunner;
  private readonly fastIo: ReconcileIo<PeerEndpoint>;
  private readonly c: Counters;
  private readonly self: LocalView;
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
    this.c = newCounters();
    // The modules below call each other through these (and through fields set further down:
    // only once running, never during construction).
    const { clock, log, c, policy } = this;
    const closed = (): boolean => this.closed;
    const send = (b: Buffer, port: number, ip: string): void => this.sock.send(b, port, ip);
    const sockFor = (rec: PeerEndpoint, key: string | null): PublicSocket => rec.sockFor(key, this.sock);
    this.sock = new PublicSocket({
      bindAddress: o.bindAddress ?? '0.0.0.0',
      port: o.port,
      primingTtl: ttl,
      onMessage: (m, ip, port) => this.onMessage(m, ip, port),
      // In the order datagrams reach the kernel (primes overtake queued sends): a NAT's order.
      onSend: (ip, port) => this.self.noteSend(ip, port),
      onError: (err) => this.socketError('public socket error', err),
    });
    this.stun = new StunClient((b, ip, port) => send(b, port, ip), clock);
    this.self = new LocalView({
      clock,
      log,
      c,
      policy,
      stun: this.stun,
      stunServers: () => o.stunServers(),
      bindAddress: o.bindAddress ?? '0.0.0.0',
      ...(o.stunRefreshMs !== undefined ? { stunRefreshMs: o.stunRefreshMs } : {}),
      ...(o.networkInterfaces ? { networkInterfaces: o.networkInterfaces } : {}),
      port: () => this.boundPort,
      running: () => this.started && !this.closed,
      closed,
      natChanged: (nat) => this.emit('nat', nat),
      candidatesChanged: (cands) => {
        this.emit('candidates', cands);
        for (const rec of this.peers.peersToCall()) void this.disco.callMeMaybe(rec);
      },
      directPeers: () => this.peers.directPeers(),
    });
    this.proxy = new WgProxy({
      wgPort: () => o.wgPort(),
      fromWireGuard: (id, m) => this.fromWireGuard(id, m),
      onError: (err) => this.socketError('proxy socket error', err),
    });
    const fastOk = (o.fastPath ?? false) && (process.platform === 'linux' || o.nft !== undefined);
    this.fast = fastOk ? new FastPath({ iface: o.wgInterface ?? 'lanrage0', wgPort: () => o.wgPort(), pubPort: () => this.boundPort, run: o.nft }) : null;
    this.fastIo = { closed, wgPort: () => o.wgPort(), pushEndpoint: (rec, ep) => this.peers.pushWgEndpoint(rec, ep), c, log };
    this.relay = new RelayGlue(
      {
        clock,
        log,
        c,
        closed,
        peers: () => this.peers.values(),
        peer: (id) => this.peers.get(id),
        send,
        measure: (server) => this.measure(server),
        openDisco: (b) => this.disco.open(b),
        seal: (rec, m) => this.disco.seal(rec, m),
        toWireGuard: (id, msg) => this.toWireGuard(id, msg),
        pong: (txid, rtt, via) => this.disco.pong(txid, rtt, via),
        flushHeld: (rec) => this.peers.flushHeld(rec),
        emitView: (rec) => this.peers.emitView(rec),
        relayUnderSuspect: (rec) => this.peers.relayUnderSuspect(rec),
        relayedChanged: (addr) => this.emit('relayed', addr),
      },
      o,
    );
    this.bday = new BirthdayRunner({
      clock,
      log,
      c,
      nat: () => ({ mapping: this.self.mapping, portDelta: this.self.portDelta() }),
      isLan: (ep) => this.self.isLan(ep),
      closed,
      peers: () => this.peers.values(),
      ping: (rec, txid) => this.disco.seal(rec, { type: 'ping', txid }),
      send,
      openSockets: (so) => new SpraySockets({ ...so, bindAddress: o.bindAddress ?? '0.0.0.0', onError: (err) => this.socketError('spray socket error', err) }),
      primingTtl: ttl,
      fromPeer: (rec, msg) => this.disco.open(msg)?.rec === rec,
      deliver: (msg, ip, port) => this.onMessage(msg, ip, port),
      callMeMaybe: (rec, n) => void this.disco.callMeMaybe(rec, n),
      pathSent: () => pathSent(c),
      relayPending: (rec) => {
        const r = rec.relay.state();
        return !r.up && (r.target !== null || (rec.peer.relayed?.length ?? 0) > 0);
      },
      relayUp: (rec) => rec.relay.state().up,
    });
    this.disco = new DiscoExchange({
      clock,
      log,
      c,
      policy,
      box: this.box,
      primingTtl: ttl,
      closed,
      peer: (id) => this.peers.get(id),
      peerByDisco: (key) => this.peers.byDisco(key),
      learnAddress: (rec, addr) => this.peers.learnAddress(rec, addr),
      sockFor,
      whenPrimed: () => this.sock.whenPrimed(),
      self: this.self,
      birthday: this.bday,
      sendCallMeMaybe: (id, cands, n, primed) => o.sendCallMeMaybe(id, cands, n, primed),
    });
    this.peers = new PeerTable({
      clock,
      log,
      c,
      policy,
      closed,
      box: this.box,
      pathOptions: {
        clock,
        gate: ttl > 0,
        isLan: (ep) => this.self.isLan(ep),
        localNat: () => this.self.mapping,
        behindNat: () => this.self.behindNat(),
        peerCallOpensGate: () => !(this.self.mapping === 'endpoint-dependent' && this.self.portDelta() !== 0),
        timing: o.timing,
      },
      disco: this.disco,
      relay: this.relay,
      relayServer: () => this.relay.conn?.server() ?? null,
      birthday: this.bday,
      proxy: this.proxy,
      fast: this.fast,
      reconcileFast: (rec) => {
        if (this.fast) void reconcileFastPath(this.fast, rec, this.fastIo);
      },
      sockFor,
      setWgEndpoint: (key, ep) => o.setWgEndpoint(key, ep),
      viewChanged: (id, v) => this.emit('path', id, v),
      natSuspect: () => this.self.recheck(),
      isLan: (ep) => this.self.isLan(ep),
      pathsChanged: () => this.self.pathsChanged(),
    });
  }

  async start(): Promise<{ port: number }> {
    if (this.started) return { port: this.boundPort };
    this.started = true;
    this.boundPort = await this.sock.bind();
    this.self.start();
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
    return this.self.localCandidates();
  }

  /** Sets (or clears) the port-mapped candidate; peers hear of it at once. */
  setMappedCandidate(addr: string | null): void {
    this.self.setMappedCandidate(addr);
  }

  natInfo(): NatInfo {
    return this.self.natInfo();
  }

  /** Our NAT's port step per new destination (sequential symmetric NAT), else 0. */
  portDelta(): number {
    return this.self.portDelta();
  }

  /** Keeps an allocation on the control server's best relay (while in a party). */
  startRelay(): void {
    if (!this.closed && this.started) this.relay.conn?.start();
  }

  async stopRelay(): Promise<void> {
    await this.relay.conn?.stop();
  }

  /** Ask the control server for relays again (it may have restarted or changed them). */
  refreshRelay(): void {
    this.relay.conn?.refresh();
  }

  /** Our TURN relayed "ip:port", to publish to the party; null without an allocation. */
  relayedAddress(): string | null {
    return this.relay.conn?.relayed() ?? null;
  }

  /** Every offered relay's RTT from our public socket, measured now (empty without relays). */
  relayLatencies(): Promise<RelayLatency[]> {
    return this.relay.conn?.latencies() ?? Promise.resolve([]);
  }

  relayStats(): ReturnType<RelayConn['stats']> {
    return this.relay.conn?.stats() ?? null;
  }

  setPeers(peers: MagicPeer[]): void {
    this.peers.set(peers);
  }

  /** A peer's call-me-maybe, relayed by the control plane. */
  handleCallMeMaybe(peerId: string, candidates: string[], spraySockets = 0, primed: readonly string[] = []): void {
    this.disco.handleCallMeMaybe(peerId, candidates, spraySockets, primed);
  }

  /**
   * WireGuard's traffic to this peer went unanswered, or stopped both ways (`stopped`), by
   * traffic-watch.ts: re-probe its direct path (or check the relayed one) now.
   */
  suspect(peerId: string, stopped = false): void {
    const rec = this.peers.get(peerId);
    if (!rec) return;
    if (rec.active === null) {
      this.log.debug('relayed traffic unanswered: checking the relay allocation', { peer: peerId, stopped });
      return this.relay.suspect(rec);
    }
    this.log.debug('traffic unanswered or stopped: re-probing', { peer: peerId, endpoint: rec.activeKey, stopped });
    // A stop is weaker evidence than unanswered traffic (a game that closed looks the same): the
    // traffic stays direct until a re-probe goes unanswered.
    rec.machine.suspect(stopped);
    // The same rebinding may have orphaned our relay allocation, which is about to carry the traffic.
    this.relay.conn?.checkNow();
  }

  /** The peer's WireGuard carried no data for a while (endpoint.ts idle); unknown peers are not idle. */
  peerIdle(peerId: string): boolean {
    return this.peers.get(peerId)?.idle(this.clock.now()) ?? false;
  }

  /**
   * WireGuard data moved to or from this peer (traffic-watch.ts, from the counters): its direct
   * path keeps the busy keepalive pace, and comes back to it at once from the idle one.
   */
  noteTraffic(peerId: string): void {
    const rec = this.peers.get(peerId);
    if (!rec) return;
    const now = this.clock.now();
    const wasIdle = rec.idle(now);
    rec.lastTrafficAt = now;
    if (wasIdle) {
      rec.machine.wake();
      rec.relay.wake();
    }
  }

  path(peerId: string): PathState | undefined {
    const rec = this.peers.get(peerId);
    return rec ? this.peers.viewOf(rec) : undefined;
  }

  /** Disco pings over the active path (or every candidate while there is none), one after another. */
  ping(peerId: string, count: number, timeoutMs = 1000): Promise<PingResult[]> {
    return this.disco.userPing(peerId, count, timeoutMs);
  }

  /** A peer's disco probe records and forwarded packets, for per-peer metrics (null: unknown peer). */
  peerProbes(peerId: string): PeerProbes | null {
    const rec = this.peers.get(peerId);
    if (!rec) return null;
    return { direct: rec.machine.probes, relay: rec.relay.probes, proxied: this.proxy.packets(peerId), fastEndpoint: rec.fastPort === null ? rec.fastEp : null };
  }

  /** Extra RTT probes on direct paths every `ms` while somebody watches metrics (0 = off). */
  setMetricProbing(ms: number): void {
    this.peers.setMetricProbing(ms);
  }

  /** The fast path's nftables packet counters by peer id (one `nft` run; empty without a fast path). */
  fastPathCounters(): Promise<Map<string, FastPathCounters>> {
    return this.fast ? this.fast.counters() : Promise.resolve(new Map());
  }

  counters(): MagicCounters {
    const recs = [...this.peers.values()];
    return {
      ...this.c,
      disco_primes: this.sock.primesSent,
      dropped_while_priming: this.sock.droppedWhilePriming,
      peers: recs.length,
      peers_direct: recs.filter((r) => r.active !== null).length,
      peers_relayed: recs.filter((r) => r.active === null && r.relay.state().up).length,
      peers_fastpath: recs.filter((r) => r.fastEp !== null).length,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.self.close();
    for (const rec of [...this.peers.values()]) this.peers.remove(rec.peer.id);
    this.disco.close();
    this.stun.close();
    this.proxy.close();
    await this.relay.conn?.stop().catch(() => undefined);
    if (this.fast) await this.fast.close().catch((err: Error) => this.log.warn('fast path: could not remove nft table', { err }));
    await this.sock.close();
  }

  // --- receive -----------------------------------------------------------------------------------

  private onMessage(msg: Buffer, ip: string, port: number): void {
    switch (classify(msg)) {
      case 'wireguard': {
        this.c.rx_wireguard++;
        const id = this.peers.byAddress(`${ip}:${port}`);
        if (id === undefined) {
          this.c.wg_unknown_source++;
          return;
        }
        return this.toWireGuard(id, msg);
      }
      case 'disco':
        this.c.rx_disco++;
        return this.disco.onDisco(msg, ip, port);
      case 'stun':
        this.c.rx_stun++;
        if (this.stun.handle(msg, `${ip}:${port}`)) return;
        if (this.relay.conn?.handleDatagram(msg, `${ip}:${port}`)) return;
        this.c.stun_unclaimed++;
        this.o.onUnclaimed?.('stun', msg, `${ip}:${port}`);
        return;
      case 'channeldata':
        this.c.rx_channeldata++;
        if (this.relay.conn?.handleDatagram(msg, `${ip}:${port}`)) return;
        this.o.onUnclaimed?.('channeldata', msg, `${ip}:${port}`);
        return;
      default:
        this.c.rx_unknown++;
    }
  }

  private socketError(what: string, err: unknown): void {
    this.c.socket_errors++;
    this.log.debug(what, { err });
  }

  private fromWireGuard(id: string, msg: Buffer): void {
    const rec = this.peers.get(id);
    if (!rec) return;
    // On the fast path WireGuard sends here only after a handshake message from the helper roamed it.
    if (rec.fastEp !== null) this.peers.repoint.proxied(rec);
    // Only handshake initiations concern the guard: data packets skip the clock.
    if (msg[0] === WG_HANDSHAKE_INITIATION && !rec.handshake.outgoing(msg, this.clock.now())) {
      this.c.wg_crossing_dropped++;
      this.log.debug('wg handshake out', { peer: id, type: msg[0], verdict: 'crossing-dropped' });
      return;
    }
    const hs = msg[0] === WG_HANDSHAKE_INITIATION || msg[0] === WG_HANDSHAKE_RESPONSE;
    const a = rec.active;
    if (a) {
      this.c.tx_wireguard++;
      rec.sockFor(rec.activeKey, this.sock).send(msg, a.port, a.ip);
      if (hs) this.log.debug('wg handshake out', { peer: id, type: msg[0], verdict: 'direct' });
      return;
    }
    if (this.relay.sendWireGuard(rec, msg)) {
      if (hs) this.log.debug('wg handshake out', { peer: id, type: msg[0], verdict: 'relayed' });
      return;
    }
    if (hs) this.log.debug('wg handshake out', { peer: id, type: msg[0], verdict: 'held' });
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
      // Handshakes are rare (a few per peer per 2 min): a record each shows crossings in a storm.
      this.log.debug('wg handshake in', { peer: id, type: msg[0], verdict });
      if (verdict === 'drop') {
        this.c.wg_crossing_yielded++;
        return;
      }
      if (verdict === 'deliver-discard-held') this.c.wg_stale_dropped += rec.hold.discard(isHandshakeInitiation);
      const wait = msg[0] === WG_HANDSHAKE_INITIATION ? rec.handshake.spacing(this.clock.now()) : 0;
      if (wait > 0) {
        this.c.wg_init_spaced++;
        this.log.debug('wg handshake in spaced', { peer: id, waitMs: wait });
        this.clock.setTimeout(() => this.deliverToWireGuard(id, msg, rec), wait);
        return;
      }
    }
    this.deliverToWireGuard(id, msg, rec);
  }

  private deliverToWireGuard(id: string, msg: Buffer, rec: PeerEndpoint | undefined): void {
    if (this.closed) return;
    if (!this.proxy.toWireGuard(id, msg)) {
      this.c.wg_no_proxy++;
      return;
    }
    this.c.wg_to_wireguard++;
    // WireGuard follows it to the proxy port: a fast-path peer's endpoint is pushed back once it has.
    if (rec && (rec.fastEp !== null || rec.reconciling)) this.peers.repoint.delivered(rec);
  }

  /** RTT of one STUN Binding to a relay over the public socket (relay choice). */
  private async measure(server: string): Promise<number | null> {
    const t0 = this.clock.now();
    const mapped = await this.stun.query(server);
    return mapped === null ? null : this.clock.now() - t0;
  }
}
