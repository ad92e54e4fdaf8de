// Magicsock's relayed paths: the glue between its peers and relayconn.ts (one TURN allocation on
// the control server's best relay) and relaypath.ts (each peer's relayed path machine). Each peer
// publishes its relayed address; our allocation permits and sends to exactly those, and what
// arrives through it is accepted only from the relayed address the peer itself published.
// Until a direct path answers, WireGuard's packets go this way as soon as a disco pong through the
// relay confirms it.

import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { parseEndpoint } from './addr.js';
import { classify } from './demux.js';
import type { DiscoMessage } from './disco.js';
import type { PeerEndpoint } from './endpoint.js';
import type { Counters, MagicSockOptions } from './magicsock-api.js';
import { RelayConn } from './relayconn.js';
import { RelayPath } from './relaypath.js';

export interface RelayIo {
  clock: Clock;
  log: Logger;
  c: Counters;
  closed(): boolean;
  peers(): Iterable<PeerEndpoint>;
  peer(id: string): PeerEndpoint | undefined;
  /** Sends on the public socket (TURN over UDP shares it). */
  send(b: Buffer, port: number, ip: string): void;
  /** RTT of one STUN Binding to a relay over the public socket (relay choice). */
  measure(server: string): Promise<number | null>;
  /** An authenticated disco message from a known peer, or null (counted). */
  openDisco(b: Buffer): { rec: PeerEndpoint; message: DiscoMessage } | null;
  seal(rec: PeerEndpoint, m: DiscoMessage): Buffer;
  toWireGuard(id: string, msg: Buffer): void;
  /** A pong answered a user's ping (magicsock.ping). */
  pong(txid: Buffer, rttMs: number, via: string): void;
  /** The relayed path of this peer came up while it has no direct one: send what waits. */
  flushHeld(rec: PeerEndpoint): void;
  emitView(rec: PeerEndpoint): void;
  /** The relayed path came up under a suspect direct path: the traffic moves to it. */
  relayUnderSuspect(rec: PeerEndpoint): void;
  /** Our relayed address changed (null: no allocation). */
  relayedChanged(addr: string | null): void;
}

type RelayOptions = Pick<MagicSockOptions, 'fetchRelayOffers' | 'relayTiming' | 'turnTiming' | 'relayTcpAfterMs'>;

export class RelayGlue {
  readonly conn: RelayConn | null;
  /** Our allocation's relayed "ip:port", or null. */
  relayedAddr: string | null = null;
  /** A peer's relayed address → its id (WireGuard and disco arriving through our relay). */
  private readonly byRelay = new Map<string, string>();

  constructor(
    private readonly io: RelayIo,
    private readonly o: RelayOptions,
  ) {
    const fetch = o.fetchRelayOffers;
    this.conn = fetch
      ? new RelayConn({
          log: io.log,
          clock: io.clock,
          fetchOffers: () => fetch(),
          shared: { send: (b, ip, port) => io.send(b, port, ip) },
          measure: (server) => io.measure(server),
          onData: (from, data) => this.onData(from, data),
          onChange: () => this.onChange(),
          ...(o.turnTiming ? { turnTiming: o.turnTiming } : {}),
          ...(o.relayTcpAfterMs !== undefined ? { tcpAfterMs: o.relayTcpAfterMs } : {}),
        })
      : null;
  }

  /** The relayed path machine of a new peer. */
  pathFor(rec: PeerEndpoint): RelayPath {
    const io = this.io;
    return new RelayPath({
      clock: io.clock,
      timing: this.o.relayTiming,
      ping: (target, txid) => {
        io.c.disco_ping_tx++;
        this.sendVia(target, io.seal(rec, { type: 'ping', txid }), 'disco');
      },
      // Also the one signal on the side that only receives: its orphaned allocation hears nothing.
      missed: () => this.conn?.checkNow(),
      idle: () => rec.idle(io.clock.now()),
      leads: () => rec.leads(),
      changed: (st) => {
        if (rec.removed) return;
        if (st.up && rec.active !== null && rec.machine.state().suspect) io.relayUnderSuspect(rec);
        if (st.up && rec.active === null) {
          io.log.info('relayed path', { peer: rec.id, target: st.target, rttMs: st.rttMs, relay: this.conn?.server() });
          io.flushHeld(rec);
        }
        io.emitView(rec);
      },
    });
  }

  removed(rec: PeerEndpoint): void {
    if (rec.relayTarget !== null && this.byRelay.get(rec.relayTarget) === rec.id) this.byRelay.delete(rec.relayTarget);
  }

  /** Whether the peer's relayed path is confirmed (WireGuard may take it). */
  up(rec: PeerEndpoint): boolean {
    return rec.relayTarget !== null && rec.relay.state().up;
  }

  /** WireGuard through the relay once it is confirmed for this peer (see relaypath.ts). */
  sendWireGuard(rec: PeerEndpoint, msg: Buffer): boolean {
    const t = rec.relayTarget;
    if (t === null || !rec.relay.state().up) return false;
    this.io.c.tx_wireguard++;
    return this.sendVia(t, msg, 'wireguard');
  }

  /**
   * WireGuard's traffic to this peer, going through the relay, went unanswered: check our
   * allocation at once rather than at the next 10 s keepalive (a NAT rebinding orphans it
   * silently; the check re-allocates and the peer learns the new address), and ping the path.
   */
  suspect(rec: PeerEndpoint): void {
    if (rec.relayTarget === null || !rec.relay.state().up) return;
    this.conn?.checkNow();
    rec.relay.pingNow();
  }

  /** Why a peer has no relayed path, for its view (null: nothing in the way). */
  noRelayWhy(rec: PeerEndpoint): string | null {
    if (!this.conn) return 'no relay is configured';
    return rec.relayTarget === null && this.relayedAddr !== null ? 'the peer has no relay allocation yet' : this.conn.unavailableReason();
  }

  private sendVia(target: string, b: Buffer, what: 'disco' | 'wireguard'): boolean {
    const c = this.io.c;
    const ok = this.conn?.send(target, b) ?? false;
    if (ok) {
      c.tx_relay++;
      if (what === 'disco') c.tx_disco++;
    } else c.relay_send_failed++;
    return ok;
  }

  private onData(from: string, data: Buffer): void {
    const io = this.io;
    const c = io.c;
    const kind = classify(data);
    if (kind === 'wireguard') {
      const id = this.byRelay.get(from);
      if (id === undefined) {
        c.relay_bad_source++;
        return;
      }
      c.rx_relay_wireguard++;
      // The peer sends through the relay while we send direct: it has lost the direct path (a NAT
      // forgot our mapping), so ours is suspect too — our packets may be the ones not arriving.
      // Often a false alarm (at every join one side goes direct first; the other's packets keep
      // coming relayed): suspect() ignores a path that answered within the re-probe window and
      // re-probes at most once per keepalive interval after an answered re-probe (path.ts).
      const rec = io.peer(id);
      if (rec && rec.active !== null) rec.machine.suspect();
      return io.toWireGuard(id, data);
    }
    if (kind !== 'disco') {
      c.relay_bad_source++;
      return;
    }
    c.rx_relay_disco++;
    const opened = io.openDisco(data);
    if (!opened) return;
    const { rec, message: m } = opened;
    // Only from the relayed address this very peer published: another member cannot speak for it.
    if (rec.relayTarget !== from) {
      c.relay_bad_source++;
      return;
    }
    if (m.type === 'ping') {
      c.disco_ping_rx++;
      c.disco_pong_tx++;
      this.sendVia(from, io.seal(rec, { type: 'pong', txid: m.txid, observed: from }), 'disco');
      // Its ping came through: our side confirms without waiting a round, or rests (relaypath.ts).
      rec.relay.onPing();
      return;
    }
    c.disco_pong_rx++;
    const rtt = rec.relay.onPong(m.txid);
    if (rtt === null) {
      c.disco_pong_unmatched++;
      return;
    }
    io.pong(m.txid, rtt, `relay ${this.conn?.server() ?? '?'}`);
  }

  private onChange(): void {
    if (this.io.closed()) return;
    const now = this.conn?.relayed() ?? null;
    const changed = now !== this.relayedAddr;
    this.relayedAddr = now;
    this.updateTargets();
    for (const rec of this.io.peers()) this.io.emitView(rec);
    if (changed) this.io.relayedChanged(now);
  }

  /** Each peer's relayed target follows our allocation and the address the peer published. */
  updateTargets(): void {
    const conn = this.conn;
    if (!conn) return;
    const hosts = conn.relayHosts();
    const permits: string[] = [];
    const targets = new Map<PeerEndpoint, string | null>();
    for (const rec of this.io.peers()) {
      let target: string | null = null;
      for (const r of rec.peer.relayed ?? []) {
        const ep = parseEndpoint(r);
        if (ep && hosts.has(ep.ip)) {
          target = `${ep.ip}:${ep.port}`;
          break;
        }
        this.io.c.relay_target_refused++;
      }
      if (target !== null) permits.push(target);
      targets.set(rec, this.relayedAddr !== null ? target : null);
    }
    const installed = conn.permit(permits);
    const fresh: Array<[PeerEndpoint, string]> = [];
    for (const [rec, target] of targets) {
      if (rec.relayTarget === target) continue;
      if (rec.relayTarget !== null && this.byRelay.get(rec.relayTarget) === rec.id) this.byRelay.delete(rec.relayTarget);
      rec.relayTarget = target;
      this.io.log.debug('relayed path target', { peer: rec.id, target, published: rec.peer.relayed ?? [] });
      if (target !== null) {
        this.byRelay.set(target, rec.id);
        fresh.push([rec, target]);
      }
      rec.relay.setTarget(target);
    }
    // The probe setTarget just sent left before the relay had the new permission, which takes it
    // a round trip or two, and was dropped: probe again once it is there (relaypath.ts probeNow).
    if (fresh.length > 0) {
      void installed.then(() => {
        for (const [rec, target] of fresh) if (!rec.removed && rec.relayTarget === target) rec.relay.probeNow();
      });
    }
  }
}
