// The peers magicsock knows and their lifecycle: added (disco key, direct path machine, relayed
// path, WireGuard proxy port, birthday probing, a call it made before we knew it), changed (new
// candidates, a new WireGuard key), removed; found by id, by disco key and by the source addresses
// that spoke authenticated disco for them (WireGuard from those belongs to them). When a peer's
// path changes: its active endpoint, the WireGuard packets held meanwhile, the fast path, and the
// view players see. Everything it sends or opens goes through PeerTableIo, so that it runs in unit
// tests with fake sockets and a clock.

import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { parseEndpoint } from './addr.js';
import type { BirthdayRunner } from './birthday-runner.js';
import type { AddressPolicy } from './candidates.js';
import type { DiscoBox } from './disco.js';
import type { DiscoExchange, DiscoSocket } from './disco-exchange.js';
import { PeerEndpoint, validatePeer } from './endpoint.js';
import type { FastPath } from './fastpath.js';
import { isHandshakeInitiation, releaseHeld } from './handshake.js';
import { pathSent, type Counters, type MagicPeer } from './magicsock-api.js';
import { PathMachine, type PathOptions, type PathState as DirectState } from './path.js';
import type { RelayGlue } from './relay-glue.js';
import { combinePath, type ViewState } from './relaypath.js';
import type { WgProxy } from './wgproxy.js';
import { WgRepoint } from './wg-repoint.js';

export interface PeerTableIo {
  clock: Clock;
  log: Logger;
  c: Counters;
  policy: AddressPolicy;
  closed(): boolean;
  box: Pick<DiscoBox, 'publicKey' | 'addPeer' | 'removePeer'>;
  /** What every peer's direct path machine shares (ours: NAT, LAN, gate, timing). */
  pathOptions: Omit<PathOptions, 'io' | 'peerNat'>;
  disco: Pick<DiscoExchange, 'probe' | 'callMeMaybe' | 'added'>;
  relay: Pick<RelayGlue, 'pathFor' | 'removed' | 'up' | 'sendWireGuard' | 'noRelayWhy' | 'updateTargets'>;
  /** The relay our allocation is on (the view names it), or null. */
  relayServer(): string | null;
  birthday: Pick<BirthdayRunner, 'added' | 'removed' | 'pathLost'> & Partial<Pick<BirthdayRunner, 'waiting'>>;
  proxy: Pick<WgProxy, 'add' | 'remove'>;
  /** The Linux fast path, or null. */
  fast: Pick<FastPath, 'set'> | null;
  /** Moves the peer on or off the fast path to match its direct path (fastpath.ts). */
  reconcileFast(rec: PeerEndpoint): void;
  sockFor(rec: PeerEndpoint, key: string | null): DiscoSocket;
  setWgEndpoint(wgPublicKey: string, endpoint: string): Promise<void>;
  /** The peer's view changed (magicsock's 'path' event). */
  viewChanged(id: string, view: ViewState): void;
  /** A direct path died or went quiet: our NAT may have moved us (local-view.ts recheck). */
  natSuspect(): void;
  isLan(endpoint: string): boolean;
  /** Some peer's direct path changed state (local-view.ts releases held addresses). */
  pathsChanged(): void;
}

export class PeerTable {
  private readonly peers = new Map<string, PeerEndpoint>();
  private readonly discoKeys = new Map<string, string>();
  private readonly addrs = new Map<string, string>();
  private metricProbeMs = 0;
  /** Points WireGuard back at a fast-path peer after a handshake message roamed it to the proxy. */
  readonly repoint: WgRepoint<PeerEndpoint>;

  constructor(private readonly io: PeerTableIo) {
    this.repoint = new WgRepoint({ clock: io.clock, log: io.log, c: io.c, push: (rec, ep) => this.pushWgEndpoint(rec, ep) });
  }

  get size(): number {
    return this.peers.size;
  }

  get(id: string): PeerEndpoint | undefined {
    return this.peers.get(id);
  }

  values(): IterableIterator<PeerEndpoint> {
    return this.peers.values();
  }

  byDisco(key: string): PeerEndpoint | undefined {
    const id = this.discoKeys.get(key);
    return id === undefined ? undefined : this.peers.get(id);
  }

  /** The peer whose disco came from this "ip:port" (its WireGuard datagrams), if any. */
  byAddress(addr: string): string | undefined {
    return this.addrs.get(addr);
  }

  /** The party's peers as the control plane lists them: added, changed, removed. */
  set(peers: MagicPeer[]): void {
    const io = this.io;
    if (io.closed()) return;
    const want = new Map<string, MagicPeer>();
    for (const p of peers) {
      const v = validatePeer(p, io.box.publicKey, io.policy);
      if (!v) {
        io.c.peers_rejected++;
        continue;
      }
      if (!want.has(v.id)) want.set(v.id, v);
    }
    for (const id of [...this.peers.keys()]) if (!want.has(id)) this.remove(id);
    for (const p of want.values()) {
      const rec = this.peers.get(p.id);
      if (!rec || rec.peer.discoPublicKey !== p.discoPublicKey) {
        if (rec) this.remove(p.id);
        this.add(p);
        continue;
      }
      const oldWg = rec.peer.wgPublicKey;
      rec.peer = p;
      rec.machine.setCandidates(p.candidates);
      if (oldWg !== p.wgPublicKey && rec.proxyPort) void this.pushWgEndpoint(rec, rec.fastEp ?? `127.0.0.1:${rec.proxyPort}`);
    }
    io.relay.updateTargets();
  }

  /** Extra RTT probes on direct paths every `ms` while somebody watches metrics (0 = off). */
  setMetricProbing(ms: number): void {
    this.metricProbeMs = ms;
    for (const rec of this.peers.values()) rec.machine.setMetricProbing(ms);
  }

  private add(p: MagicPeer): void {
    const io = this.io;
    try {
      io.box.addPeer(p.discoPublicKey);
    } catch (err) {
      io.c.peers_rejected++;
      io.log.warn('peer rejected', { peer: p.id, err });
      return;
    }
    const id = p.id;
    const rec = new PeerEndpoint(p, io.box.publicKey, io.clock.now());
    rec.relay = io.relay.pathFor(rec);
    rec.machine = new PathMachine(
      {
        ...io.pathOptions,
        peerNat: () => rec.peer.natHint,
        relayed: () => rec.relay.state().up,
        // One side of a pair keeps the direct path alive, the other answers (path.ts).
        leads: () => rec.leads(),
        // Behind a random symmetric NAT towards a peer with one mapping, only birthday probing finds a path.
        waiting: () => io.birthday.waiting?.(rec) ?? false,
        idle: () => rec.idle(io.clock.now()),
        io: {
          ping: (ep, txid, lowTtl) => io.disco.probe(rec, ep, txid, lowTtl),
          callMeMaybe: () => void io.disco.callMeMaybe(rec),
          state: (s) => this.onPathState(rec, s),
          recheckNat: () => io.natSuspect(),
        },
      },
      p.candidates,
    );
    this.peers.set(id, rec);
    this.discoKeys.set(p.discoPublicKey, id);
    io.proxy.add(id).then(
      (port) => {
        if (rec.removed) return;
        rec.proxyPort = port;
        if (rec.fastEp === null) void this.pushWgEndpoint(rec, `127.0.0.1:${port}`);
      },
      (err: Error) => {
        if (!rec.removed) io.log.warn('could not open the WireGuard proxy port', { peer: id, err });
      },
    );
    rec.machine.start();
    rec.machine.setMetricProbing(this.metricProbeMs);
    io.birthday.added(rec);
    io.disco.added(rec);
  }

  remove(id: string): void {
    const io = this.io;
    const rec = this.peers.get(id);
    if (!rec) return;
    rec.removed = true;
    this.repoint.cancel(rec);
    rec.machine.close();
    rec.relay.close();
    io.birthday.removed(rec);
    io.relay.removed(rec);
    this.peers.delete(id);
    this.discoKeys.delete(rec.peer.discoPublicKey);
    io.box.removePeer(rec.peer.discoPublicKey);
    for (const a of rec.known) if (this.addrs.get(a) === id) this.addrs.delete(a);
    io.proxy.remove(id);
    if (rec.fastEp !== null && io.fast) {
      rec.fastEp = null;
      io.fast.set(id, null).catch((err: Error) => io.log.warn('fast path: removal failed', { peer: id, err }));
    }
    io.pathsChanged();
  }

  private onPathState(rec: PeerEndpoint, s: DirectState): void {
    const io = this.io;
    if (rec.removed) return;
    const id = rec.peer.id;
    // A suspect direct path (its traffic went unanswered) hands the traffic to the relay as soon
    // as the relay answers, while it is re-probed: a NAT rebinding then costs the time to notice.
    const viaRelay = s.suspect && io.relay.up(rec);
    if (s.kind === 'direct' && s.endpoint && !viaRelay) {
      rec.suspectEp = null;
      if (s.endpoint !== rec.activeKey) {
        rec.active = parseEndpoint(s.endpoint);
        rec.activeKey = s.endpoint;
        this.learnAddress(rec, s.endpoint);
        this.flushHeld(rec);
        rec.budget.end();
        io.log.info('direct path', { peer: id, endpoint: s.endpoint, rttMs: s.rttMs, predicted: rec.predicted.has(s.endpoint), sent: pathSent(io.c) });
      }
    } else if (rec.active || rec.suspectEp !== null) {
      rec.active = null;
      rec.activeKey = null;
      if (s.kind === 'direct') {
        if (rec.suspectEp === null) io.log.info('direct path suspect: traffic through the relay while re-probing', { peer: id, endpoint: s.endpoint });
        rec.suspectEp = s.endpoint;
      } else {
        rec.suspectEp = null;
        io.log.info('path lost', { peer: id, reason: s.reason });
        // The winning socket's mapping is gone with the path; another attempt may find a new one.
        io.birthday.pathLost(rec);
      }
      // Our NAT may have given us a new public port (a rebinding): ask STUN now, not in a minute,
      // so the peer learns the new candidate (call-me-maybe) and the direct path can come back.
      io.natSuspect();
    } else if (s.kind === 'unreachable' && !rec.unreachableLogged) {
      rec.unreachableLogged = true;
      io.log.debug('no direct path yet', { peer: id, reason: s.reason, sent: pathSent(io.c) });
    }
    io.reconcileFast(rec);
    // A direct path carries everything: the relayed one rests until the direct one is lost or suspect.
    rec.relay.setPaused(s.kind === 'direct' && !s.suspect);
    this.emitView(rec);
    io.pathsChanged();
  }

  /** Peers whose direct path to an internet address answers now (not suspect). */
  *directPeers(): Iterable<string> {
    for (const rec of this.peers.values()) {
      const s = rec.machine.state();
      if (s.kind === 'direct' && !s.suspect && s.endpoint !== null && !this.io.isLan(s.endpoint)) yield rec.peer.id;
    }
  }

  /**
   * The peers to call when our candidates change: those without a direct path that answers. A
   * working path does not need our new address (behind a per-flow NAT the old one stays listed
   * while such paths use it, local-view.ts); at rest in a 16-player lab party each STUN port move
   * of a CGNAT player called all 15 peers, which all punched back. A rebinding makes paths
   * suspect first, so those peers are still called.
   */
  *peersToCall(): Iterable<PeerEndpoint> {
    for (const rec of this.peers.values()) {
      const s = rec.machine.state();
      if (!(s.kind === 'direct' && !s.suspect)) yield rec;
    }
  }

  /** The relayed path came up under a suspect direct path: the traffic moves to it. */
  relayUnderSuspect(rec: PeerEndpoint): void {
    this.onPathState(rec, rec.machine.state());
  }

  viewOf(rec: PeerEndpoint): ViewState {
    return combinePath({
      direct: rec.machine.state(),
      relay: rec.relay.state(),
      relayServer: this.io.relayServer(),
      noRelayWhy: this.io.relay.noRelayWhy(rec),
    });
  }

  /** Tells magicsock's listeners the peer's view, when it differs from the last one told. */
  emitView(rec: PeerEndpoint): void {
    if (rec.removed) return;
    const v = this.viewOf(rec);
    const l = rec.view;
    if (l && l.kind === v.kind && l.endpoint === v.endpoint && l.reason === v.reason && l.fastPath === v.fastPath && l.rttMs === v.rttMs) return;
    rec.view = v;
    this.io.viewChanged(rec.peer.id, v);
  }

  /** WireGuard datagrams from this address now belong to this peer. */
  learnAddress(rec: PeerEndpoint, addr: string): void {
    const id = rec.peer.id;
    const forgotten = rec.learn(addr);
    if (forgotten !== null && this.addrs.get(forgotten) === id) this.addrs.delete(forgotten);
    this.addrs.set(addr, id);
  }

  /** A path answered: WireGuard's held packets leave on it (judged by the handshake guard). */
  flushHeld(rec: PeerEndpoint): void {
    const io = this.io;
    const a = rec.active;
    const viaRelay = !a && io.relay.up(rec);
    if (!a && !viaRelay) return;
    const { send, dropped } = releaseHeld(rec.handshake, rec.hold.take(), io.clock.now());
    io.c.wg_crossing_dropped += dropped;
    const inits = send.filter(isHandshakeInitiation).length;
    if (inits + dropped > 0) io.log.debug('wg handshake flushed', { peer: rec.id, sent: inits, dropped, via: a ? 'direct' : 'relayed' });
    if (!a) {
      for (const m of send) {
        if (io.relay.sendWireGuard(rec, m)) io.c.wg_flushed++;
        else rec.handshake.unsent(m); // not on the wire: the guard must not count it (handshake.ts)
      }
      return;
    }
    const sock = io.sockFor(rec, rec.activeKey);
    for (const m of send) {
      io.c.wg_flushed++;
      io.c.tx_wireguard++;
      sock.send(m, a.port, a.ip);
    }
  }

  /** Points WireGuard's endpoint for this peer at `endpoint`; false (counted, logged) on failure. */
  pushWgEndpoint(rec: PeerEndpoint, endpoint: string): Promise<boolean> {
    return this.io.setWgEndpoint(rec.peer.wgPublicKey, endpoint).then(
      () => true,
      (err: Error) => {
        this.io.c.wg_endpoint_errors++;
        this.io.log.warn('could not set the WireGuard endpoint', { peer: rec.peer.id, endpoint, err });
        return false;
      },
    );
  }
}
