// How a TurnClient reaches its relay. Three ways, one narrow interface:
//   shared   the helper's one public UDP socket: we are handed send(); magicsock feeds the answers
//            back through TurnClient.handleDatagram() (its onUnclaimed option). The 5-tuple is fixed.
//   udp      a UDP socket of our own, connect()ed to the relay (tests, tools, a fallback).
//   tcp      a TCP connection with RFC 8656 stream framing, for networks that block UDP.
// Only our own sockets can be renewed: a new 5-tuple sidesteps coturn's memory of the old one.

import dgram from 'node:dgram';
import net from 'node:net';
import { literalLookup, SOCKET_BUFFER_BYTES } from '../socket.js';
import type { Endpoint } from '../addr.js';
import { StreamFramer } from './framing.js';

/** A socket someone else owns (magicsock's public socket). */
export interface DatagramTransport {
  send(buf: Buffer, ip: string, port: number): void;
}

export interface TransportEvents {
  onMessage(buf: Buffer): void;
  /** The transport died by itself (TCP closed or out of step); never called after close(). */
  onClosed(reason: string): void;
}

export interface TurnTransport {
  readonly kind: 'shared' | 'udp' | 'tcp';
  /** Requests are not retransmitted and ChannelData is padded to 4 bytes. */
  readonly stream: boolean;
  /** open() again gives a new 5-tuple. */
  readonly renewable: boolean;
  open(): Promise<void>;
  send(buf: Buffer): void;
  close(): void;
  /** "ip:port" of our end, when known (logs). */
  local(): string | null;
}

export class SharedUdpTransport implements TurnTransport {
  readonly kind = 'shared';
  readonly stream = false;
  readonly renewable = false;

  constructor(
    private readonly out: DatagramTransport,
    private readonly server: Endpoint,
  ) {}

  async open(): Promise<void> {}

  send(buf: Buffer): void {
    this.out.send(buf, this.server.ip, this.server.port);
  }

  close(): void {}

  local(): string | null {
    return null;
  }
}

export class OwnUdpTransport implements TurnTransport {
  readonly kind = 'udp';
  readonly stream = false;
  readonly renewable = true;
  private sock: dgram.Socket | null = null;

  constructor(
    private readonly server: Endpoint,
    private readonly ev: TransportEvents,
    private readonly bindAddress = '0.0.0.0',
  ) {}

  async open(): Promise<void> {
    this.close();
    const sock = dgram.createSocket({ type: 'udp4', lookup: literalLookup });
    this.sock = sock;
    sock.on('message', (m, r) => {
      // connect() already filters by source; the check stays in case the kernel ever does not.
      if (this.sock === sock && r.address === this.server.ip && r.port === this.server.port) this.ev.onMessage(m);
    });
    // ICMP errors on a connected UDP socket (ECONNREFUSED while the relay restarts) are just loss.
    sock.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: this.bindAddress, port: 0 }, () => {
        sock.connect(this.server.port, this.server.ip, () => {
          sock.off('error', reject);
          try {
            sock.setRecvBufferSize(SOCKET_BUFFER_BYTES);
            sock.setSendBufferSize(SOCKET_BUFFER_BYTES);
          } catch {
            /* keep the defaults */
          }
          resolve();
        });
      });
    });
  }

  send(buf: Buffer): void {
    this.sock?.send(buf);
  }

  close(): void {
    const s = this.sock;
    this.sock = null;
    if (s) {
      try {
        s.close();
      } catch {
        /* already closed */
      }
    }
  }

  local(): string | null {
    try {
      const a = this.sock?.address();
      return a ? `${a.address}:${a.port}` : null;
    } catch {
      return null;
    }
  }
}

/** Bytes queued in the kernel and in Node beyond which ChannelData is dropped, as UDP would. */
const TCP_MAX_QUEUED = 1024 * 1024;
const TCP_CONNECT_TIMEOUT_MS = 5000;

export class TcpTransport implements TurnTransport {
  readonly kind = 'tcp';
  readonly stream = true;
  readonly renewable = true;
  private sock: net.Socket | null = null;
  /** Datagrams dropped because the connection could not keep up. */
  dropped = 0;

  constructor(
    private readonly server: Endpoint,
    private readonly ev: TransportEvents,
    private readonly connectTimeoutMs = TCP_CONNECT_TIMEOUT_MS,
  ) {}

  open(): Promise<void> {
    this.close();
    const sock = net.connect({ host: this.server.ip, port: this.server.port, noDelay: true });
    this.sock = sock;
    const framer = new StreamFramer((f) => {
      if (this.sock === sock) this.ev.onMessage(f);
    });
    return new Promise<void>((resolve, reject) => {
      let connected = false;
      const timer = setTimeout(() => sock.destroy(new Error('TCP connect timed out')), this.connectTimeoutMs);
      timer.unref();
      sock.once('connect', () => {
        connected = true;
        clearTimeout(timer);
        sock.setKeepAlive(true, 15_000);
        resolve();
      });
      sock.on('data', (chunk: Buffer) => {
        try {
          framer.push(chunk);
        } catch (err) {
          sock.destroy(err as Error);
        }
      });
      sock.on('error', () => undefined);
      sock.once('close', () => {
        clearTimeout(timer);
        if (!connected) reject(new Error(`TCP connect to ${this.server.ip}:${this.server.port} failed`));
        else if (this.sock === sock) {
          this.sock = null;
          this.ev.onClosed('TCP connection closed');
        }
      });
    });
  }

  send(buf: Buffer): void {
    const s = this.sock;
    if (!s || s.destroyed || s.connecting) return;
    // STUN (control) always goes; ChannelData beyond the queue limit is dropped, as a full UDP
    // buffer would, instead of piling up latency in front of the next control message.
    const isData = buf.length > 0 && ((buf[0] as number) & 0xc0) === 0x40;
    if (isData && s.writableLength > TCP_MAX_QUEUED) {
      this.dropped++;
      return;
    }
    s.write(buf);
  }

  close(): void {
    const s = this.sock;
    this.sock = null;
    s?.destroy();
  }

  local(): string | null {
    const s = this.sock;
    return s && s.localAddress ? `${s.localAddress}:${s.localPort}` : null;
  }
}
