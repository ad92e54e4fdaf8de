// The LAN relay's I/O on Linux: the relay socket on our virtual IP (envelopes to and from the
// other members, through the tunnel only), nftables capture and injection, and their one table.
// Needs CAP_NET_ADMIN (nft) like the rest of the helper's data path.

import dgram from 'node:dgram';
import type { Logger } from '../core/log.js';
import type { NftRunner } from '../net/nft-committer.js';
import { NftCapture, type CapturedDatagram, type GroupTarget } from './capture.js';
import { NftInjector, type InjectDatagram, type McastInterface } from './inject.js';
import { LanTable } from './table.js';

export interface RelayIoHandlers {
  onCaptured(d: CapturedDatagram): void;
  onEnvelope(msg: Buffer, from: { address: string; port: number }): void;
}

/** What LanRelay needs from the system; tests substitute a fake. */
export interface LanRelayIo {
  start(h: RelayIoHandlers): Promise<void>;
  setTargets(ports: readonly number[], groups: readonly GroupTarget[]): Promise<void>;
  send(msg: Buffer, ip: string, port: number): void;
  /** False when nothing was sent: no local program joined the multicast group. */
  inject(d: InjectDatagram): Promise<boolean>;
  close(): Promise<void>;
}

/** Removes the relay's table, e.g. one a killed helper left behind (its capture ports are gone). */
export function removeLanTable(table?: string, nft?: NftRunner): Promise<void> {
  return new LanTable({ ...(table ? { table } : {}), ...(nft ? { run: nft } : {}) }).remove();
}

export interface LinuxRelayIoOptions {
  selfVirtualIp: string;
  relayPort: number;
  log: Logger;
  /** The WireGuard interface: when given, the relay port accepts datagrams only from it. */
  tunnelInterface?: string;
  table?: string;
  multicastInterface?: () => McastInterface | undefined;
  nft?: NftRunner;
}

export class LinuxRelayIo implements LanRelayIo {
  private readonly table: LanTable;
  private capture: NftCapture | undefined;
  private injector: NftInjector | undefined;
  private sock: dgram.Socket | undefined;

  constructor(private readonly o: LinuxRelayIoOptions) {
    this.table = new LanTable({ ...(o.table ? { table: o.table } : {}), ...(o.nft ? { run: o.nft } : {}) });
  }

  async start(h: RelayIoHandlers): Promise<void> {
    // Bound to the virtual IP: envelopes only ever travel inside the tunnel.
    const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(this.o.relayPort, this.o.selfVirtualIp, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    sock.on('error', (err) => this.o.log.warn('LAN relay socket error', { err: String(err) }));
    sock.on('message', (msg, r) => h.onEnvelope(msg, { address: r.address, port: r.port }));
    this.sock = sock;
    this.capture = new NftCapture({ table: this.table, log: this.o.log, onDatagram: (d) => h.onCaptured(d) });
    this.injector = new NftInjector({
      table: this.table,
      log: this.o.log,
      ...(this.o.multicastInterface ? { multicastInterface: this.o.multicastInterface } : {}),
    });
    if (this.o.tunnelInterface) await this.table.setRelayGuard({ ip: this.o.selfVirtualIp, port: this.o.relayPort, iface: this.o.tunnelInterface });
  }

  setTargets(ports: readonly number[], groups: readonly GroupTarget[]): Promise<void> {
    if (!this.capture) return Promise.reject(new Error('LAN relay I/O not started'));
    return this.capture.setTargets(ports, groups);
  }

  send(msg: Buffer, ip: string, port: number): void {
    this.sock?.send(msg, port, ip);
  }

  inject(d: InjectDatagram): Promise<boolean> {
    if (!this.injector) return Promise.reject(new Error('LAN relay I/O not started'));
    return this.injector.inject(d);
  }

  async close(): Promise<void> {
    // Rules first: no copy may arrive at a capture port that is already closed.
    await this.table.remove().catch((err: unknown) => this.o.log.warn('could not remove the LAN relay table', { table: this.table.name, err: String(err) }));
    await this.capture?.close();
    await this.injector?.close();
    this.sock?.close();
    this.sock = undefined;
  }
}
