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
import { AttemptLimiter, ATTEMPT_MS, birthdayRole, concurrentAttempts, RETRY_AFTER_MS, Spray, SPRAY_PER_SECOND, SPRAY_PROBES, SLOT_PROBES, SPRAY_SOCKETS, sprayTarget, sprayTtl, START_AFTER_MS, type BirthdayRole, type NatView } from './birthday.js';
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
/**
 * While a relay carries the pair (or is on its way) there is no hurry either: the attempt waits
 * until the peer has punched (its call-me-maybe) and our pings then went unanswered for
 * START_AFTER_MS — plain punching had its chance — or this long after the peer was added at the
 * latest (a peer whose call never arrives). In a join storm the attempts then come after the
 * relayed paths and the easy pairs' punching instead of competing with them.
 */
export const BIRTHDAY_LATEST_MS = 12_000;
/** How often a waiting attempt looks whether the peer has punched yet. */
export const PUNCH_POLL_MS = 500;
/**
 * A probe request queued behind a running attempt (easy side) is probed only while the peer's
 * sockets are still open (ATTEMPT_MS from its call), with a second of margin for the latency, and
 * not with fewer than one second's probes (P(hit) 98 % at 250, see birthday.ts).
 */
export const QUEUED_MARGIN_MS = 1000;
export const QUEUED_MIN_PROBES = SPRAY_PER_SECOND;

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
  /** Whether a relayed path to the peer answers (absent: never). */
  relayUp?(rec: PeerEndpoint): boolean;
}

interface QueuedProbe {
  rec: PeerEndpoint;
  told: string[];
  sockets: number;
  at: number;
}

export class BirthdayRunner {
  /** An attempt of ours succeeded (either side): attempts may run MAX_CONCURRENT at once. */
  private succeeded = false;
  /** The priming TTL of our last successful hard-side attempt (sprayTtl's `learned`). */
  private learnedTtl: number | null = null;
  /**
   * Before any success: the TTL of our last failed attempt. The next peer's first attempt takes
   * the other one (behind a CGNAT the usual TTL always fails: one failure, not one per peer, then
   * finds the TTL that works; each failure costs the peer 2048 probes and us ATTEMPT_MS).
   */
  private failedTtl: number | null = null;
  /** The TTL each peer's attempts start from (fixed at its first attempt, sprayTtl's `learned`). */
  private readonly firstTtl = new WeakMap<PeerEndpoint, number | null>();
  /** Hard side: peers whose attempt waits for a free slot. */
  private readonly waiters = new Set<PeerEndpoint>();
  /** Easy side: the peers' probe requests that arrived while the slots were taken, oldest first. */
  private readonly queue: QueuedProbe[] = [];

  constructor(private readonly io: BirthdayIo) {}

  /**
   * Plain punching cannot reach this peer and an attempt of ours is still to come: the path
   * machine's connecting rounds only keep mappings primed meanwhile, and go slower (path.ts
   * PathOptions.waiting).
   */
  waiting(rec: PeerEndpoint): boolean {
    return !rec.removed && rec.active === null && rec.pin === null && rec.spraySocks === null && !rec.bday.spent && this.role(rec) === 'open-sockets';
  }

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
    this.waiters.delete(rec);
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
    const now = clock.now();
    const age = now - rec.addedAt;
    if (io.relayPending?.(rec) && age < RELAY_FIRST_MS) return this.schedule(rec, START_AFTER_MS);
    if ((io.relayPending?.(rec) === true || io.relayUp?.(rec) === true) && age < BIRTHDAY_LATEST_MS) {
      const punched = rec.machine.peerPunchedAt;
      if (punched === null) return this.schedule(rec, Math.min(PUNCH_POLL_MS, BIRTHDAY_LATEST_MS - age));
      if (now - punched < START_AFTER_MS) return this.schedule(rec, Math.min(punched + START_AFTER_MS - now, BIRTHDAY_LATEST_MS - age));
    }
    // The peer's public address is what its probes come from; private ones cost sockets × 1 packet.
    const internet = rec.peer.candidates.filter((x) => !io.isLan(x)).map(parseEndpoint).filter((e): e is Endpoint => e !== null);
    const publicOnes = internet.filter((e) => !isPrivate(e.ip));
    const targets = (publicOnes.length > 0 ? publicOnes : internet).slice(0, 2);
    if (targets.length === 0) return;
    if (this.busy('sockets')) {
      // Started again when a slot frees (kick()); the timer only backs that up.
      this.waiters.add(rec);
      return this.schedule(rec, RETRY_AFTER_MS);
    }
    if (!rec.bday.begin(clock.now())) return;
    this.waiters.delete(rec);
    c.birthday_attempts++;
    if (rec.bday.attempts === 1) this.firstTtl.set(rec, this.learnedTtl ?? this.otherTtl(this.failedTtl));
    const ttl = sprayTtl(io.primingTtl, rec.bday.attempts, this.firstTtl.get(rec) ?? null);
    const socks: SpraySockets = io.openSockets({
      count: SPRAY_SOCKETS,
      primingTtl: ttl,
      onMessage: (m, ip, port, sock) => this.onSprayMessage(rec, socks, ttl, m, ip, port, sock),
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
    io.log.info('birthday: sockets open, asking the peer to probe', { peer: rec.peer.id, sockets: opened, towards: targets.map((t) => `${t.ip}:${t.port}`), attempt: rec.bday.attempts, ttl });
    io.callMeMaybe(rec, opened);
    rec.bdayTimer();
    rec.bdayTimer = clock.setTimeout(() => {
      if (rec.spraySocks !== socks) return;
      c.birthday_failed++;
      if (!this.succeeded) this.failedTtl = ttl;
      io.log.info('birthday: no probe arrived; staying relayed', { peer: rec.peer.id, attempt: rec.bday.attempts, sent: io.pathSent() });
      this.end(rec, socks);
      this.schedule(rec, rec.bday.nextGapMs());
    }, ATTEMPT_MS);
  }

  /** A datagram on a spray socket: the peer's first authenticated disco there wins the pin. */
  private onSprayMessage(rec: PeerEndpoint, socks: SpraySockets, ttl: number, msg: Buffer, ip: string, port: number, sock: PublicSocket): void {
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
    this.succeeded = true;
    this.learnedTtl = ttl;
    this.io.log.info('birthday: the peer reached one of our sockets', { peer: rec.peer.id, endpoint: from, localPort: sock.port, ttl, sent: this.io.pathSent() });
    this.kick();
    this.io.deliver(msg, ip, port);
  }

  /** The priming TTL that is not `ttl` (of the two sprayTtl uses), or null. */
  private otherTtl(ttl: number | null): number | null {
    if (ttl === null) return null;
    const usual = sprayTtl(this.io.primingTtl, 1);
    return ttl === usual ? sprayTtl(this.io.primingTtl, 2) : usual;
  }

  private busy(what: 'sockets' | 'probes'): boolean {
    let n = 0;
    for (const r of this.io.peers()) if (what === 'sockets' ? r.spraySocks !== null : r.spray !== null && r.spray.probes.sent < SLOT_PROBES) n++;
    return n >= concurrentAttempts(this.succeeded);
  }

  /** A slot may have freed: waiting hard-side attempts look again, queued probe requests start. */
  private kick(): void {
    if (this.io.closed()) return;
    for (const rec of [...this.waiters]) {
      if (this.busy('sockets')) break;
      this.waiters.delete(rec);
      if (!rec.removed) void this.openSprayIfUseful(rec);
    }
    while (this.queue.length > 0 && !this.busy('probes')) {
      const q = this.queue.shift() as QueuedProbe;
      if (!q.rec.removed) this.startSpray(q.rec, q.told, q.sockets, q.at);
    }
  }

  /**
   * The easy side: the peer opened sockets; probe random ports of its public IP, paced. While
   * the slots are taken the request waits its turn (`calledAt`: when it arrived), and is probed
   * with what is left of the peer's sockets' time.
   */
  startSpray(rec: PeerEndpoint, told: string[], sockets: number, calledAt = this.io.clock.now()): void {
    const io = this.io;
    const now = io.clock.now();
    const ip = sprayTarget(told, rec.peer.candidates, (x) => io.isLan(x));
    const role = this.role(rec);
    const left = Math.floor(((calledAt + ATTEMPT_MS - QUEUED_MARGIN_MS - now) * SPRAY_PER_SECOND) / 1000);
    const total = Math.min(SPRAY_PROBES, left);
    const late = now > calledAt && total < QUEUED_MIN_PROBES;
    if (role === 'probe' && ip !== null && rec.active === null && rec.spray === null && !late && this.busy('probes')) {
      const i = this.queue.findIndex((q) => q.rec === rec);
      if (i >= 0) this.queue.splice(i, 1);
      this.queue.push({ rec, told, sockets, at: calledAt });
      io.log.debug('birthday: probe request queued behind a running attempt', { peer: rec.peer.id, queued: this.queue.length });
      return;
    }
    if (role !== 'probe' || ip === null || rec.active !== null || late || !rec.bday.begin(now)) {
      io.c.birthday_refused++;
      io.log.debug('birthday: not probing', { peer: rec.peer.id, role, ip, direct: rec.active !== null, late, attempts: rec.bday.attempts });
      return;
    }
    io.c.birthday_attempts++;
    rec.spray = { probes: new Spray(ip, now, { total: now > calledAt ? total : SPRAY_PROBES }), txid: pooledRandomBytes(12), cancel: () => {} };
    io.log.info('birthday: probing the peer\'s ports', { peer: rec.peer.id, ip, sockets, queuedMs: now - calledAt });
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
    // This attempt no longer holds its slot (SLOT_PROBES): a queued request may start.
    if (this.queue.length > 0 && sp.probes.sent >= SLOT_PROBES) this.kick();
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
    rec.bday = new AttemptLimiter();
    this.succeeded = true;
    this.endSpray(rec);
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
    this.kick();
  }

  /** Ends a hard-side attempt (its sockets) and an easy-side one. */
  end(rec: PeerEndpoint, socks: SpraySockets | null = rec.spraySocks): void {
    rec.bdayTimer();
    this.endSpray(rec);
    if (socks !== null) {
      void socks.close();
      if (rec.spraySocks === socks) rec.spraySocks = null;
      rec.bday.end(this.io.clock.now());
      this.kick();
    }
  }
}
