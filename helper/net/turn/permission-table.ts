// The TURN client's permission and channel table (RFC 8656 §9, §12), pure: which peers ("ip:port")
// may exchange data, the permission per peer IP, the channel number per peer, when each is due to
// be (re)installed, and the channel numbers waiting out their quarantine. Time is passed in; the
// client (client.ts) sends the requests and reports their outcome here.
//
// Permissions are per IP at the relay and cannot be revoked before they expire (5 min after the
// last refresh): a removed peer is only no longer refreshed, sent to or listened to. A channel
// number stays bound at the relay up to 10 min after its last refresh and cannot be reused for 5
// min more, so a removed peer's number is quarantined; a peer that comes back gets its old number.

import type { Endpoint } from '../addr.js';
import { CHANNEL_MAX, CHANNEL_MIN } from '../stun/codec.js';

export interface PeerEntry {
  key: string;
  ep: Endpoint;
  channel: number | null;
  bound: boolean;
  due: number;
  inflight: boolean;
}

export interface PermEntry {
  ip: string;
  installed: boolean;
  due: number;
  inflight: boolean;
  /** Refused by the relay (403: an address it will not relay to). */
  refused: string | null;
}

export interface PermissionTableTiming {
  keepaliveMs: number;
  permissionRefreshMs: number;
  channelRefreshMs: number;
  /** A channel number is not reused for another peer for this long after its peer left. */
  channelQuarantineMs: number;
}

export class PermissionTable {
  readonly peers = new Map<string, PeerEntry>();
  readonly perms = new Map<string, PermEntry>();
  private readonly byChannel = new Map<number, PeerEntry>();
  private readonly quarantine = new Map<number, { until: number; peer: string }>();
  private nextChannel = CHANNEL_MIN;

  constructor(private readonly t: PermissionTableTiming) {}

  /** Exactly these peers from now on; returns their IPs (one permission each). */
  set(want: ReadonlyMap<string, Endpoint>, now: number): Set<string> {
    for (const [key, rec] of this.peers) {
      if (want.has(key)) continue;
      this.peers.delete(key);
      if (rec.channel !== null) {
        this.byChannel.delete(rec.channel);
        // The relay keeps the binding up to 10 min, then 5 more before the number is free again.
        this.quarantine.set(rec.channel, { until: now + this.t.channelQuarantineMs, peer: key });
      }
    }
    const ips = new Set([...want.values()].map((e) => e.ip));
    for (const ip of this.perms.keys()) if (!ips.has(ip)) this.perms.delete(ip);
    for (const [key, ep] of want) if (!this.peers.has(key)) this.peers.set(key, { key, ep, channel: null, bound: false, due: 0, inflight: false });
    for (const ip of ips) if (!this.perms.has(ip)) this.perms.set(ip, { ip, installed: false, due: 0, inflight: false, refused: null });
    return ips;
  }

  /** The relay's refusals among these IPs. */
  refused(ips: ReadonlySet<string>): PermEntry[] {
    return [...this.perms.values()].filter((p) => p.refused !== null && ips.has(p.ip));
  }

  /** The peer a channel number was bound to (data may beat the ChannelBind answer). */
  peerOfChannel(ch: number): PeerEntry | undefined {
    return this.byChannel.get(ch);
  }

  /**
   * A new allocation (resumed: the relay still had ours) has no permissions and no channels:
   * everything is installed again. A resumed one keeps them; all is due now.
   */
  allocated(resumed: boolean): void {
    if (!resumed) {
      this.byChannel.clear();
      this.quarantine.clear();
      this.nextChannel = CHANNEL_MIN;
      for (const p of this.peers.values()) Object.assign(p, { channel: null, bound: false, due: 0, inflight: false });
    } else {
      for (const p of this.peers.values()) Object.assign(p, { due: 0, inflight: false });
    }
    for (const r of this.perms.values()) Object.assign(r, { installed: resumed && r.installed, due: 0, inflight: false, refused: null });
  }

  /** The allocation stopped working: no channel can be trusted to be bound. */
  lost(): void {
    for (const p of this.peers.values()) p.bound = false;
  }

  /** When something is next due, given the keepalive's own time. */
  nextDue(now: number, next: number): number {
    for (const r of this.perms.values()) if (r.refused === null) next = Math.min(next, Math.max(r.due, now + 1000));
    for (const p of this.peers.values()) if (this.perms.get(p.ep.ip)?.installed) next = Math.min(next, Math.max(p.due, now + 1000));
    return next;
  }

  duePermissions(now: number): PermEntry[] {
    return [...this.perms.values()].filter((r) => !r.inflight && r.refused === null && r.due <= now);
  }

  /** Peers whose channel is due (their permission is installed). */
  dueChannels(now: number): PeerEntry[] {
    return [...this.peers.values()].filter((p) => !p.inflight && p.due <= now && this.perms.get(p.ep.ip)?.installed);
  }

  /** A port to name in CreatePermission (only the IP counts there). */
  permissionPort(ip: string): number {
    return [...this.peers.values()].find((p) => p.ep.ip === ip)?.ep.port ?? 9;
  }

  permissionInstalled(r: PermEntry, now: number): void {
    r.installed = true;
    r.due = now + this.t.permissionRefreshMs;
  }

  permissionRefused(r: PermEntry, why: string): void {
    r.refused = why;
  }

  /** The request failed some other way: retry after a keepalive period. */
  retryLater(r: PermEntry | PeerEntry, now: number): void {
    r.due = now + this.t.keepaliveMs;
  }

  /** Gives the peer a channel number if it has none; false when none is free (retried later). */
  assignChannel(p: PeerEntry, now: number): boolean {
    if (p.channel !== null) return true;
    const ch = this.takeChannel(p.key, now);
    if (ch === null) {
      this.retryLater(p, now);
      return false;
    }
    p.channel = ch;
    this.byChannel.set(ch, p);
    return true;
  }

  /** Whether this entry is still the table's peer (it may have been removed during the request). */
  current(p: PeerEntry): boolean {
    return this.peers.get(p.key) === p;
  }

  channelBound(p: PeerEntry, now: number): void {
    p.bound = true;
    p.due = now + this.t.channelRefreshMs;
    // A ChannelBind refreshes its peer's permission too (RFC 8656 §11.2).
    const perm = this.perms.get(p.ep.ip);
    if (perm) perm.due = Math.max(perm.due, now + this.t.permissionRefreshMs);
  }

  /**
   * The number is taken at the relay (or the peer refused): try another one later; until then
   * the peer's data goes as Send indications.
   */
  channelRefused(p: PeerEntry, now: number): void {
    if (p.channel !== null && this.byChannel.get(p.channel) === p) this.byChannel.delete(p.channel);
    if (p.channel !== null) this.quarantine.set(p.channel, { until: now + this.t.channelQuarantineMs, peer: '' });
    p.channel = null;
    this.retryLater(p, now);
  }

  /** A free channel number; the one this peer had before, if it is still waiting out its quarantine. */
  private takeChannel(peer: string, now: number): number | null {
    for (const [ch, q] of this.quarantine) {
      if (q.until <= now) this.quarantine.delete(ch);
      else if (q.peer === peer && !this.byChannel.has(ch)) {
        this.quarantine.delete(ch);
        return ch;
      }
    }
    const span = CHANNEL_MAX - CHANNEL_MIN + 1;
    for (let i = 0; i < span; i++) {
      const ch = CHANNEL_MIN + ((this.nextChannel - CHANNEL_MIN + i) % span);
      if (this.byChannel.has(ch) || this.quarantine.has(ch)) continue;
      this.nextChannel = ch + 1 > CHANNEL_MAX ? CHANNEL_MIN : ch + 1;
      return ch;
    }
    return null;
  }
}
