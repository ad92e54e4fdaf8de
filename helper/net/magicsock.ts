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
import { parseEndpoint, type Endpoint } from './addr.js';
import { isCandidateAllowed, makePolicy, validatePeerCandidates, type AddressPolicy } from './candidates.js';
import { systemClock, type Clock } from '../core/clock.js';
import { BirthdayRunner } from './birthday-runner.js';
import { classify } from './demux.js';
import { LocalView } from './local-view.js';
import { DiscoBox, type DiscoMessage } from './disco.js';
import { PEER_ID_RE, PeerEndpoint, validatePeer } from './endpoint.js';
import { FastPath, reconcileFastPath, type FastPathCounters, type ReconcileIo } from './fastpath.js';
import { isHandshakeInitiation, releaseHeld, WG_HANDSHAKE_INITIATION, WG_HANDSHAKE_RESPONSE } from './handshake.js';
import { newCounters, type Counters, type MagicCounters, type MagicPeer, type MagicSockOptions, type PeerProbes, type PingResult } from './magicsock-api.js';
import { PathMachine, type PathState as DirectState } from './path.js';
import { MAX_PREDICTED_PER_PEER, predictionWindow } from './portpredict.js';
import { RelayGlue } from './relay-glue.js';
import type { RelayConn, RelayLatency } from './relayconn.js';
import { combinePath, type ViewState } from './relaypath.js';
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
/** A mapping opened by our last packet is assumed gone after this much silence towards a candidate. */
const REPRIME_AFTER_MS = 20_000;
const PENDING_CMM_MS = 30_000;
const MAX_PENDING_CMM = 256;
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
  private readonly peers = new Map<string, PeerEndpoint>();
  private readonly byDisco = new Map<string, string>();
  private readonly byAddr = new Map<string, string>();
  private readonly relay: RelayGlue;
  private readonly bday: BirthdayRunner;
  private readonly fastIo: ReconcileIo<PeerEndpoint>;
  private readonly pendingCmm = new Map<string, { candidates: string[]; at: number }>();
  private readonly userPings = new Map<string, (rtt: number, via: string) => void>();
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
    this.sock = new PublicSocket({
      bindAddress: o.bindAddress ?? '0.0.0.0',
      port: o.port,
      primingTtl: ttl,
      onMessage: (m, ip, port) => this.onMessage(m, ip, port),
      // In the order datagrams reach the kernel (primes overtake queued sends): a NAT's order.
      onSend: (ip, port) => this.self.noteSend(ip, port),
      onError: (err) => {
        this.c.socket_errors++;
        this.log.debug('public socket error', { err });
      },
    });
    this.stun = new StunClient((b, ip, port) => this.send(b, port, ip), this.clock);
    this.self = new LocalView({
      clock: this.clock,
      log: this.log,
      c: this.c,
      policy: this.policy,
      stun: this.stun,
      stunServers: () => o.stunServers(),
      bindAddress: o.bindAddress ?? '0.0.0.0',
      ...(o.stunRefreshMs !== undefined ? { stunRefreshMs: o.stunRefreshMs } : {}),
      ...(o.networkInterfaces ? { networkInterfaces: o.networkInterfaces } : {}),
      port: () => this.boundPort,
      running: () => this.started && !this.closed,
      closed: () => this.closed,
      natChanged: (nat) => this.emit('nat', nat),
      candidatesChanged: (cands) => {
        this.emit('candidates', cands);
        for (const rec of this.peers.values()) void this.callMeMaybe(rec);
      },
    });
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
    this.fastIo = { closed: () => this.closed, wgPort: () => o.wgPort(), pushEndpoint: (rec, ep) => this.pushWgEndpoint(rec, ep), c: this.c, log: this.log };
    this.relay = new RelayGlue(
      {
        clock: this.clock,
        log: this.log,
        c: this.c,
        closed: () => this.closed,
        peers: () => this.peers.values(),
        peer: (id) => this.peers.get(id),
        send: (b, port, ip) => this.send(b, port, ip),
        measure: (server) => this.measure(server),
        openDisco: (b) => this.openDisco(b),
        seal: (rec, m) => this.box.seal(rec.peer.discoPublicKey, m),
        toWireGuard: (id, msg) => this.toWireGuard(id, msg),
        pong: (txid, rtt, via) => this.userPings.get(txid.toString('hex'))?.(rtt, via),
        flushHeld: (rec) => this.flushHeld(rec),
        emitView: (rec) => this.emitView(rec),
        relayUnderSuspect: (rec) => this.onPathState(rec, rec.machine.state()),
        relayedChanged: (addr) => this.emit('relayed', addr),
      },
      o,
    );
    this.bday = new BirthdayRunner({
      clock: this.clock,
      log: this.log,
      c: this.c,
      nat: () => ({ mapping: this.self.mapping, portDelta: this.self.portDelta() }),
      isLan: (ep) => this.self.isLan(ep),
      closed: () => this.closed,
      peers: () => this.peers.values(),
      ping: (rec, txid) => this.box.seal(rec.peer.discoPublicKey, { type: 'ping', txid }),
      send: (b, port, ip) => this.send(b, port, ip),
      openSockets: (so) =>
        new SpraySockets({
          ...so,
          bindAddress: o.bindAddress ?? '0.0.0.0',
          onError: (err) => {
            this.c.socket_errors++;
            this.log.debug('spray socket error', { err });
          },
        }),
      primingTtl: ttl,
      fromPeer: (rec, msg) => this.openDisco(msg)?.rec === rec,
      deliver: (msg, ip, port) => this.onMessage(msg, ip, port),
      callMeMaybe: (rec, n) => void this.callMeMaybe(rec, n),
      pathSent: () => this.pathSent(),
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
    if (this.closed) return;
    const want = new Map<string, MagicPeer>();
    for (const p of peers) {
      const v = validatePeer(p, this.box.publicKey, this.policy);
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
    this.relay.updateTargets();
  }

  handleCallMeMaybe(peerId: string, candidates: string[], spraySockets = 0): void {
    if (this.closed || typeof peerId !== 'string' || !PEER_ID_RE.test(peerId)) return;
    const valid = validatePeerCandidates(candidates, this.policy);
    this.c.cmm_received++;
    const rec = this.peers.get(peerId);
    if (rec) {
      rec.machine.callMeMaybe(this.expandPredicted(rec, valid));
      if (Number.isInteger(spraySockets) && spraySockets > 0) this.bday.startSpray(rec, valid, spraySockets);
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
    this.self.close();
    for (const id of [...this.peers.keys()]) this.removePeer(id);
    this.userPings.clear();
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
      if (!this.bday.answered(rec, m.txid, from)) this.c.disco_pong_unmatched++;
      return;
    }
    this.userPings.get(m.txid.toString('hex'))?.(rtt, from);
  }

  /** An authenticated disco message from a known peer, or null (counted). */
  private openDisco(b: Buffer): { rec: PeerEndpoint; message: DiscoMessage } | null {
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

  private sendDisco(rec: PeerEndpoint, ep: Endpoint, b: Buffer): void {
    this.c.tx_disco++;
    const key = `${ep.ip}:${ep.port}`;
    rec.lastSent.set(key, this.clock.now());
    rec.sockFor(key, this.sock).send(b, ep.port, ep.ip);
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
   * A call-me-maybe from a peer behind a sequential symmetric NAT: the endpoints it names beyond
   * its published candidates are its predicted ports towards us; add a window around each (other
   * hosts behind its NAT may have taken ports it never saw). Probed within the peer's budget.
   */
  private expandPredicted(rec: PeerEndpoint, valid: string[]): string[] {
    const delta = rec.peer.portDelta ?? 0;
    if (rec.peer.natHint !== 'endpoint-dependent' || delta === 0) {
      this.log.debug('call-me-maybe', { peer: rec.peer.id, candidates: valid, natHint: rec.peer.natHint, delta });
      return valid;
    }
    const told = valid.filter((c) => !rec.peer.candidates.includes(c) && !this.self.isLan(c));
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
      rec.sockFor(rec.activeKey, this.sock).send(msg, a.port, a.ip);
      return;
    }
    if (this.relay.sendWireGuard(rec, msg)) return;
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

  // --- peers ---------------------------------------------------------------------------------------

  private addPeer(p: MagicPeer): void {
    try {
      this.box.addPeer(p.discoPublicKey);
    } catch (err) {
      this.c.peers_rejected++;
      this.log.warn('peer rejected', { peer: p.id, err });
      return;
    }
    const id = p.id;
    const rec = new PeerEndpoint(p, this.box.publicKey, this.clock.now());
    rec.relay = this.relay.pathFor(rec);
    rec.machine = new PathMachine(
      {
        clock: this.clock,
        gate: this.primingTtl > 0,
        isLan: (ep) => this.self.isLan(ep),
        localNat: () => this.self.mapping,
        behindNat: () => this.self.behindNat(),
        peerCallOpensGate: () => !(this.self.mapping === 'endpoint-dependent' && this.self.portDelta() !== 0),
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
    this.bday.added(rec);
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
    this.bday.removed(rec);
    this.relay.removed(rec);
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

  private machinePing(rec: PeerEndpoint, endpoint: string, txid: Buffer, lowTtl: boolean): void {
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
      rec.sockFor(endpoint, this.sock).prime(b, ep.port, ep.ip);
      return;
    }
    // The first packet towards a candidate (or the first after a long silence) is preceded by the
    // same ping at the priming TTL, so our NAT mapping exists before the peer's packets arrive.
    if (this.primingTtl > 0 && !this.self.isLan(endpoint) && (last === undefined || now - last > REPRIME_AFTER_MS)) {
      this.c.path_datagrams++;
      rec.sockFor(endpoint, this.sock).prime(b, ep.port, ep.ip);
    }
    this.sendDisco(rec, ep, b);
  }

  private async callMeMaybe(rec: PeerEndpoint, spraySockets = 0): Promise<void> {
    // The peer punches when this arrives: our priming packets must have left first.
    await this.sock.whenPrimed();
    if (rec.removed || this.closed) return;
    this.c.cmm_sent++;
    const mine = this.self.predictedTowards(rec.machine.candidates());
    if (mine.length > 0) {
      this.c.predict_cmm++;
      this.log.debug('call-me-maybe with predicted ports', { peer: rec.peer.id, predicted: mine });
    }
    try {
      // Predictions first: the peer keeps at most MAX_PEER_CANDIDATES.
      // With sockets to probe, our public address first: the peer probes the first IP it finds.
      const pub = spraySockets > 0 ? this.self.publicAddress : null;
      const first = pub !== null ? [pub, ...mine.filter((c) => c !== pub)] : mine;
      this.o.sendCallMeMaybe(rec.peer.id, [...first, ...this.self.candidates.filter((c) => !first.includes(c))], spraySockets);
    } catch (err) {
      this.log.warn('sendCallMeMaybe failed', { peer: rec.peer.id, err });
    }
  }

  private onPathState(rec: PeerEndpoint, s: DirectState): void {
    if (rec.removed) return;
    const id = rec.peer.id;
    // A suspect direct path (its traffic went unanswered) hands the traffic to the relay as soon
    // as the relay answers, while it is re-probed: a NAT rebinding then costs the time to notice.
    const viaRelay = s.suspect && this.relay.up(rec);
    if (s.kind === 'direct' && s.endpoint && !viaRelay) {
      rec.suspectEp = null;
      if (s.endpoint !== rec.activeKey) {
        rec.active = parseEndpoint(s.endpoint);
        rec.activeKey = s.endpoint;
        this.learnAddress(rec, s.endpoint);
        this.flushHeld(rec);
        rec.budget.end();
        this.log.info('direct path', { peer: id, endpoint: s.endpoint, rttMs: s.rttMs, predicted: rec.predicted.has(s.endpoint), sent: this.pathSent() });
      }
    } else if (rec.active || rec.suspectEp !== null) {
      rec.active = null;
      rec.activeKey = null;
      if (s.kind === 'direct') {
        if (rec.suspectEp === null) this.log.info('direct path suspect: traffic through the relay while re-probing', { peer: id, endpoint: s.endpoint });
        rec.suspectEp = s.endpoint;
      } else {
        rec.suspectEp = null;
        this.log.info('path lost', { peer: id, reason: s.reason });
        // The winning socket's mapping is gone with the path; another attempt may find a new one.
        this.bday.pathLost(rec);
      }
      // Our NAT may have given us a new public port (a rebinding): ask STUN now, not in a minute,
      // so the peer learns the new candidate (call-me-maybe) and the direct path can come back.
      this.self.recheck();
    } else if (s.kind === 'unreachable' && !rec.unreachableLogged) {
      rec.unreachableLogged = true;
      this.log.debug('no direct path yet', { peer: id, reason: s.reason, sent: this.pathSent() });
    }
    if (this.fast) void reconcileFastPath(this.fast, rec, this.fastIo);
    // A direct path carries everything: the relayed one rests until the direct one is lost or suspect.
    rec.relay.setPaused(s.kind === 'direct' && !s.suspect);
    this.emitView(rec);
  }

  private viewOf(rec: PeerEndpoint): ViewState {
    return combinePath({
      direct: rec.machine.state(),
      relay: rec.relay.state(),
      relayServer: this.relay.conn?.server() ?? null,
      noRelayWhy: this.relay.noRelayWhy(rec),
    });
  }

  private emitView(rec: PeerEndpoint): void {
    if (rec.removed) return;
    const v = this.viewOf(rec);
    const l = rec.view;
    if (l && l.kind === v.kind && l.endpoint === v.endpoint && l.reason === v.reason && l.fastPath === v.fastPath && l.rttMs === v.rttMs) return;
    rec.view = v;
    this.emit('path', rec.peer.id, v);
  }

  /** RTT of one STUN Binding to a relay over the public socket (relay choice). */
  private async measure(server: string): Promise<number | null> {
    const t0 = this.clock.now();
    const mapped = await this.stun.query(server);
    return mapped === null ? null : this.clock.now() - t0;
  }

  /** WireGuard datagrams from this address now belong to this peer. */
  private learnAddress(rec: PeerEndpoint, addr: string): void {
    const id = rec.peer.id;
    const forgotten = rec.learn(addr);
    if (forgotten !== null && this.byAddr.get(forgotten) === id) this.byAddr.delete(forgotten);
    this.byAddr.set(addr, id);
  }

  private flushHeld(rec: PeerEndpoint): void {
    const a = rec.active;
    const viaRelay = !a && this.relay.up(rec);
    if (!a && !viaRelay) return;
    const { send, dropped } = releaseHeld(rec.handshake, rec.hold.take(), this.clock.now());
    this.c.wg_crossing_dropped += dropped;
    if (!a) {
      for (const m of send) {
        if (this.relay.sendWireGuard(rec, m)) this.c.wg_flushed++;
        else rec.handshake.unsent(m); // not on the wire: the guard must not count it (handshake.ts)
      }
      return;
    }
    const sock = rec.sockFor(rec.activeKey, this.sock);
    for (const m of send) {
      this.c.wg_flushed++;
      this.c.tx_wireguard++;
      sock.send(m, a.port, a.ip);
    }
  }

  private pushWgEndpoint(rec: PeerEndpoint, endpoint: string): Promise<boolean> {
    return this.o.setWgEndpoint(rec.peer.wgPublicKey, endpoint).then(
      () => true,
      (err: Error) => {
        this.c.wg_endpoint_errors++;
        this.log.warn('could not set the WireGuard endpoint', { peer: rec.peer.id, endpoint, err });
        return false;
      },
    );
  }
}
