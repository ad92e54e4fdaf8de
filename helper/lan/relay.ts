// The LAN illusion, tied together: what local games broadcast or multicast on the watched ports
// is captured, de-duplicated, rate-limited and sent as an envelope to every other member's relay
// through the tunnel (their virtual IP, the relay port); what arrives from them is checked and
// injected here so that local games see the sending player's virtual IP and port as the source.
// The games' unicast replies then cross WireGuard by themselves.
//
// No loops, whatever the party size: every member is one tunnel hop from every other, so a relay
// sends only what it captured (hops 0) and never forwards what it received (hops must be 0);
// injected datagrams are never captured (nft.ts); each envelope is injected at most once.

import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { isIPv4 } from '../net/addr.js';
import { parseGroup, type CapturedDatagram, type GroupTarget } from './capture.js';
import { DedupWindow } from './dedup.js';
import { encodeEnvelope, isUnicastOrigin, LIMITED_BROADCAST, MAX_PAYLOAD, parseEnvelope } from './envelope.js';
import { LinuxRelayIo, type LanRelayIo } from './linux.js';
import { MDNS_GROUP, MDNS_PORT, rewriteMdnsAddresses } from './mdns-rewrite.js';
import { ownSenders, type OwnSenders } from '../net/own-senders.js';
import { RateLimiter, TokenBucket, type BucketConfig } from './ratelimit.js';

/** mDNS, SSDP and Minecraft's LAN announcements: always carried while the relay runs. */
export const DEFAULT_GROUPS: readonly string[] = ['224.0.0.251:5353', '239.255.255.250:1900', '224.0.2.60:4445'];
/** Every member must use the same port; next to the helper's own (HTTP 8666, gRPC 8667, control 8670-8672). */
export const DEFAULT_LAN_RELAY_PORT = 8668;
export const MAX_PORTS = 256;
export const MAX_GROUPS = 64;

export interface LanLimits {
  /** Copies of one datagram sent out of several interfaces at once count once within this. */
  captureDedupMs: number;
  /** An envelope id is injected at most once within this. */
  receiveDedupMs: number;
  /** Per local sending socket (source port). */
  perSource: BucketConfig;
  /** Everything this machine captures. */
  captureTotal: BucketConfig;
  /** Per remote player, on receipt (protects against a member whose relay does not limit). */
  perOrigin: BucketConfig;
}

export const DEFAULT_LIMITS: LanLimits = {
  captureDedupMs: 100,
  receiveDedupMs: 5000,
  perSource: { ratePerSec: 50, burst: 100 },
  captureTotal: { ratePerSec: 200, burst: 400 },
  perOrigin: { ratePerSec: 200, burst: 400 },
};

export interface LanCounters {
  /** Datagrams local programs broadcast or multicast on a watched port. */
  captured: number;
  /** Envelopes sent (one per other member per captured datagram that passed). */
  forwarded: number;
  /** Envelopes that arrived on the relay port. */
  received: number;
  /** Datagrams handed to local programs. */
  injected: number;
  droppedDuplicate: number;
  droppedRateLimited: number;
  /** Malformed, oversize, or not from a member's relay. */
  droppedInvalid: number;
  /** For a port or group not enabled here. */
  droppedPolicy: number;
  /** Forwarded envelopes (hops ≠ 0) or our own. */
  droppedLoop: number;
  /** Multicast for a group no local program has joined (sending it would only leak it onto the LAN). */
  droppedNoListener: number;
  /** Injection or send failures. */
  errors: number;
}

export const zeroCounters = (): LanCounters => ({
  captured: 0,
  forwarded: 0,
  received: 0,
  injected: 0,
  droppedDuplicate: 0,
  droppedRateLimited: 0,
  droppedInvalid: 0,
  droppedPolicy: 0,
  droppedLoop: 0,
  droppedNoListener: 0,
  errors: 0,
});

export interface LanRelayOptions {
  /** Our address on the virtual LAN; the relay socket is bound to it. */
  selfVirtualIp: string;
  /** The other members' virtual IPs, asked for each datagram (membership changes take effect at once). */
  peers(): string[];
  /** Broadcast ports (limited and directed broadcasts to these are carried). */
  ports: readonly number[];
  /** Multicast "group:port" pairs, e.g. DEFAULT_GROUPS. */
  groups: readonly string[];
  /** The helper's own discovery sockets (default: the process-wide registry): not carried. */
  ownSenders?: OwnSenders;
  /** A datagram was handled (or an injection finished): counters() may have changed. */
  onCounters?: () => void;
  relayPort: number;
  log: Logger;
  clock?: Clock;
  /** The WireGuard interface: the relay port then accepts datagrams only from it. */
  tunnelInterface?: string;
  limits?: Partial<LanLimits>;
  /** The system side; default: LinuxRelayIo (nftables). */
  io?: LanRelayIo;
  /**
   * mDNS answers leave with this machine's addresses in A records replaced by our virtual IP
   * (mdns-rewrite.ts); the predicate says which addresses are this machine's. Off when absent.
   */
  mdnsLocal?: (ip: string) => boolean;
}

function checkPorts(ports: readonly number[], relayPort: number): number[] {
  if (ports.length > MAX_PORTS) throw new Error(`LAN relay: at most ${MAX_PORTS} broadcast ports`);
  for (const p of ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`LAN relay: broadcast port ${p} is not 1-65535`);
    if (p === relayPort) throw new Error(`LAN relay: port ${p} is the relay's own port`);
  }
  return [...new Set(ports)];
}

function checkGroups(groups: readonly string[]): GroupTarget[] {
  if (groups.length > MAX_GROUPS) throw new Error(`LAN relay: at most ${MAX_GROUPS} multicast groups`);
  const out = new Map<string, GroupTarget>();
  for (const s of groups) {
    const g = parseGroup(s);
    if (!g) throw new Error(`LAN relay: ${JSON.stringify(s)} is not "multicast-group:port"`);
    out.set(`${g.group}:${g.port}`, g);
  }
  return [...out.values()];
}

export class LanRelay {
  private ports: number[];
  private groups: GroupTarget[];
  private portSet = new Set<number>();
  private groupSet = new Set<string>();
  private readonly io: LanRelayIo;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly limits: LanLimits;
  private readonly captureDedup: DedupWindow;
  private readonly receiveDedup: DedupWindow;
  private readonly perSource: RateLimiter;
  private readonly captureTotal: TokenBucket;
  private readonly perOrigin: RateLimiter;
  private readonly c = zeroCounters();
  private readonly idPrefix = randomBytes(4).toString('hex');
  private seq = 0;
  private started = false;
  private closed = false;
  private readonly lastNote = new Map<string, number>();

  constructor(private readonly o: LanRelayOptions) {
    if (!isUnicastOrigin(o.selfVirtualIp)) throw new Error(`LAN relay: bad virtual IP ${JSON.stringify(o.selfVirtualIp)}`);
    if (!Number.isInteger(o.relayPort) || o.relayPort < 1 || o.relayPort > 65535) throw new Error(`LAN relay: relay port ${o.relayPort} is not 1-65535`);
    this.log = o.log.child({ part: 'lan' });
    this.clock = o.clock ?? systemClock;
    this.limits = { ...DEFAULT_LIMITS, ...o.limits };
    this.ports = checkPorts(o.ports, o.relayPort);
    this.groups = checkGroups(o.groups);
    this.index();
    const now = this.clock.now();
    this.captureDedup = new DedupWindow(this.limits.captureDedupMs);
    this.receiveDedup = new DedupWindow(this.limits.receiveDedupMs);
    this.perSource = new RateLimiter(this.limits.perSource);
    this.captureTotal = new TokenBucket(this.limits.captureTotal, now);
    this.perOrigin = new RateLimiter(this.limits.perOrigin, 256);
    this.io =
      o.io ??
      new LinuxRelayIo({ selfVirtualIp: o.selfVirtualIp, relayPort: o.relayPort, log: this.log, ...(o.tunnelInterface ? { tunnelInterface: o.tunnelInterface } : {}) });
  }

  async start(): Promise<void> {
    if (this.started || this.closed) throw new Error('LAN relay: start() once, before close()');
    this.started = true;
    try {
      await this.io.start({ onCaptured: (d) => this.onCaptured(d), onEnvelope: (m, f) => this.onEnvelope(m, f) });
      await this.io.setTargets(this.ports, this.groups);
    } catch (err) {
      // Nothing half-made stays behind (sockets, rules); the caller may try again with a new relay.
      this.closed = true;
      await this.io.close().catch(() => undefined);
      throw err;
    }
    this.log.info('LAN relay running', { virtualIp: this.o.selfVirtualIp, relayPort: this.o.relayPort, ports: this.ports, groups: this.groups.map((g) => `${g.group}:${g.port}`) });
  }

  /** Changes the watched broadcast ports (and, if given, the multicast groups). */
  async setPorts(ports: readonly number[], groups?: readonly string[]): Promise<void> {
    const p = checkPorts(ports, this.o.relayPort);
    const g = groups ? checkGroups(groups) : this.groups;
    this.ports = p;
    this.groups = g;
    this.index();
    if (this.started && !this.closed) await this.io.setTargets(this.ports, this.groups);
  }

  counters(): LanCounters {
    return { ...this.c };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.started) await this.io.close();
  }

  private index(): void {
    this.portSet = new Set(this.ports);
    this.groupSet = new Set(this.groups.map((g) => `${g.group}:${g.port}`));
  }

  private currentPeers(): string[] {
    const out = new Set<string>();
    for (const ip of this.o.peers()) if (isIPv4(ip) && ip !== this.o.selfVirtualIp && isUnicastOrigin(ip)) out.add(ip);
    return [...out];
  }

  private onCaptured(d: CapturedDatagram): void {
    if (this.closed) return;
    // The helper's own search (own-senders.ts), not a game's: not ours to carry, not counted.
    if ((this.o.ownSenders ?? ownSenders).has(d.srcIp, d.srcPort)) return;
    this.c.captured++;
    this.o.onCounters?.();
    const now = this.clock.now();
    if (d.payload.length > MAX_PAYLOAD) {
      this.c.droppedInvalid++;
      this.note('oversize', { srcPort: d.srcPort, dstPort: d.dstPort, bytes: d.payload.length });
      return;
    }
    if (this.o.mdnsLocal && d.dst === MDNS_GROUP && d.dstPort === MDNS_PORT) {
      // Before the digest: copies sent out of several interfaces differ only in their A records.
      d = { ...d, payload: rewriteMdnsAddresses(d.payload, this.o.selfVirtualIp, this.o.mdnsLocal).payload };
    }
    // The source address is left out: a game sending out of every interface uses one port but
    // a different source address on each.
    const digest = createHash('sha1').update(d.payload).digest('base64');
    if (this.captureDedup.isDuplicate(`${d.srcPort}|${d.dst}|${d.dstPort}|${digest}`, now)) {
      this.c.droppedDuplicate++;
      return;
    }
    if (!this.perSource.allow(String(d.srcPort), now) || !this.captureTotal.take(now)) {
      this.c.droppedRateLimited++;
      this.note('capture rate limited', { srcPort: d.srcPort, dstPort: d.dstPort });
      return;
    }
    const peers = this.currentPeers();
    if (peers.length === 0) return;
    this.seq = (this.seq + 1) >>> 0;
    const msg = encodeEnvelope({
      origin: this.o.selfVirtualIp,
      srcPort: d.srcPort,
      dst: d.dst,
      dstPort: d.dstPort,
      hops: 0,
      id: this.idPrefix + this.seq.toString(16).padStart(8, '0'),
      payload: d.payload,
    });
    for (const ip of peers) {
      try {
        this.io.send(msg, ip, this.o.relayPort);
        this.c.forwarded++;
      } catch (err) {
        this.c.errors++;
        this.note('send failed', { to: ip, err: String(err) });
      }
    }
  }

  private onEnvelope(msg: Buffer, from: { address: string; port: number }): void {
    if (this.closed) return;
    this.c.received++;
    this.o.onCounters?.();
    const parsed = parseEnvelope(msg);
    if (!parsed.ok) {
      this.c.droppedInvalid++;
      this.note('invalid envelope', { from: from.address, reason: parsed.reason });
      return;
    }
    const e = parsed.envelope;
    if (e.origin === this.o.selfVirtualIp || e.hops !== 0) {
      this.c.droppedLoop++;
      this.note('looping envelope', { from: from.address, origin: e.origin, hops: e.hops });
      return;
    }
    // Only a member's relay may speak for that member (WireGuard vouches for the source address).
    if (from.address !== e.origin || from.port !== this.o.relayPort || !this.currentPeers().includes(e.origin)) {
      this.c.droppedInvalid++;
      this.note('envelope not from a member relay', { from: `${from.address}:${from.port}`, origin: e.origin });
      return;
    }
    const allowed = e.dst === LIMITED_BROADCAST ? this.portSet.has(e.dstPort) : this.groupSet.has(`${e.dst}:${e.dstPort}`);
    if (!allowed) {
      this.c.droppedPolicy++;
      this.note('port or group not enabled here', { origin: e.origin, dst: `${e.dst}:${e.dstPort}` });
      return;
    }
    const now = this.clock.now();
    if (this.receiveDedup.isDuplicate(`${e.origin}|${e.id}`, now)) {
      this.c.droppedDuplicate++;
      return;
    }
    if (!this.perOrigin.allow(e.origin, now)) {
      this.c.droppedRateLimited++;
      this.note('receive rate limited', { origin: e.origin });
      return;
    }
    this.io.inject({ srcIp: e.origin, srcPort: e.srcPort, dst: e.dst, dstPort: e.dstPort, payload: e.payload }).then(
      (sent) => {
        if (sent) this.c.injected++;
        else this.c.droppedNoListener++;
        this.o.onCounters?.();
      },
      (err: unknown) => {
        this.c.errors++;
        this.o.onCounters?.();
        this.note('inject failed', { origin: e.origin, err: String(err) });
      },
    );
  }

  /** Logs a kind of drop at most every 10 s: a flood must not become a log flood. */
  private note(what: string, fields: Record<string, unknown>): void {
    const now = this.clock.now();
    const last = this.lastNote.get(what);
    if (last !== undefined && now - last < 10_000) return;
    this.lastNote.set(what, now);
    this.log.debug(`LAN relay: ${what}`, fields);
  }
}
