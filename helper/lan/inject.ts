// Injection: hands a remote player's broadcast or multicast datagram to local programs so that it
// looks sent by that player's virtual IP and port. Node's dgram cannot send from an address this
// machine does not own (that needs IP_TRANSPARENT); instead each remote source gets one local
// injector socket, and a stateless nftables rule (nft.ts) rewrites that socket's datagrams to the
// remote source before conntrack sees them. Measured (helper/lan/README.md): the game sees the
// remote virtual IP and port, and its unicast reply is routed into the tunnel to the real player.
//
// Where the datagram goes, so that it never leaves this machine:
//   broadcast → 127.255.255.255 (the broadcast address of lo): every socket bound to 0.0.0.0 on
//               the port gets it, as with a real broadcast, and lo never puts it on a wire.
//   multicast → the group, out of the default-route interface (where games and mDNS daemons
//               join groups; they check the interface a datagram came in on) with TTL 0: the
//               kernel loops it back to local members and drops the copy for the wire. That drop
//               happens only when this machine is a member of the group on that interface (else
//               the kernel takes its plain output path and a TTL-0 datagram does reach the wire:
//               measured in the lab), so without a local member nothing is sent; nobody here
//               would have received it anyway.

import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { endianness, networkInterfaces } from 'node:os';
import type { Logger } from '../core/log.js';
import { isIPv4 } from '../net/addr.js';
import { isMulticast, LIMITED_BROADCAST } from './envelope.js';
import type { LanTable } from './table.js';

export const LOOPBACK_BROADCAST = '127.255.255.255';
const DEFAULT_MAX_SOURCES = 64;

export interface InjectDatagram {
  /** The remote player's virtual IP and port: the source the local game will see. */
  srcIp: string;
  srcPort: number;
  /** 255.255.255.255 or a multicast group. */
  dst: string;
  dstPort: number;
  payload: Buffer;
}

/** The interface of the lowest-metric default route in /proc/net/route text, or null. */
export function parseDefaultRouteInterface(procNetRoute: string): string | null {
  let best: { iface: string; metric: number } | null = null;
  for (const line of procNetRoute.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dest, , flags, , , metric, mask] = f;
    const up = (parseInt(flags ?? '0', 16) & 0x1) === 1;
    if (!iface || dest !== '00000000' || mask !== '00000000' || !up) continue;
    const m = Number(metric);
    if (!best || m < best.metric) best = { iface, metric: m };
  }
  return best?.iface ?? null;
}

export interface McastInterface {
  name: string;
  address: string;
}

/** The default-route interface and its IPv4 address (where multicast is injected), if there is one. */
export function defaultRouteInterface(): McastInterface | undefined {
  let name: string | null = null;
  try {
    name = parseDefaultRouteInterface(readFileSync('/proc/net/route', 'utf8'));
  } catch {
    return undefined;
  }
  if (!name) return undefined;
  const address = networkInterfaces()[name]?.find((a) => a.family === 'IPv4')?.address;
  return address ? { name, address } : undefined;
}

/**
 * /proc/net/igmp text → the IPv4 multicast groups joined on each interface. The kernel prints
 * each group as the hex of its 32-bit value in host byte order.
 */
export function parseIgmpGroups(text: string, littleEndian = endianness() === 'LE'): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  let current: Set<string> | undefined;
  for (const line of text.split('\n').slice(1)) {
    const dev = /^\d+\s+(\S+)\s*:/.exec(line);
    if (dev?.[1]) {
      current = new Set();
      out.set(dev[1], current);
      continue;
    }
    const grp = /^\s+([0-9A-Fa-f]{8})\s/.exec(line);
    if (grp?.[1] && current) {
      const n = parseInt(grp[1], 16);
      const b = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
      current.add((littleEndian ? b.reverse() : b).join('.'));
    }
  }
  return out;
}

/** Whether some local socket has joined `group` on interface `iface`. */
export function isLocalMember(iface: string, group: string): boolean {
  try {
    return parseIgmpGroups(readFileSync('/proc/net/igmp', 'utf8')).get(iface)?.has(group) ?? false;
  } catch {
    return false;
  }
}

interface Source {
  key: string;
  srcIp: string;
  srcPort: number;
  sock: dgram.Socket;
  localPort: number;
  /** Resolves when the rewrite rule for this socket is in the kernel. */
  ready: Promise<void>;
  /** The multicast interface address currently set on the socket. */
  mcastIf: string;
  lastUsed: number;
  inFlight: number;
}

export interface InjectorOptions {
  table: LanTable;
  log: Logger;
  /** The interface multicast is injected on; default: the default-route interface. */
  multicastInterface?: () => McastInterface | undefined;
  /** Whether a local socket joined the group on the interface; default: /proc/net/igmp. */
  isMember?: (iface: string, group: string) => boolean;
  /** Remote sources kept at once (one socket and one rule each); the least recently used goes. */
  maxSources?: number;
}

export class NftInjector {
  private readonly sources = new Map<string, Source>();
  private readonly opening = new Map<string, Promise<Source>>();
  private readonly maxSources: number;
  private closed = false;
  private tick = 0;

  constructor(private readonly o: InjectorOptions) {
    this.maxSources = o.maxSources ?? DEFAULT_MAX_SOURCES;
  }

  /**
   * Hands the datagram to local programs; false when nothing was sent because no local program
   * has joined the multicast group (there would be no receiver, and the datagram would leak).
   */
  async inject(d: InjectDatagram): Promise<boolean> {
    if (this.closed) throw new Error('injector closed');
    if (!isIPv4(d.srcIp)) throw new Error(`inject: bad source ${JSON.stringify(d.srcIp)}`);
    let to: string;
    let mcast: McastInterface | undefined;
    if (d.dst === LIMITED_BROADCAST) {
      to = LOOPBACK_BROADCAST;
    } else if (isMulticast(d.dst)) {
      to = d.dst;
      mcast = (this.o.multicastInterface ?? defaultRouteInterface)();
      if (!mcast || !(this.o.isMember ?? isLocalMember)(mcast.name, d.dst)) return false;
    } else {
      throw new Error(`inject: ${JSON.stringify(d.dst)} is neither the broadcast address nor a multicast group`);
    }
    const s = await this.source(d.srcIp, d.srcPort);
    s.inFlight++;
    try {
      await s.ready;
      // libuv sends at once when the socket's queue is empty, so the interface set here is the
      // one this datagram leaves by.
      if (mcast && s.mcastIf !== mcast.address) {
        s.sock.setMulticastInterface(mcast.address);
        s.mcastIf = mcast.address;
      }
      await new Promise<void>((resolve, reject) => s.sock.send(d.payload, d.dstPort, to, (err) => (err ? reject(err) : resolve())));
      return true;
    } finally {
      s.inFlight--;
    }
  }

  private source(srcIp: string, srcPort: number): Promise<Source> {
    const key = `${srcIp}:${srcPort}`;
    const have = this.sources.get(key);
    if (have) {
      have.lastUsed = ++this.tick;
      return Promise.resolve(have);
    }
    // Datagrams from a new source that arrive together share one socket and one rule.
    let opening = this.opening.get(key);
    if (!opening) {
      opening = this.create(key, srcIp, srcPort).finally(() => this.opening.delete(key));
      this.opening.set(key, opening);
    }
    return opening;
  }

  private async create(key: string, srcIp: string, srcPort: number): Promise<Source> {
    const sock = await this.openSocket();
    if (this.closed) {
      sock.close();
      throw new Error('injector closed');
    }
    const s: Source = { key, srcIp, srcPort, sock, localPort: sock.address().port, ready: Promise.resolve(), mcastIf: '', lastUsed: ++this.tick, inFlight: 0 };
    this.sources.set(key, s);
    const evicted = this.evict();
    s.ready = this.commit();
    s.ready.then(
      () => evicted.forEach((e) => e.sock.close()),
      (err: unknown) => {
        // Forget it so that the next datagram from this source tries again.
        if (this.sources.get(key) === s) this.sources.delete(key);
        sock.close();
        this.o.log.warn('could not install the injection rule', { source: key, err: String(err) });
      },
    );
    return s;
  }

  private evict(): Source[] {
    const out: Source[] = [];
    while (this.sources.size > this.maxSources) {
      let lru: Source | undefined;
      for (const s of this.sources.values()) if (s.inFlight === 0 && (!lru || s.lastUsed < lru.lastUsed)) lru = s;
      if (!lru) break;
      this.sources.delete(lru.key);
      out.push(lru);
    }
    return out;
  }

  private commit(): Promise<void> {
    return this.o.table.setInjectors([...this.sources.values()].map((s) => ({ localPort: s.localPort, srcIp: s.srcIp, srcPort: s.srcPort })));
  }

  private openSocket(): Promise<dgram.Socket> {
    return new Promise((resolve, reject) => {
      // Exclusive (no reuseAddr): the rewrite rule matches this source port, so no other socket
      // may ever send from it.
      const sock = dgram.createSocket({ type: 'udp4' });
      sock.once('error', reject);
      // 0.0.0.0, not 127.0.0.1: the kernel refuses a loopback source on the interface that
      // multicast leaves by. Nothing is ever sent to this port; what arrives is discarded.
      sock.bind(0, '0.0.0.0', () => {
        sock.off('error', reject);
        sock.on('error', (err) => this.o.log.debug('injector socket error', { err: String(err) }));
        sock.setBroadcast(true);
        sock.setMulticastTTL(0);
        sock.setMulticastLoopback(true);
        resolve(sock);
      });
    });
  }

  /** Closes every injector socket (the table is the caller's to remove). */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.sources.values()) s.sock.close();
    this.sources.clear();
  }
}
