// An in-memory TURN server with coturn's observable behaviour (as measured in STACK-NOTES and
// test/integration/turn-coturn.test.ts), driven by a ManualClock, for the client's state-machine
// tests. It serves one client 5-tuple (the client's shared-socket transport) and any number of
// fake peers. Answers are built with the `stun` package, checked by the client's own decoder.

import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import type { ManualClock } from '../../helper/core/clock.js';
import {
  ATTR, CLASS, METHOD, attr, checkIntegrity, decodeMessage, errorCode, longTermKey, messageType, readAddress, readString, readUint32, type Decoded,
} from '../../helper/net/turn/codec.js';
import { decodeChannelData, encodeChannelData } from '../../helper/net/turn/framing.js';

interface StunMsg {
  addAttribute(type: number, ...args: unknown[]): unknown;
  addMessageIntegrity(key: Buffer): boolean;
  addFingerprint(): boolean;
}
const stunLib = createRequire(import.meta.url)('stun') as { createMessage(t: number, tx: Buffer): StunMsg; encode(m: StunMsg): Buffer };

export const REALM = 'lanrage.test';
export const SECRET = 'test-secret-0123456789';
export const SERVER = '192.0.2.10:3478';

interface Alloc {
  tid: string;
  /** The client 5-tuple it was made from. */
  from: string;
  username: string;
  key: Buffer;
  relayed: string;
  expires: number;
  perms: Map<string, number>;
  channels: Map<number, { peer: string; expires: number }>;
}

export class FakeTurnServer {
  /** Silent (down or unreachable) while true. */
  down = false;
  maxLifetimeS = 3600;
  permissionLifetimeMs = 300_000;
  channelLifetimeMs = 600_000;
  nonce = 'nonce-1';
  private sessionUser: string | null = null;
  private sessionSince = 0;
  private sessionKey: Buffer | null = null;
  alloc: Alloc | null = null;
  private nextPort = 50_000;
  private restarts = 0;
  /** Requests received, by method name, for assertions. */
  readonly log: string[] = [];
  /** What reached each peer: [peer, data]. */
  readonly toPeers: Array<[string, Buffer]> = [];
  /** The client's address as the relay sees it (XOR-MAPPED-ADDRESS); rebind() moves it. */
  source = '203.0.113.7:41641';
  /** Whether 401 challenges carry XOR-MAPPED-ADDRESS too (coturn's do not; RFC 5389 allows it). */
  mappedInChallenges = false;
  /** Allocations left behind on the client's earlier 5-tuples: unreachable, their data dropped. */
  readonly orphans: Alloc[] = [];
  /** Delivers a datagram to the client (the client's handleDatagram). */
  deliver: (b: Buffer) => void = () => {};

  constructor(private readonly clock: ManualClock) {}

  /**
   * The client's NAT forgot its mapping: from now on the client's datagrams arrive from a new
   * public port, a 5-tuple with no session or allocation (coturn's view). What the old
   * allocation relays goes to the old port, which the NAT no longer forwards.
   */
  rebind(newSource: string): void {
    if (this.alloc) this.orphans.push(this.alloc);
    this.alloc = null;
    this.sessionUser = null;
    this.sessionKey = null;
    this.source = newSource;
  }

  /**
   * A later rebinding handed the client's flow back an earlier public port: the relay still holds
   * the allocation orphaned there (its lifetime has not run out) and answers that 5-tuple for it.
   */
  returnTo(source: string): void {
    const i = this.orphans.findIndex((o) => o.from === source);
    if (i < 0) throw new Error(`no orphaned allocation from ${source}`);
    const back = this.orphans.splice(i, 1)[0] as Alloc;
    if (this.alloc) this.orphans.push(this.alloc);
    this.alloc = back;
    this.sessionUser = back.username;
    this.sessionKey = back.key;
    this.source = source;
  }

  restart(): void {
    this.alloc = null;
    this.sessionUser = null;
    this.sessionKey = null;
    this.nonce = `nonce-r${++this.restarts}`;
  }

  private expire(): void {
    const now = this.clock.now();
    // coturn forgets a session that never got an allocation after about a minute (measured).
    if (!this.alloc && this.sessionUser !== null && now - this.sessionSince > 60_000) {
      this.sessionUser = null;
      this.sessionKey = null;
    }
    if (this.alloc && this.alloc.expires <= now) {
      this.alloc = null;
      this.sessionUser = null;
      this.sessionKey = null;
    }
  }

  /** A datagram from the client. */
  receive(b: Buffer): void {
    if (this.down) return;
    this.expire();
    const top = (b[0] as number) >> 6;
    if (top === 1) {
      const cd = decodeChannelData(b);
      const ch = cd && this.alloc?.channels.get(cd.channel);
      if (cd && ch && this.permitted(ch.peer)) this.toPeers.push([ch.peer, Buffer.from(cd.data)]);
      return;
    }
    const d = decodeMessage(b);
    if (!d) return;
    if (d.cls === CLASS.INDICATION) {
      if (d.method === METHOD.SEND) {
        const peer = readAddress(attr(d, ATTR.XOR_PEER_ADDRESS), true);
        const data = attr(d, ATTR.DATA);
        if (peer && data && this.permitted(`${peer.ip}:${peer.port}`)) this.toPeers.push([`${peer.ip}:${peer.port}`, Buffer.from(data)]);
      }
      return;
    }
    if (d.cls !== CLASS.REQUEST) return;
    this.log.push(({ 3: 'Allocate', 4: 'Refresh', 8: 'CreatePermission', 9: 'ChannelBind', 1: 'Binding' } as Record<number, string>)[d.method] ?? `m${d.method}`);
    this.deliver(this.answer(d));
  }

  /** A peer sends to our client's relayed address. */
  peerSend(peer: string, data: Buffer): void {
    this.expire();
    if (this.down || !this.alloc || !this.permitted(peer)) return;
    for (const [ch, c] of this.alloc.channels) {
      if (c.peer === peer && c.expires > this.clock.now()) return this.deliver(encodeChannelData(ch, data, false));
    }
    const [ip, port] = peer.split(':') as [string, string];
    const m = stunLib.createMessage(messageType(METHOD.DATA, CLASS.INDICATION), Buffer.alloc(12, 7));
    m.addAttribute(ATTR.XOR_PEER_ADDRESS, ip, Number(port));
    m.addAttribute(ATTR.DATA, data);
    m.addFingerprint();
    this.deliver(stunLib.encode(m));
  }

  private permitted(peer: string): boolean {
    const ip = peer.split(':')[0] as string;
    return (this.alloc?.perms.get(ip) ?? 0) > this.clock.now();
  }

  private error(d: Decoded, code: number, reason: string, challenge = false): Buffer {
    const m = stunLib.createMessage(messageType(d.method, CLASS.ERROR), Buffer.from(d.txid));
    m.addAttribute(ATTR.ERROR_CODE, code, reason);
    if (challenge) {
      m.addAttribute(ATTR.REALM, REALM);
      m.addAttribute(ATTR.NONCE, this.nonce);
      if (this.mappedInChallenges) {
        const [mip, mport] = this.source.split(':') as [string, string];
        m.addAttribute(ATTR.XOR_MAPPED_ADDRESS, mip, Number(mport));
      }
    }
    m.addFingerprint();
    return stunLib.encode(m);
  }

  private success(d: Decoded, key: Buffer, fill: (m: StunMsg) => void): Buffer {
    const m = stunLib.createMessage(messageType(d.method, CLASS.SUCCESS), Buffer.from(d.txid));
    fill(m);
    m.addMessageIntegrity(key);
    m.addFingerprint();
    return stunLib.encode(m);
  }

  // coturn's order: the 5-tuple check for Allocate, then authentication (the username binds the
  // session before the nonce is checked), then the method.
  private answer(d: Decoded): Buffer {
    const txid = d.txid.toString('hex');
    if (d.method === METHOD.ALLOCATE && this.alloc && this.alloc.tid !== txid) return this.error(d, 437, 'Mismatched allocation: wrong transaction ID');
    if (!d.attrs.some((a) => a.type === ATTR.MESSAGE_INTEGRITY)) return this.error(d, 401, 'Unauthorized', true);
    const username = readString(attr(d, ATTR.USERNAME)) ?? '';
    if (readString(attr(d, ATTR.REALM)) !== REALM) return this.error(d, 400, 'Bad realm');
    if (this.sessionUser !== null && this.sessionUser !== username) {
      return d.method === METHOD.ALLOCATE ? this.error(d, 437, 'Allocation mismatch: wrong credentials') : this.error(d, 441, 'Wrong credentials');
    }
    if (this.sessionUser === null) this.sessionSince = this.clock.now();
    this.sessionUser = username;
    if (readString(attr(d, ATTR.NONCE)) !== this.nonce) return this.error(d, 438, 'Stale nonce', true);
    let key = this.sessionKey;
    if (!key) {
      // As coturn's use-auth-secret: the password follows from the secret, expiry counts only here.
      const expiry = Number(username.split(':')[0]);
      if (!(expiry * 1000 >= this.clock.now())) return this.error(d, 401, 'Unauthorized', true);
      key = longTermKey(username, REALM, createHmac('sha1', SECRET).update(username).digest('base64'));
    }
    if (!checkIntegrity(d, key)) return this.error(d, 401, 'Unauthorized', true);
    this.sessionKey = key;
    const now = this.clock.now();
    switch (d.method) {
      case METHOD.ALLOCATE: {
        if (!this.alloc) {
          const lifetime = Math.min(readUint32(attr(d, ATTR.LIFETIME)) ?? 600, this.maxLifetimeS);
          this.alloc = { tid: txid, from: this.source, username, key, relayed: `198.51.100.1:${this.nextPort++}`, expires: now + lifetime * 1000, perms: new Map(), channels: new Map() };
        }
        const a = this.alloc;
        const [ip, port] = a.relayed.split(':') as [string, string];
        return this.success(d, key, (m) => {
          m.addAttribute(ATTR.XOR_RELAYED_ADDRESS, ip, Number(port));
          m.addAttribute(ATTR.LIFETIME, Math.round((a.expires - now) / 1000));
          const [mip, mport] = this.source.split(':') as [string, string];
          m.addAttribute(ATTR.XOR_MAPPED_ADDRESS, mip, Number(mport));
        });
      }
      case METHOD.REFRESH: {
        if (!this.alloc) return this.error(d, 437, 'Allocation mismatch');
        const lifetime = Math.min(readUint32(attr(d, ATTR.LIFETIME)) ?? 600, this.maxLifetimeS);
        if (lifetime === 0) {
          this.alloc = null;
          // coturn forgets the session too (a new Allocate works about a second later).
          this.sessionUser = null;
          this.sessionKey = null;
        } else this.alloc.expires = now + lifetime * 1000;
        return this.success(d, key, (m) => m.addAttribute(ATTR.LIFETIME, lifetime));
      }
      case METHOD.CREATE_PERMISSION: {
        if (!this.alloc) return this.error(d, 437, 'Allocation mismatch');
        const peer = readAddress(attr(d, ATTR.XOR_PEER_ADDRESS), true);
        if (!peer) return this.error(d, 400, 'Bad request');
        if (peer.ip.startsWith('10.')) return this.error(d, 403, 'Forbidden IP');
        this.alloc.perms.set(peer.ip, now + this.permissionLifetimeMs);
        return this.success(d, key, () => {});
      }
      case METHOD.CHANNEL_BIND: {
        if (!this.alloc) return this.error(d, 437, 'Allocation mismatch');
        const peer = readAddress(attr(d, ATTR.XOR_PEER_ADDRESS), true);
        const chv = readUint32(attr(d, ATTR.CHANNEL_NUMBER));
        if (!peer || chv === null) return this.error(d, 400, 'Bad request');
        const ch = chv >>> 16;
        const key2 = `${peer.ip}:${peer.port}`;
        const cur = this.alloc.channels.get(ch);
        if (cur && cur.peer !== key2) return this.error(d, 400, 'Channel in use');
        for (const [n, c] of this.alloc.channels) if (n !== ch && c.peer === key2) return this.error(d, 400, 'Peer has another channel');
        this.alloc.channels.set(ch, { peer: key2, expires: now + this.channelLifetimeMs });
        this.alloc.perms.set(peer.ip, now + this.permissionLifetimeMs);
        return this.success(d, key, () => {});
      }
      default:
        return this.error(d, 400, 'Bad request');
    }
  }

  errorOf(b: Buffer): number | null {
    const d = decodeMessage(b);
    return d ? (errorCode(d)?.code ?? null) : null;
  }
}
