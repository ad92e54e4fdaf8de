// Birthday probing (birthday.ts) run for magicsock's peers, with everything it sends, opens and
// hears behind BirthdayIo, so that it runs in unit tests with a fake socket set and clock.
//   hard side  no direct path to a peer that keeps one mapping: open SPRAY_SOCKETS sockets, prime a
//              mapping from each towards the peer, ask it to probe (call-me-maybe with
//              spray_sockets); the socket that hears the peer's disco becomes its pin
//   easy side  a peer opened sockets: probe random ports of its public IP, paced; the probe that is
//              answered names the peer's endpoint, handed to its path machine
// Per-peer state lives on the PeerEndpoint (endpoint.ts): attempts, timer, sockets, probes, pin.

import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { pooledRandomBytes } from '../core/random-pool.js';
import { isPrivate, parseEndpoint, type Endpoint } from './addr.js';
import { AttemptLimiter, ATTEMPT_MS, birthdayRole, MAX_CONCURRENT, RETRY_AFTER_MS, Spray, SPRAY_SOCKETS, sprayTarget, sprayTtl, START_AFTER_MS, type BirthdayRole, type NatView } from './birthday.js';
import { classify } from './demux.js';
import type { PeerEndpoint } from './endpoint.js';
import type { Counters } from './magicsock-api.js';
import type { PublicSocket } from './socket.js';
import type { SpraySockets, SpraySocketsOptions } from './spraysock.js';

/** Birthday probing waits this long at most for both NATs to be known. */
export const KNOW_NATS_WITHIN_MS = 30_000;
/**
 * ...and this long at most for the peer's relayed path, while one is on its way. Spraying is an
 * upgrade (hundreds of sockets and thousands of probes per pair): in a join storm it competed with
 * the first relayed paths and the control plane's membership news on the same busy event loop.
 */
export const RELAY_FIRST_MS = 8000;

export interface BirthdayIo {
  clock: Clock;
  log: Logger;
  c: Counters;
  /** Our NAT as STUN saw it. */
  nat(): NatView;
  isLan(endpoint: string): boolean;
  closed(): boolean;
  peers(): Iterable<PeerEndpoint>;
  /** A sealed disco ping to the peer. */
  ping(rec: PeerEndpoint, txid: Buffer): Buffer;
  /** Sends on the public socket (the easy side's probes). */
  send(b: Buffer, port: number, ip: string): void;
  /** The hard side's sockets (spraysock.ts). */
  openSockets(o: Pick<SpraySocketsOptions, 'count' | 'primingTtl' | 'onMessage'>): SpraySockets;
  primingTtl: number;
  /** Whether `msg` is authenticated disco from this very peer. */
  fromPeer(rec: PeerEndpoint, msg: Buffer): boolean;
  /** Hands a datagram to the public socket's demux (as if it had arrived there). */
  deliver(msg: Buffer, ip: string, port: number): void;
  callMeMaybe(rec: PeerEndpoint, spraySockets: number): void;
  /** Packets spent on path finding so far, for the logs. */
  pathSent(): object;
  /** Whether a relayed path to the peer is being set up and not yet answering (absent: never). */
  relayPending?(rec: PeerEndpoint): boolean;
}

export class BirthdayRunner {
  constructor(private readonly io: BirthdayIo) {}

  role(rec: PeerEndpoint): BirthdayRole | null {
    const hint = rec.peer.natHint;
    return birthdayRole(this.io.nat(), hint ? { mapping: hint, portDelta: rec.peer.portDelta ?? 0 } : null);
  }

  schedule(rec: PeerEndpoint, ms: number): void {
    rec.bdayTimer();
    if (rec.removed || this.io.closed()) return;
    rec.bdayTimer = this.io.clock.setTimeout(() => void this.openSprayIfUseful(rec), ms);
  }

  /** A new peer: look at it once the NATs have had a moment to be known. */
  added(rec: PeerEndpoint): void {
    this.schedule(rec, START_AFTER_MS);
  }

  /** The direct path through the pinned socket is gone: that mapping is too; try again. */
  pathLost(rec: PeerEndpoint): void {
    if (rec.pin === null) return;
    rec.unpin();
    this.schedule(rec, 0);
  }

  removed(rec: PeerEndpoint): void {
    this.end(rec);
    rec.unpin();
  }

  /**
   * The hard side: without a direct path to a peer that keeps one mapping, open SPRAY_SOCKETS
   * sockets, prime a mapping from each towards the peer's internet candidates, then ask the peer
   * to probe (call-me-maybe with spray_sockets). A socket that hears the peer becomes its pin.
   */
  async openSprayIfUseful(rec: PeerEndpoint): Promise<void> {
    const io = this.io;
    const { c, clock } = io;
    if (rec.removed || io.closed() || rec.active !== null || rec.pin !== null || rec.spraySocks !== null) return;
    if (this.role(rec) !== 'open-sockets') {
      // Our NAT or the peer's may not be known yet (STUN, the peer's first update): look again.
      const unknown = io.nat().mapping === 'unknown' || rec.peer.natHint === undefined || rec.peer.natHint === 'unknown';
      if (unknown && clock.now() - rec.addedAt < KNOW_NATS_WITHIN_MS) this.schedule(rec, START_AFTER_MS);
      return;
    }
    if (io.relayPending?.(rec) && clock.now() - rec.addedAt < RELAY_FIRST_MS) return this.schedule(rec, START_AFTER_MS);
    // The peer's public address is what its probes come from; private ones cost sockets × 1 packet.
    const internet = rec.peer.candidates.filter((x) => !io.isLan(x)).map(parseEndpoint).filter((e): e is Endpoint => e !== null);
    const publicOnes = internet.filter((e) => !isPrivate(e.ip));
    const targets = (publicOnes.length > 0 ? publicOnes : internet).slice(0, 2);
    if (targets.length === 0) return;
    if (this.busy('sockets')) return this.schedule(rec, RETRY_AFTER_MS);
    if (!rec.bday.begin(clock.now())) return;
    c.birthday_attempts++;
    const socks: SpraySockets = io.openSockets({
      count: SPRAY_SOCKETS,
      primingTtl: sprayTtl(io.primingTtl, rec.bday.attempts),
      onMessage: (m, ip, port, sock) => this.onSprayMessage(rec, socks, m, ip, port, sock),
    });
    rec.spraySocks = socks;
    const opened = await socks.open();
    if (rec.removed || io.closed() || rec.spraySocks !== socks || rec.active !== null) return void this.end(rec, socks);
    c.birthday_sockets += opened;
    // One sealed ping for every socket: priming packets die at a low TTL on the way (they only
    // open our mappings), and sealing 256-512 of them was a large part of an attempt's CPU.
    const ping = io.ping(rec, pooledRandomBytes(12));
    const sent = await socks.prime(() => ping, targets);
    c.birthday_opened += sent;
    c.path_datagrams += sent;
    if (rec.removed || io.closed() || rec.spraySocks !== socks) return void this.end(rec, socks);
    io.log.info('birthday: sockets open, asking the peer to probe', { peer: rec.peer.id, sockets: opened, towards: targets.map((t) => `${t.ip}:${t.port}`), attempt: rec.bday.attempts, ttl: sprayTtl(io.primingTtl, rec.bday.attempts) });
    io.callMeMaybe(rec, opened);
    rec.bdayTimer();
    rec.bdayTimer = clock.setTimeout(() => {
      if (rec.spraySocks !== socks) return;
      c.birthday_failed++;
      io.log.info('birthday: no probe arrived; staying relayed', { peer: rec.peer.id, attempt: rec.bday.attempts, sent: io.pathSent() });
      this.end(rec, socks);
      this.schedule(rec, rec.bday.nextGapMs());
    }, ATTEMPT_MS);
  }

  /** A datagram on a spray socket: the peer's first authenticated disco there wins the pin. */
  private onSprayMessage(rec: PeerEndpoint, socks: SpraySockets, msg: Buffer, ip: string, port: number, sock: PublicSocket): void {
    if (rec.pin?.sock === sock) return this.io.deliver(msg, ip, port);
    if (rec.removed || rec.spraySocks !== socks || classify(msg) !== 'disco') return;
    const from = `${ip}:${port}`;
    if (!this.io.fromPeer(rec, msg) || !rec.peer.candidates.includes(from)) return;
    socks.keep(sock);
    rec.spraySocks = null;
    rec.pin = { key: from, sock };
    rec.bdayTimer();
    this.io.c.birthday_hits++;
    rec.bday = new AttemptLimiter();
    this.io.log.info('birthday: the peer reached one of our sockets', { peer: rec.peer.id, endpoint: from, localPort: sock.port, sent: this.io.pathSent() });
    this.io.deliver(msg, ip, port);
  }

  private busy(what: 'sockets' | 'probes'): boolean {
    let n = 0;
    for (const r of this.io.peers()) if (what === 'sockets' ? r.spraySocks !== null : r.spray !== null) n++;
    return n >= MAX_CONCURRENT;
  }

  /** The easy side: the peer opened sockets; probe random ports of its public IP, paced. */
  startSpray(rec: PeerEndpoint, told: string[], sockets: number): void {
    const io = this.io;
    const ip = sprayTarget(told, rec.peer.candidates, (x) => io.isLan(x));
    const role = this.role(rec);
    const busy = this.busy('probes');
    if (role !== 'probe' || ip === null || rec.active !== null || busy || !rec.bday.begin(io.clock.now())) {
      io.c.birthday_refused++;
      io.log.debug('birthday: not probing', { peer: rec.peer.id, role, ip, direct: rec.active !== null, busy, attempts: rec.bday.attempts });
      return;
    }
    io.c.birthday_attempts++;
    rec.spray = { probes: new Spray(ip, io.clock.now()), txid: pooledRandomBytes(12), cancel: () => {} };
    io.log.info('birthday: probing the peer\'s ports', { peer: rec.peer.id, ip, sockets });
    this.sprayTick(rec);
  }

  private sprayTick(rec: PeerEndpoint): void {
    const io = this.io;
    const sp = rec.spray;
    if (sp === null) return;
    if (rec.removed || io.closed() || rec.active !== null) return this.endSpray(rec);
    const now = io.clock.now();
    // One sealed ping per batch: every probe carries the same txid, and disco has no replay
    // state that a repeated nonce would trip (sealing each of 2048 probes was ~10 % of the CPU
    // of a helper probing in a join storm).
    let ping: Buffer | null = null;
    for (const ep of sp.probes.due(now)) {
      const e = parseEndpoint(ep);
      if (!e) continue;
      ping ??= io.ping(rec, sp.txid);
      io.c.birthday_probes++;
      io.c.path_datagrams++;
      io.c.disco_ping_tx++;
      io.c.tx_disco++;
      // Not through sendDisco: thousands of one-off ports must not fill the priming bookkeeping.
      io.send(ping, e.port, e.ip);
    }
    const next = sp.probes.nextDueAt();
    if (next === null) {
      // The last probes are in flight: give them a moment to be answered.
      sp.cancel = io.clock.setTimeout(() => {
        if (rec.spray !== sp) return;
        io.c.birthday_failed++;
        io.log.info('birthday: no answer to our probes; staying relayed', { peer: rec.peer.id, probes: sp.probes.sent, sent: io.pathSent() });
        this.endSpray(rec);
      }, 1000);
      return;
    }
    // Batches of a few probes: a timer per probe would cost more than the probes.
    sp.cancel = io.clock.setTimeout(() => this.sprayTick(rec), Math.max(20, next - now));
  }

  /** A pong to one of our probes: that port of the peer's NAT leads to one of its sockets. */
  answered(rec: PeerEndpoint, txid: Buffer, from: string): boolean {
    const sp = rec.spray;
    if (sp === null || !txid.equals(sp.txid)) return false;
    this.io.c.birthday_hits++;
    this.io.log.info('birthday: a probe was answered', { peer: rec.peer.id, endpoint: from, probes: sp.probes.sent, sent: this.io.pathSent() });
    this.endSpray(rec);
    rec.bday = new AttemptLimiter();
    rec.machine.callMeMaybe([from]);
    return true;
  }

  private endSpray(rec: PeerEndpoint): void {
    const sp = rec.spray;
    if (sp === null) return;
    sp.cancel();
    sp.probes.stop();
    rec.spray = null;
    rec.bday.end(this.io.clock.now());
  }

  /** Ends a hard-side attempt (its sockets) and an easy-side one. */
  end(rec: PeerEndpoint, socks: SpraySockets | null = rec.spraySocks): void {
    rec.bdayTimer();
    this.endSpray(rec);
    if (socks !== null) {
      void socks.close();
      if (rec.spraySocks === socks) rec.spraySocks = null;
      rec.bday.end(this.io.clock.now());
    }
  }
}
