// A TURN client (RFC 8656) for one relay: one allocation, permissions and channels for exactly the
// party's peers, kept alive and recovered by itself. This file is the request I/O; the allocation
// state machine is allocation.ts, the permission/channel table permission-table.ts (both pure).
//
// Liveness without poisoning the 5-tuple. coturn binds a 5-tuple's session to the first USERNAME it
// sees on it, before checking the nonce; after a relay restart, an authenticated Refresh carrying
// the old username therefore binds the new session to credentials that may be expired, and every
// Allocate with fresh credentials then gets 437 for ~60 s (measured). So every sync starts with an
// *unauthenticated* Allocate, which coturn answers before looking at credentials:
//   437  this 5-tuple still has its allocation (alive: authenticated refreshes are now safe)
//   401  no allocation here (relay restarted or allocation expired): re-allocate at once with
//        fresh credentials, on the nonce this very answer carries
//   none the relay is unreachable: report 'lost', retry with backoff
// The probe runs every keepaliveMs (10 s: NAT mappings die after ~30 s of silence, STACK-NOTES),
// so it is also the NAT keepalive, and at once when checkNow() says relayed traffic went
// unanswered. A NAT rebinding (our public port changed: the probe comes from a 5-tuple without an
// allocation) orphans the allocation — the relay drops our data silently — so a 401 means
// re-allocate at once with fresh credentials from where we are now (liveness.ts). Refresh
// (lifetime/2), CreatePermission (4 min) and ChannelBind (8 min) are sent only right after a
// probe said the allocation is alive.
//
// A 437 says that *an* allocation holds this 5-tuple, not that it is ours: coturn's answers carry
// no mapped address to compare, and the relay keeps an allocation a rebinding orphaned until its
// lifetime ends. A second rebinding can hand our flow its old public port back (Linux masquerade
// prefers the original port once the entry that forced another one is gone: measured in the lab,
// port-restricted pair flushed twice); the probe then answers for the OLD allocation, our data
// goes there and the peer's comes to the new one's dead port. So when relayed traffic went
// unanswered (checkNow), a 437 is confirmed with an authenticated Refresh — safe on a 5-tuple that
// holds an allocation — and a refusal (441: another allocation's credentials) means orphaned; the
// recovery then claims the older allocation with its own credentials (it is ours) and publishes
// its relayed address, keeping the one public port.
//
// Credentials matter only at Allocate (coturn keeps the key of the session), so credentials that
// expire seconds after the allocation keep a session running; every new allocation asks
// getCredentials() for fresh ones.
//
// Permissions are per IP at the relay and cannot be revoked before they expire (5 min after the
// last refresh): permit() stops refreshing removed peers, never sends to them and drops whatever
// still arrives from them (data is accepted only from the exact "ip:port" of a permitted peer).

import { EventEmitter } from 'node:events';
import { systemClock, type Clock } from '../../core/clock.js';
import type { Logger } from '../../core/log.js';
import { pooledRandomBytes } from '../../core/random-pool.js';
import { isIPv4, parseEndpoint, type Endpoint } from '../addr.js';
import {
  ATTR, CLASS, METHOD, attr, checkFingerprint, checkIntegrity, decodeMessage, encodeMessage,
  errorCode, longTermKey, messageType, readAddress, readString, readUint32, type Auth, type Decoded, type OutAttrs,
} from '../stun/codec.js';
import { decodeChannelData, encodeChannelData, MAX_CHANNELDATA_PAYLOAD } from './framing.js';
import { PermissionTable, type PeerEntry, type PermEntry } from './permission-table.js';
import { judgeProbe, type ProbeAnswer } from './liveness.js';
import {
  AllocationMachine, TurnError, afterProbe, backoffWait, checkCredentials, nextProbeAt, setLifetime,
  type Allocation, type TurnCredentials, type TurnState,
} from './allocation.js';
import { DEFAULT_RETRANSMIT, TransactionTimeout, Transactions, type RetransmitTiming } from '../stun/transactions.js';
import { OwnUdpTransport, SharedUdpTransport, TcpTransport, type DatagramTransport, type TransportEvents, type TurnTransport } from './transport.js';

export { TurnError, type TurnCredentials, type TurnState };

export interface TurnServer {
  /** IPv4 literal (the helper resolves names before it gets here). */
  host: string;
  port: number;
  transport: 'udp' | 'tcp';
}

export interface TurnTiming {
  /** Probe period: NAT keepalive and restart detection. */
  keepaliveMs: number;
  /** LIFETIME asked for in Allocate/Refresh, seconds; refreshed at half of what the relay grants. */
  requestedLifetimeS: number;
  permissionRefreshMs: number;
  channelRefreshMs: number;
  /** A channel number is not reused for another peer for this long after its peer left. */
  channelQuarantineMs: number;
  /** Waits before successive re-allocation attempts; the last one repeats. */
  reallocateBackoffMs: readonly number[];
  retransmit: RetransmitTiming;
  /** How long close() waits for the relay to confirm the allocation's deletion. */
  closeWaitMs: number;
}

export const DEFAULT_TURN_TIMING: TurnTiming = {
  keepaliveMs: 10_000,
  // coturn grants at least 600 s whatever is asked (unless its max-allocate-lifetime is lower).
  requestedLifetimeS: 600,
  permissionRefreshMs: 240_000,
  channelRefreshMs: 480_000,
  channelQuarantineMs: 900_000,
  // The second try comes soon: after a NAT rebinding the first often fails on the credential
  // fetch (the control server's TCP connection died with the same mapping: ECONNRESET).
  reallocateBackoffMs: [0, 250, 1000, 2000, 5000, 10_000, 20_000, 30_000],
  retransmit: DEFAULT_RETRANSMIT,
  closeWaitMs: 500,
};

export interface TurnClientOptions {
  server: TurnServer;
  getCredentials(): Promise<TurnCredentials>;
  /** UDP on someone else's socket (magicsock): answers come back through handleDatagram(). */
  transport?: DatagramTransport;
  log: Logger;
  clock?: Clock;
  timing?: Partial<TurnTiming>;
  /** Own UDP socket only: local address to bind (default 0.0.0.0). */
  bindAddress?: string;
  /**
   * When the relay refuses the shared socket's 5-tuple (437: an allocation or session of an earlier
   * run holds it, for up to coturn's 600 s minimum lifetime), carry on over a UDP socket of our
   * own (default true). The relayed address works the same from any local socket.
   */
  sharedFallback?: boolean;
}

export interface TurnClientEvents {
  /** The first allocation of start(): our relayed "ip:port". */
  allocated: [relayed: string];
  /** An allocation after a loss (the same address when the old one was still alive). */
  reallocated: [relayed: string, previous: string | null];
  /** The allocation stopped working; recovery is under way. */
  lost: [reason: string];
  data: [peer: string, data: Buffer];
}

export interface TurnStats {
  state: TurnState;
  relayed: string | null;
  /** Our address as the relay sees it (XOR-MAPPED-ADDRESS of the Allocate answer). */
  mapped: string | null;
  /** 'shared' (magicsock's socket), 'udp' (our own: configured, or the fallback) or 'tcp'. */
  via: 'shared' | 'udp' | 'tcp';
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
  txChannelData: number;
  txSendIndications: number;
  dropNotAllocated: number;
  dropNotPermitted: number;
  dropTooLarge: number;
  rxDropUnknownPeer: number;
  allocations: number;
  refreshes: number;
  losses: number;
  /** Requests repeated with the relay's new nonce (438). */
  staleNonces: number;
}

const ALLOCATE_REQUEST = messageType(METHOD.ALLOCATE, CLASS.REQUEST);
const REFRESH_REQUEST = messageType(METHOD.REFRESH, CLASS.REQUEST);
const CREATE_PERMISSION_REQUEST = messageType(METHOD.CREATE_PERMISSION, CLASS.REQUEST);
const CHANNEL_BIND_REQUEST = messageType(METHOD.CHANNEL_BIND, CLASS.REQUEST);
const SEND_INDICATION = messageType(METHOD.SEND, CLASS.INDICATION);
const DATA_INDICATION = messageType(METHOD.DATA, CLASS.INDICATION);
const MAX_PEERS = 1024;

export class TurnClient extends EventEmitter<TurnClientEvents> {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly t: TurnTiming;
  private readonly server: Endpoint;
  private readonly serverKey: string;
  private transport: TurnTransport;
  private readonly ev: TransportEvents;
  private readonly tx: Transactions;
  private readonly m = new AllocationMachine();
  private readonly table: PermissionTable;
  private cancelTimer: () => void = () => {};
  /** A sync that has been asked for but not started: later requests share it. */
  private queuedSync: Promise<void> | null = null;
  private syncChain: Promise<void> = Promise.resolve();
  /** The next sync confirms a 437 with an authenticated Refresh (checkNow: traffic went unanswered). */
  private verifyNext = false;
  private readonly s = {
    txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, txChannelData: 0, txSendIndications: 0,
    dropNotAllocated: 0, dropNotPermitted: 0, dropTooLarge: 0, rxDropUnknownPeer: 0, allocations: 0, refreshes: 0, losses: 0, staleNonces: 0,
  };

  constructor(private readonly o: TurnClientOptions) {
    super();
    this.clock = o.clock ?? systemClock;
    this.log = o.log.child({ relay: `${o.server.transport}:${o.server.host}:${o.server.port}` });
    this.t = { ...DEFAULT_TURN_TIMING, ...o.timing };
    if (!isIPv4(o.server.host) || !Number.isInteger(o.server.port) || o.server.port < 1 || o.server.port > 65535) {
      throw new TurnError(null, `TURN server must be an IPv4 literal and a port: ${o.server.host}:${o.server.port}`);
    }
    if (o.server.transport !== 'udp' && o.server.transport !== 'tcp') throw new TurnError(null, `bad TURN transport ${String(o.server.transport)}`);
    if (o.transport && o.server.transport !== 'udp') throw new TurnError(null, 'a shared socket carries UDP only');
    this.server = { ip: o.server.host, port: o.server.port };
    this.serverKey = `${o.server.host}:${o.server.port}`;
    this.tx = new Transactions(this.clock, this.t.retransmit);
    this.table = new PermissionTable(this.t);
    const ev: TransportEvents = { onMessage: (b) => void this.onMessage(b), onClosed: (why) => this.onTransportClosed(why) };
    this.ev = ev;
    if (o.transport) this.transport = new SharedUdpTransport(o.transport, this.server);
    else if (o.server.transport === 'tcp') this.transport = new TcpTransport(this.server, ev);
    else this.transport = new OwnUdpTransport(this.server, ev, o.bindAddress);
  }

  get state(): TurnState {
    return this.m.state;
  }

  /** Our relayed "ip:port" while allocated, else null. */
  get relayed(): string | null {
    return this.m.relayed;
  }

  stats(): TurnStats {
    return { state: this.m.state, relayed: this.relayed, mapped: this.m.current?.mapped ?? null, via: this.transport.kind, ...this.s };
  }

  /** Allocates; resolves with the relayed "ip:port". Rejects (TurnError 401 for refused credentials). */
  async start(): Promise<string> {
    this.m.begin();
    try {
      await this.transport.open();
      let a: Allocation;
      try {
        a = await this.allocate();
      } catch (err) {
        if (!(await this.fresh5Tuple(err)) || this.isClosed()) throw err;
        a = await this.allocate();
      }
      if (this.isClosed()) {
        await this.release(a);
        throw new TurnError(null, 'closed while allocating');
      }
      this.onAllocated(a, false);
      return a.relayed;
    } catch (err) {
      if (!this.isClosed()) {
        this.m.startFailed();
        this.transport.close();
      }
      throw err;
    }
  }

  /**
   * Exactly these peers ("ip:port") may exchange data with us through the relay: new ones get a
   * permission and a channel, removed ones are no longer refreshed, sent to or listened to.
   * Resolves once the new set is installed (or at once while there is no allocation: it is
   * installed on the next one). Rejects when the relay refuses a peer's address.
   */
  async permit(peers: readonly string[]): Promise<void> {
    if (this.isClosed()) throw new TurnError(null, 'client closed');
    if (peers.length > MAX_PEERS) throw new TurnError(null, `at most ${MAX_PEERS} peers`);
    const want = new Map<string, Endpoint>();
    for (const p of peers) {
      const ep = parseEndpoint(p);
      if (!ep) throw new TurnError(null, `peer must be "ip:port": ${JSON.stringify(p)}`);
      want.set(`${ep.ip}:${ep.port}`, ep);
    }
    const ips = this.table.set(want, this.clock.now());
    if (this.m.state !== 'allocated') return;
    await this.requestSync();
    const refused = this.table.refused(ips);
    if (refused.length > 0) throw new TurnError(403, `the relay refuses ${refused.map((p) => `${p.ip} (${p.refused})`).join(', ')}`);
  }

  /** The peers permit() installed ("ip:port"). */
  permitted(): string[] {
    return [...this.table.peers.keys()];
  }

  /** True when the peer's channel is bound (data goes as 4-byte-header ChannelData). */
  hasChannel(peer: string): boolean {
    return this.table.peers.get(peer)?.bound ?? false;
  }

  /**
   * Relays `data` to a permitted peer: ChannelData when its channel is bound, else a Send
   * indication. Returns false (and drops it) without an allocation or for a peer not permitted.
   */
  send(peer: string, data: Buffer): boolean {
    if (this.m.state !== 'allocated') {
      this.s.dropNotAllocated++;
      return false;
    }
    const p = this.table.peers.get(peer);
    if (!p) {
      this.s.dropNotPermitted++;
      return false;
    }
    if (data.length > MAX_CHANNELDATA_PAYLOAD) {
      this.s.dropTooLarge++;
      return false;
    }
    let out: Buffer;
    if (p.bound && p.channel !== null) {
      out = encodeChannelData(p.channel, data, this.transport.stream);
      this.s.txChannelData++;
    } else {
      out = encodeMessage(SEND_INDICATION, pooledRandomBytes(12), { peer: p.ep, data });
      this.s.txSendIndications++;
    }
    this.s.txPackets++;
    this.s.txBytes += data.length;
    this.transport.send(out);
    return true;
  }

  /**
   * For the shared socket: a datagram from `from` ("ip:port"). True when it was this relay's
   * (then consumed); false for anything else, which the caller handles.
   */
  handleDatagram(buf: Buffer, from: string): boolean {
    if (this.transport.kind !== 'shared' || from !== this.serverKey) return false;
    return this.onMessage(buf);
  }

  /**
   * Relayed traffic went unanswered: probe the allocation now instead of at the next keepalive
   * (a NAT rebinding orphans it silently). Shares a sync already queued.
   */
  checkNow(): void {
    if (this.m.state !== 'allocated') return;
    this.verifyNext = true;
    void this.requestSync();
  }

  /** Deletes the allocation (best effort, closeWaitMs at most) and stops. Emits nothing more. */
  async close(): Promise<void> {
    if (this.isClosed()) return;
    const a = this.m.close();
    this.cancelTimer();
    if (a) await this.release(a);
    this.tx.failAll(new TurnError(null, 'client closed'));
    this.transport.close();
  }

  // --- allocation --------------------------------------------------------------------------------

  private isClosed(): boolean {
    return this.m.closed;
  }

  /** Refresh with LIFETIME 0, waiting at most closeWaitMs. */
  private async release(a: Allocation): Promise<void> {
    let cancel = (): void => {};
    const timeout = new Promise<void>((resolve) => {
      cancel = this.clock.setTimeout(resolve, this.t.closeWaitMs);
    });
    await Promise.race([this.authed(a, REFRESH_REQUEST, { lifetime: 0 }).then(() => undefined, () => undefined), timeout]);
    cancel();
  }

  /** One request/answer exchange; the answer is decoded and its FINGERPRINT checked. */
  private async exchange(type: number, attrs: OutAttrs, auth?: Auth): Promise<Decoded> {
    const msg = encodeMessage(type, pooledRandomBytes(12), attrs, auth);
    const what = `TURN request 0x${type.toString(16)}`;
    const raw = await this.tx.request(msg, (b) => this.transport.send(b), this.transport.stream, what);
    const d = decodeMessage(raw);
    // A mangled answer is as good as none.
    if (!d || !checkFingerprint(d)) throw new TransactionTimeout(`${what} (unreadable answer)`);
    return d;
  }

  /**
   * An authenticated request on allocation `a`: a stale nonce (438, or a 401 carrying a new nonce)
   * is taken from the answer and the request retried; a success must carry valid integrity.
   */
  private async authed(a: Allocation, type: number, attrs: OutAttrs): Promise<Decoded> {
    for (let attempt = 0; ; attempt++) {
      const d = await this.exchange(type, attrs, a.auth);
      const err = errorCode(d);
      if (!err) {
        if (!checkIntegrity(d, a.auth.key)) throw new TurnError(null, 'answer failed MESSAGE-INTEGRITY');
        return d;
      }
      const nonce = readString(attr(d, ATTR.NONCE));
      if (attempt < 2 && nonce && (err.code === 438 || (err.code === 401 && nonce !== a.auth.nonce))) {
        a.auth = { ...a.auth, nonce };
        this.s.staleNonces++;
        continue;
      }
      throw new TurnError(err.code, `${err.code} ${err.reason}`);
    }
  }

  /**
   * The unauthenticated Allocate that starts every sync and every allocation: 437 when this
   * 5-tuple has an allocation, else 401 with the relay's realm and a nonce for this 5-tuple; and
   * our mapped address when the answer carries one (coturn's do not).
   */
  private async probe(): Promise<ProbeAnswer & { realm: string; nonce: string }> {
    const d = await this.exchange(ALLOCATE_REQUEST, { requestedTransport: 'udp' });
    const err = errorCode(d);
    const m = readAddress(attr(d, ATTR.XOR_MAPPED_ADDRESS), true);
    const mapped = m ? `${m.ip}:${m.port}` : null;
    if (err?.code === 437) return { code: 437, mapped, realm: '', nonce: '' };
    if (err?.code === 401) {
      const realm = readString(attr(d, ATTR.REALM));
      const nonce = readString(attr(d, ATTR.NONCE));
      if (realm === null || nonce === null) throw new TurnError(401, 'relay challenge without REALM/NONCE');
      return { code: 401, mapped, realm, nonce };
    }
    // A relay that allocates without credentials is an open relay: refuse to use it.
    if (!err) throw new TurnError(null, 'relay allocated without authentication (open relay): refused');
    throw new TurnError(err.code, `${err.code} ${err.reason}`);
  }

  /** A fresh allocation (fresh credentials), or the previous one when the relay still holds it. */
  private async allocate(): Promise<Allocation> {
    const p = await this.probe();
    const previous = this.m.previous;
    if (p.code === 437) {
      if (previous && (await this.resume(previous))) return previous;
      // A rebinding gave us back the public port of an allocation we replaced: it is ours to claim.
      for (const old of this.m.older) {
        if (await this.claim(old)) {
          this.log.info('relay allocation reclaimed: our NAT gave us back the public port of an earlier allocation', { relayed: old.relayed, mapped: old.mapped });
          return old;
        }
      }
      throw new TurnError(437, 'the relay still holds an allocation for this address');
    }
    const creds = checkCredentials(await this.o.getCredentials());
    if (creds.realm !== undefined && creds.realm !== p.realm) throw new TurnError(null, `relay realm ${JSON.stringify(p.realm)} is not ${JSON.stringify(creds.realm)}`);
    const a: Allocation = {
      auth: { username: creds.username, realm: p.realm, nonce: p.nonce, key: longTermKey(creds.username, p.realm, creds.password) },
      relayed: '',
      mapped: null,
      lifetimeS: 0,
      refreshDue: 0,
    };
    let d: Decoded;
    try {
      d = await this.authed(a, ALLOCATE_REQUEST, { requestedTransport: 'udp', lifetime: this.t.requestedLifetimeS });
    } catch (err) {
      // 437 here: the session is bound to other credentials (an authenticated request reached a
      // restarted relay first); if those are still good, the old username works, else wait it out.
      if (err instanceof TurnError && err.code === 437 && previous && (await this.resume(previous))) return previous;
      throw err;
    }
    const relayed = readAddress(attr(d, ATTR.XOR_RELAYED_ADDRESS), true);
    if (!relayed) throw new TurnError(null, 'Allocate answer without an IPv4 XOR-RELAYED-ADDRESS');
    const mapped = readAddress(attr(d, ATTR.XOR_MAPPED_ADDRESS), true);
    a.relayed = `${relayed.ip}:${relayed.port}`;
    a.mapped = mapped ? `${mapped.ip}:${mapped.port}` : null;
    setLifetime(a, readUint32(attr(d, ATTR.LIFETIME)), this.clock.now());
    return a;
  }

  /** Refreshes an allocation the relay may still hold; true when it does. */
  private async resume(a: Allocation): Promise<boolean> {
    return !a.orphaned && this.claim(a);
  }

  /** Refreshes `a` with its own credentials from where we are now; true when the relay holds it for us here. */
  private async claim(a: Allocation): Promise<boolean> {
    try {
      const d = await this.authed(a, REFRESH_REQUEST, { lifetime: this.t.requestedLifetimeS });
      setLifetime(a, readUint32(attr(d, ATTR.LIFETIME)), this.clock.now());
      a.orphaned = false;
      return true;
    } catch (err) {
      if (err instanceof TransactionTimeout) throw err;
      return false;
    }
  }

  private onAllocated(a: Allocation, again: boolean): void {
    const { resumed, previousRelayed } = this.m.allocated(a);
    this.s.allocations++;
    this.table.allocated(resumed);
    this.log.info(again ? (resumed ? 'relay allocation resumed' : 'relay re-allocated') : 'relay allocated', {
      relayed: a.relayed, mapped: a.mapped, lifetimeS: a.lifetimeS, via: this.transport.kind, local: this.transport.local(),
    });
    if (again) this.emit('reallocated', a.relayed, previousRelayed);
    else this.emit('allocated', a.relayed);
    void this.requestSync();
  }

  /**
   * The allocation stopped working: say so once, then recover in the background. An orphaned
   * allocation (our 5-tuple moved) is not resumable from here: recovery allocates afresh.
   */
  private lose(reason: string, resumable = true): void {
    if (!this.m.lose(resumable)) return;
    this.s.losses++;
    this.cancelTimer();
    this.table.lost();
    this.tx.failAll(new TurnError(null, `relay lost: ${reason}`));
    this.log.warn('relay lost', { reason, mapped: this.m.previous?.mapped ?? null });
    this.emit('lost', reason);
    void this.recover(this.m.gen);
  }

  private async recover(gen: number): Promise<void> {
    let lastErr: unknown = null;
    for (let attempt = 0; ; attempt++) {
      const wait = backoffWait(this.t.reallocateBackoffMs, attempt);
      if (wait > 0) await new Promise<void>((r) => this.clock.setTimeout(r, wait));
      if (!this.m.recovering(gen)) return;
      try {
        if (this.transport.kind === 'tcp') await this.transport.open();
        else await this.fresh5Tuple(lastErr);
        const a = await this.allocate();
        if (!this.m.recovering(gen)) {
          if (!this.isClosed()) await this.release(a);
          return;
        }
        this.onAllocated(a, true);
        return;
      } catch (err) {
        lastErr = err;
        this.log.debug('relay re-allocation failed', { attempt, err: err as Error });
      }
    }
  }

  /**
   * After a 437 (the relay holds this 5-tuple for an allocation or session we cannot use), moves to
   * a new one where we can: our own sockets reopen, the shared socket gives way to one of our own.
   * True when it did.
   */
  private async fresh5Tuple(err: unknown): Promise<boolean> {
    if (!(err instanceof TurnError && err.code === 437)) return false;
    if (this.transport.kind === 'shared') {
      if (this.o.sharedFallback === false) return false;
      this.log.warn('relay refuses the shared socket (437): using a socket of our own', { err });
      this.transport = new OwnUdpTransport(this.server, this.ev, this.o.bindAddress);
      // The old allocation is not ours to resume from a different 5-tuple.
      this.m.forgetPrevious();
    } else if (!this.transport.renewable) return false;
    await this.transport.open();
    return true;
  }

  private onTransportClosed(why: string): void {
    this.tx.failAll(new TurnError(null, why));
    this.lose(why);
  }

  // --- sync: probe, then whatever is due ---------------------------------------------------------

  /** Runs a sync after the one in progress, one at a time; resolves when it is done. */
  private requestSync(): Promise<void> {
    if (this.queuedSync) return this.queuedSync;
    const p = this.syncChain
      .then(() => {
        this.queuedSync = null;
        return this.m.state === 'allocated' ? this.sync() : undefined;
      })
      .catch((err: unknown) => this.log.warn('relay sync failed', { err: err as Error }));
    this.queuedSync = p;
    this.syncChain = p;
    return p;
  }

  private schedule(): void {
    this.cancelTimer();
    const a = this.m.current;
    if (this.m.state !== 'allocated' || !a) return;
    const now = this.clock.now();
    const next = this.table.nextDue(now, nextProbeAt(now, this.t.keepaliveMs, a));
    this.cancelTimer = this.clock.setTimeout(() => void this.requestSync(), Math.max(0, next - now));
  }

  private async sync(): Promise<void> {
    const a = this.m.current;
    const gen = this.m.gen;
    if (!a) return;
    const verify = this.verifyNext;
    this.verifyNext = false;
    try {
      let p: ProbeAnswer;
      try {
        p = await this.probe();
      } catch (err) {
        if (gen === this.m.gen) this.lose(err instanceof TransactionTimeout ? 'relay silent' : `probe failed: ${(err as Error).message}`);
        return;
      }
      if (gen !== this.m.gen) return;
      const liveness = judgeProbe(a.mapped, p);
      const now = this.clock.now();
      const step = afterProbe(liveness, a, p.mapped, now);
      if ('lose' in step) {
        if (liveness === 'orphaned') this.log.info('our public address moved (NAT rebinding): the relay orphaned our allocation', { was: a.mapped, now: p.mapped });
        return this.lose(step.lose, step.resumable);
      }
      if (step.refresh || verify) {
        let d: Decoded;
        try {
          d = await this.authed(a, REFRESH_REQUEST, { lifetime: this.t.requestedLifetimeS });
        } catch (err) {
          if (!verify || !(err instanceof TurnError) || gen !== this.m.gen) throw err;
          this.log.info('the relay answers our public address for another allocation (a NAT rebinding gave us an earlier port back): ours is orphaned', { mapped: a.mapped, err: err.message });
          return this.lose(`NAT rebinding onto another allocation's address (${err.message})`, false);
        }
        setLifetime(a, readUint32(attr(d, ATTR.LIFETIME)), this.clock.now());
        this.s.refreshes++;
        this.log.debug('relay allocation refreshed', { lifetimeS: a.lifetimeS });
      }
      await Promise.all(this.table.duePermissions(now).map((r) => this.installPermission(a, r)));
      if (gen !== this.m.gen) return;
      await Promise.all(this.table.dueChannels(now).map((p2) => this.bindChannel(a, p2)));
    } catch (err) {
      if (gen !== this.m.gen) return;
      if (err instanceof TransactionTimeout) return this.lose('relay silent');
      if (err instanceof TurnError && err.code === 437) return this.lose('allocation gone (437)');
      this.log.warn('relay refresh failed', { err: err as Error });
    } finally {
      if (gen === this.m.gen) this.schedule();
    }
  }

  private async installPermission(a: Allocation, r: PermEntry): Promise<void> {
    const port = this.table.permissionPort(r.ip);
    r.inflight = true;
    try {
      await this.authed(a, CREATE_PERMISSION_REQUEST, { peer: { ip: r.ip, port } });
      this.table.permissionInstalled(r, this.clock.now());
    } catch (err) {
      if (err instanceof TurnError && err.code === 403) {
        this.table.permissionRefused(r, err.message);
        this.log.warn('relay refuses a peer address', { peer: r.ip, err });
        return;
      }
      this.table.retryLater(r, this.clock.now());
      throw err;
    } finally {
      r.inflight = false;
    }
  }

  private async bindChannel(a: Allocation, p: PeerEntry): Promise<void> {
    if (!this.table.assignChannel(p, this.clock.now())) return;
    p.inflight = true;
    try {
      await this.authed(a, CHANNEL_BIND_REQUEST, { channel: p.channel as number, peer: p.ep });
      if (!this.table.current(p)) return;
      this.table.channelBound(p, this.clock.now());
    } catch (err) {
      if (err instanceof TurnError && (err.code === 400 || err.code === 403)) {
        this.table.channelRefused(p, this.clock.now());
        this.log.warn('relay refused a channel', { peer: p.key, err });
        return;
      }
      this.table.retryLater(p, this.clock.now());
      throw err;
    } finally {
      p.inflight = false;
    }
  }

  // --- receive -----------------------------------------------------------------------------------

  private onMessage(b: Buffer): boolean {
    if (b.length < 4) return false;
    const top = (b[0] as number) >> 6;
    // Answers still count while closing (the deleting Refresh); data does not.
    if (top === 1) {
      if (this.isClosed()) return false;
      const cd = decodeChannelData(b);
      if (!cd) return true;
      const p = this.table.peerOfChannel(cd.channel);
      // Numbers map only to peers we bound them to; data may beat the ChannelBind answer.
      if (!p) {
        this.s.rxDropUnknownPeer++;
        return true;
      }
      this.deliver(p.key, cd.data);
      return true;
    }
    if (top !== 0) return false;
    const type = b.readUInt16BE(0);
    const cls = type & 0x0110;
    if (cls === CLASS.SUCCESS || cls === CLASS.ERROR) return this.tx.handle(b);
    if (type !== DATA_INDICATION || this.isClosed()) return false;
    const d = decodeMessage(b);
    if (!d || !checkFingerprint(d)) return true;
    const peer = readAddress(attr(d, ATTR.XOR_PEER_ADDRESS), true);
    const data = attr(d, ATTR.DATA);
    if (!peer || !data) return true;
    const key = `${peer.ip}:${peer.port}`;
    if (!this.table.peers.has(key)) {
      this.s.rxDropUnknownPeer++;
      return true;
    }
    this.deliver(key, data);
    return true;
  }

  private deliver(peer: string, data: Buffer): void {
    this.s.rxPackets++;
    this.s.rxBytes += data.length;
    this.emit('data', peer, data);
  }
}
