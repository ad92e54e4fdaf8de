// Capture of what local programs broadcast or multicast on the watched ports: nftables hands a
// copy of each such datagram to one of our sockets on 127.0.0.1 (see nft.ts), so nothing here
// binds the game's port and the game keeps receiving everything it did before. One socket per
// watched (destination, port): its port tells what the game sent to; the datagram's source is
// the game's own address and port.

import dgram from 'node:dgram';
import type { Logger } from '../core/log.js';
import { isIPv4 } from '../net/addr.js';
import { isMulticast, LIMITED_BROADCAST } from './envelope.js';
import type { LanTable } from './table.js';

export interface GroupTarget {
  group: string;
  port: number;
}

export interface CapturedDatagram {
  /** The local sender, as the game bound it (one of this machine's addresses). */
  srcIp: string;
  srcPort: number;
  /** 255.255.255.255 for any broadcast (limited or directed), else the multicast group. */
  dst: string;
  dstPort: number;
  payload: Buffer;
}

/** "224.0.0.251:5353" → target, or null unless it is exactly a multicast group and a port 1-65535. */
export function parseGroup(s: unknown): GroupTarget | null {
  if (typeof s !== 'string' || s.length > 21) return null;
  const m = /^([0-9.]+):([1-9]\d{0,4})$/.exec(s);
  if (!m || !m[1] || !m[2] || !isIPv4(m[1]) || !isMulticast(m[1])) return null;
  const port = Number(m[2]);
  return port <= 65535 ? { group: m[1], port } : null;
}

interface Slot {
  dst: string;
  dstPort: number;
  sock: dgram.Socket;
  port: number;
}

const keyOf = (dst: string, port: number): string => `${dst}:${port}`;

/** SO_RCVBUF of each capture socket (the kernel caps it at net.core.rmem_max). */
const CAPTURE_RECV_BUFFER = 1 << 20;

export interface CaptureOptions {
  table: LanTable;
  log: Logger;
  onDatagram(d: CapturedDatagram): void;
}

export class NftCapture {
  private readonly slots = new Map<string, Slot>();
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly o: CaptureOptions) {}

  /** Watches exactly these broadcast ports and groups; resolves once the kernel copies them to us. */
  setTargets(ports: readonly number[], groups: readonly GroupTarget[]): Promise<void> {
    const next = this.chain.then(() => this.apply(ports, groups));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async apply(ports: readonly number[], groups: readonly GroupTarget[]): Promise<void> {
    if (this.closed) return;
    const wanted = new Map<string, { dst: string; dstPort: number }>();
    for (const p of ports) wanted.set(keyOf(LIMITED_BROADCAST, p), { dst: LIMITED_BROADCAST, dstPort: p });
    for (const g of groups) wanted.set(keyOf(g.group, g.port), { dst: g.group, dstPort: g.port });
    // Sockets first, rules second: a copy must never arrive at a port nobody holds.
    for (const [k, w] of wanted) if (!this.slots.has(k)) this.slots.set(k, await this.open(w.dst, w.dstPort));
    const gone = [...this.slots].filter(([k]) => !wanted.has(k));
    for (const [k] of gone) this.slots.delete(k);
    const all = [...this.slots.values()];
    await this.o.table.setCapture(
      all.filter((s) => s.dst === LIMITED_BROADCAST).map((s) => ({ port: s.dstPort, capturePort: s.port })),
      all.filter((s) => s.dst !== LIMITED_BROADCAST).map((s) => ({ group: s.dst, port: s.dstPort, capturePort: s.port })),
    );
    for (const [, s] of gone) s.sock.close();
  }

  private open(dst: string, dstPort: number): Promise<Slot> {
    return new Promise((resolve, reject) => {
      // Room for a burst while the event loop is busy (as the relay socket has): with the default
      // buffer (~200 small datagrams) a loaded machine dropped a third of a 3000-datagram flood in
      // the kernel, uncounted, before the rate limiter ever saw it.
      const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: CAPTURE_RECV_BUFFER });
      sock.once('error', reject);
      sock.bind(0, '127.0.0.1', () => {
        sock.off('error', reject);
        sock.on('error', (err) => this.o.log.warn('capture socket error', { dst, dstPort, err: String(err) }));
        sock.on('message', (payload, r) => this.o.onDatagram({ srcIp: r.address, srcPort: r.port, dst, dstPort, payload }));
        resolve({ dst, dstPort, sock, port: sock.address().port });
      });
    });
  }

  /** Stops the copies (the table is the caller's to remove) and closes the sockets. */
  async close(): Promise<void> {
    this.closed = true;
    await this.chain;
    for (const s of this.slots.values()) s.sock.close();
    this.slots.clear();
  }
}
