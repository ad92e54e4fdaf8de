// The hard side's sockets for birthday probing (birthday.ts): many UDP sockets on ephemeral
// ports, each opening its own NAT mapping towards the peer with a priming packet, until one of
// them hears the peer; that one is kept (the peer's endpoint is pinned to it) and the rest close.
// Each is a PublicSocket, so priming keeps its TTL rules; no large buffers (most live seconds).

import { PublicSocket } from './socket.js';
import type { Endpoint } from './addr.js';

export interface SpraySocketsOptions {
  bindAddress: string;
  count: number;
  primingTtl: number;
  onMessage(msg: Buffer, ip: string, port: number, sock: PublicSocket): void;
  onError(err: Error): void;
}

export class SpraySockets {
  private socks: PublicSocket[] = [];
  private closed = false;
  private kept: PublicSocket | null = null;

  constructor(private readonly o: SpraySocketsOptions) {}

  /** Binds up to `count` sockets; returns how many are open (fewer when out of descriptors). */
  async open(): Promise<number> {
    const made = Array.from({ length: this.o.count }, () => {
      const s: PublicSocket = new PublicSocket({
        bindAddress: this.o.bindAddress,
        port: 0,
        primingTtl: this.o.primingTtl,
        bufferBytes: 0,
        onMessage: (m, ip, port) => {
          if (!this.closed || s === this.kept) this.o.onMessage(m, ip, port, s);
        },
        onError: (err) => this.o.onError(err),
      });
      return s;
    });
    const bound = await Promise.allSettled(made.map((s) => s.bind()));
    made.forEach((s, i) => {
      if (bound[i]?.status === 'fulfilled' && !this.closed) this.socks.push(s);
      else void s.close();
    });
    return this.socks.length;
  }

  get size(): number {
    return this.socks.length;
  }

  /** From every socket, one packet (fresh from `packet()`) to each target at the priming TTL. */
  async prime(packet: () => Buffer, targets: readonly Endpoint[]): Promise<number> {
    let n = 0;
    for (const s of this.socks) {
      for (const t of targets) {
        s.prime(packet(), t.port, t.ip);
        n++;
      }
    }
    await Promise.all(this.socks.map((s) => s.whenPrimed()));
    return n;
  }

  /** Keeps `sock` (now the caller's to close) and closes every other one. */
  keep(sock: PublicSocket): void {
    const others = this.socks.filter((s) => s !== sock);
    this.socks = [];
    this.kept = sock;
    this.closed = true;
    for (const s of others) void s.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = this.socks;
    this.socks = [];
    await Promise.all(all.map((s) => s.close()));
  }
}
