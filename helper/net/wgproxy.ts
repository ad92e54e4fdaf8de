// "Through the helper": each peer's WireGuard endpoint is a 127.0.0.1 port of ours (L). What
// WireGuard sends to L leaves through the public socket on the peer's path; what the peer's
// WireGuard sends us is handed to WireGuard from L, so WireGuard sees it come from the endpoint it
// knows. L is connect()ed to WireGuard's port (only WireGuard can talk to it, and the kernel skips
// the per-packet route lookup); buffers are 4 MiB; packets are passed on without copies.

import dgram from 'node:dgram';
import { literalLookup, SOCKET_BUFFER_BYTES } from './socket.js';

export const HOLD_PACKETS = 4;

/** The last few packets for a peer without a path (WireGuard's handshake must not be lost). */
export class HoldQueue {
  private buf: Buffer[] = [];
  dropped = 0;

  constructor(private readonly cap = HOLD_PACKETS) {}

  push(b: Buffer): void {
    if (this.buf.length >= this.cap) {
      this.buf.shift();
      this.dropped++;
    }
    this.buf.push(b);
  }

  /** Drops the held packets that match; returns how many. */
  discard(match: (b: Buffer) => boolean): number {
    const before = this.buf.length;
    this.buf = this.buf.filter((b) => !match(b));
    return before - this.buf.length;
  }

  /** Returns the held packets in order and empties the queue. */
  take(): Buffer[] {
    const b = this.buf;
    this.buf = [];
    return b;
  }

  get size(): number {
    return this.buf.length;
  }
}

interface Port {
  sock: dgram.Socket;
  port: number;
  /** WireGuard's port this socket is connect()ed to, 0 while not connected. */
  connectedTo: number;
  connecting: boolean;
  /** From the peer before the port was bound (its first handshake must not be lost either). */
  early: HoldQueue;
  /** Datagrams handed to WireGuard (from the peer) and taken from it (to the peer): per-peer metrics. */
  rxPackets: number;
  txPackets: number;
}

export interface WgProxyOptions {
  wgPort(): number;
  /** A datagram WireGuard sent to this peer's L. */
  fromWireGuard(peerId: string, msg: Buffer): void;
  onError(err: Error): void;
}

export class WgProxy {
  private readonly ports = new Map<string, Port>();
  private closed = false;

  constructor(private readonly o: WgProxyOptions) {}

  /** Opens the peer's L on 127.0.0.1 and returns its port. */
  async add(peerId: string): Promise<number> {
    const have = this.ports.get(peerId);
    if (have) return have.port;
    const sock = dgram.createSocket({ type: 'udp4', lookup: literalLookup });
    const p: Port = { sock, port: 0, connectedTo: 0, connecting: false, early: new HoldQueue(), rxPackets: 0, txPackets: 0 };
    sock.on('error', (err) => this.o.onError(err));
    sock.on('message', (msg, r) => {
      // Unconnected (WireGuard's port unknown when we bound): accept only WireGuard's own port.
      if (p.connectedTo === 0 && (r.address !== '127.0.0.1' || r.port !== this.o.wgPort())) return;
      p.txPackets++;
      this.o.fromWireGuard(peerId, msg);
    });
    this.ports.set(peerId, p);
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: '127.0.0.1', port: 0, exclusive: true }, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    try {
      sock.setRecvBufferSize(SOCKET_BUFFER_BYTES);
      sock.setSendBufferSize(SOCKET_BUFFER_BYTES);
    } catch {
      /* keep the defaults */
    }
    p.port = sock.address().port;
    if (this.closed || this.ports.get(peerId) !== p) {
      sock.close();
      throw new Error('proxy closed while opening');
    }
    this.ensureConnected(p);
    for (const m of p.early.take()) this.toWireGuard(peerId, m);
    return p.port;
  }

  /** Datagrams this peer's port forwarded so far (fast-path traffic never passes here). */
  packets(peerId: string): { rx: number; tx: number } {
    const p = this.ports.get(peerId);
    return { rx: p?.rxPackets ?? 0, tx: p?.txPackets ?? 0 };
  }

  port(peerId: string): number | undefined {
    return this.ports.get(peerId)?.port || undefined;
  }

  /** Hands a datagram from the peer to WireGuard, from the peer's L. */
  toWireGuard(peerId: string, msg: Buffer): boolean {
    const p = this.ports.get(peerId);
    const wg = this.o.wgPort();
    if (!p || wg <= 0) return false;
    if (p.port === 0) {
      p.early.push(msg);
      return true;
    }
    p.rxPackets++;
    if (p.connectedTo === wg) p.sock.send(msg);
    else {
      this.ensureConnected(p);
      p.sock.send(msg, wg, '127.0.0.1');
    }
    return true;
  }

  private ensureConnected(p: Port): void {
    const wg = this.o.wgPort();
    if (p.connecting || wg <= 0 || p.connectedTo === wg) return;
    if (p.connectedTo !== 0) {
      p.sock.disconnect();
      p.connectedTo = 0;
    }
    p.connecting = true;
    p.sock.connect(wg, '127.0.0.1', () => {
      p.connecting = false;
      p.connectedTo = wg;
    });
  }

  remove(peerId: string): void {
    const p = this.ports.get(peerId);
    if (!p) return;
    this.ports.delete(peerId);
    try {
      p.sock.close();
    } catch {
      /* already closed */
    }
  }

  close(): void {
    this.closed = true;
    for (const id of [...this.ports.keys()]) this.remove(id);
  }
}
