// The one public UDP socket, with TTL priming. setTTL() is per socket and applies when the
// datagram actually leaves. dgram's default lookup delays even an IP literal by a tick, which
// would let a datagram handed over before a priming batch leave with the priming TTL; our lookup
// answers IPv4 literals synchronously (we only ever send to validated literals), so send() hits
// the kernel at once (and saves a tick per packet). A priming batch sets the low TTL, sends, and
// restores the normal TTL in the send callbacks; any datagram sent meanwhile waits in a short
// queue so it never leaves with the priming TTL. (A datagram libuv had to queue because the send
// buffer was full can still leave during a priming batch: under that pressure it would be lost
// anyway.)

import dgram from 'node:dgram';
import { isIPv4 } from './addr.js';

export const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

/** dgram lookup for IPv4 literals only, answered synchronously. */
export const literalLookup: NonNullable<dgram.SocketOptions['lookup']> = (hostname, _opts, cb) => {
  if (isIPv4(hostname)) cb(null, hostname, 4);
  else cb(Object.assign(new Error(`not an IPv4 literal: ${hostname}`), { code: 'EINVAL' }), '', 4);
};
export const NORMAL_TTL = 64;
const MAX_DEFERRED = 1024;

export interface PublicSocketOptions {
  bindAddress: string;
  port: number;
  primingTtl: number;
  onMessage(msg: Buffer, ip: string, port: number): void;
  onError(err: Error): void;
  /** Called as each datagram is handed to the kernel, in that order (NAT flow accounting). */
  onSend?(ip: string, port: number): void;
  /** Receive/send buffer size to ask for (default SOCKET_BUFFER_BYTES; 0 keeps the kernel's). */
  bufferBytes?: number;
}

interface Out {
  buf: Buffer;
  port: number;
  ip: string;
}

export class PublicSocket {
  private readonly sock: dgram.Socket;
  private primeQueue: Out[] = [];
  private deferred: Out[] = [];
  private priming = false;
  private flushScheduled = false;
  private waiters: Array<() => void> = [];
  private closed = false;
  /** Datagrams dropped because the deferred queue was full during priming. */
  droppedWhilePriming = 0;
  primesSent = 0;

  constructor(private readonly o: PublicSocketOptions) {
    this.sock = dgram.createSocket({ type: 'udp4', lookup: literalLookup });
    this.sock.on('message', (msg, r) => o.onMessage(msg, r.address, r.port));
    this.sock.on('error', (err) => o.onError(err));
  }

  bind(): Promise<number> {
    return new Promise((resolve, reject) => {
      const onErr = (err: Error): void => reject(err);
      this.sock.once('error', onErr);
      this.sock.bind({ address: this.o.bindAddress, port: this.o.port, exclusive: true }, () => {
        this.sock.off('error', onErr);
        // Best effort: the kernel caps these at net.core.[rw]mem_max.
        const bytes = this.o.bufferBytes ?? SOCKET_BUFFER_BYTES;
        try {
          if (bytes > 0) {
            this.sock.setRecvBufferSize(bytes);
            this.sock.setSendBufferSize(bytes);
          }
        } catch {
          /* keep the defaults */
        }
        resolve(this.sock.address().port);
      });
    });
  }

  get port(): number {
    return this.sock.address().port;
  }

  send(buf: Buffer, port: number, ip: string): void {
    if (this.closed) return;
    // Behind a prime queued this tick too: a prime must leave before the pings it prepares.
    if (this.priming || this.flushScheduled) {
      if (this.deferred.length < MAX_DEFERRED) this.deferred.push({ buf, port, ip });
      else this.droppedWhilePriming++;
      return;
    }
    this.o.onSend?.(ip, port);
    this.sock.send(buf, port, ip);
  }

  /** Sends buf with the priming TTL (batched with other primes of this tick). */
  prime(buf: Buffer, port: number, ip: string): void {
    if (this.closed) return;
    if (this.o.primingTtl <= 0) return this.send(buf, port, ip);
    this.primeQueue.push({ buf, port, ip });
    if (!this.flushScheduled && !this.priming) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flushPrimes());
    }
  }

  /** Resolves once every priming datagram queued so far has left. */
  whenPrimed(): Promise<void> {
    if (!this.priming && !this.flushScheduled && this.primeQueue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private flushPrimes(): void {
    this.flushScheduled = false;
    if (this.closed) return this.finishPriming();
    const batch = this.primeQueue;
    this.primeQueue = [];
    if (batch.length === 0) return this.finishPriming();
    this.priming = true;
    try {
      this.sock.setTTL(this.o.primingTtl);
    } catch (err) {
      this.o.onError(err as Error);
    }
    let left = batch.length;
    const done = (): void => {
      if (--left > 0) return;
      try {
        if (!this.closed) this.sock.setTTL(NORMAL_TTL);
      } catch (err) {
        this.o.onError(err as Error);
      }
      this.priming = false;
      // Primes queued while this batch was in flight go next, before the deferred datagrams.
      if (this.primeQueue.length > 0) return this.flushPrimes();
      this.finishPriming();
    };
    for (const p of batch) {
      this.primesSent++;
      this.o.onSend?.(p.ip, p.port);
      this.sock.send(p.buf, p.port, p.ip, () => done());
    }
  }

  private finishPriming(): void {
    const d = this.deferred;
    this.deferred = [];
    if (!this.closed) {
      for (const x of d) {
        this.o.onSend?.(x.ip, x.port);
        this.sock.send(x.buf, x.port, x.ip);
      }
    }
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.finishPriming();
    return new Promise((resolve) => this.sock.close(() => resolve()));
  }
}
