// The test-side handle of a magicsock-driver process running in a lab namespace.

import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { MAGICSOCK_DRIVER_SCRIPT } from './magicsock-driver.js';
import type { MagicCounters, MagicPeer, NatMapping, PathState } from '../../../helper/net/magicsock.js';

export interface DriverSpawner {
  spawn(ns: string, cmd: string, args: string[], opts?: { env?: NodeJS.ProcessEnv }): ChildProcess;
}

export type DriverEvent = Record<string, unknown> & { type: string };

export interface ReadyInfo {
  port: number;
  wgPort: number;
  candidates: string[];
  nat: { mapping: NatMapping; publicAddress: string | null };
  /** With real WireGuard: its public key. */
  wgPublicKey?: string;
}

export class MagicDriver {
  readonly events: Array<DriverEvent & { at: number }> = [];
  private readonly listeners = new Set<(ev: DriverEvent) => void>();
  private stderr = '';
  private exited: string | null = null;
  private seq = 0;

  private constructor(readonly name: string, readonly child: ChildProcess) {}

  static spawn(lab: DriverSpawner, ns: string, name: string): MagicDriver {
    const child = lab.spawn(ns, process.execPath, [MAGICSOCK_DRIVER_SCRIPT], { env: { ...process.env, LAB_NS: ns, LANRAGE_LOG: process.env.LANRAGE_LOG ?? 'warn' } });
    const d = new MagicDriver(name, child);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => (d.stderr = (d.stderr + s).slice(-8000)));
    child.on('exit', (code, sig) => {
      d.exited = `driver ${name} exited (${code ?? sig})${d.stderr ? `: ${d.stderr.trim().slice(-2000)}` : ''}`;
      for (const l of d.listeners) l({ type: 'exit' });
    });
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      let ev: DriverEvent;
      try {
        ev = JSON.parse(line) as DriverEvent;
      } catch {
        return;
      }
      d.events.push({ ...ev, at: performance.now() });
      for (const l of d.listeners) l(ev);
    });
    return d;
  }

  get log(): string {
    return this.stderr;
  }

  send(cmd: Record<string, unknown>): void {
    this.child.stdin?.write(JSON.stringify(cmd) + '\n');
  }

  on(l: (ev: DriverEvent) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  waitFor(match: (ev: DriverEvent) => boolean, timeoutMs: number, what: string, pastToo = true): Promise<DriverEvent> {
    if (pastToo) {
      const hit = this.events.find((e) => match(e));
      if (hit) return Promise.resolve(hit);
    }
    return new Promise((resolve, reject) => {
      if (this.exited) return reject(new Error(`${this.exited} before ${what}`));
      const timer = setTimeout(() => {
        off();
        reject(new Error(`driver ${this.name}: no ${what} within ${timeoutMs} ms${this.stderr ? `\n${this.stderr.slice(-1500)}` : ''}`));
      }, timeoutMs);
      const off = this.on((ev) => {
        if (ev.type === 'exit') {
          clearTimeout(timer);
          off();
          reject(new Error(`${this.exited ?? 'driver exited'} before ${what}`));
        } else if (ev.type === 'fatal') {
          clearTimeout(timer);
          off();
          reject(new Error(`driver ${this.name}: ${String(ev.message)}`));
        } else if (match(ev)) {
          clearTimeout(timer);
          off();
          resolve(ev);
        }
      });
    });
  }

  async start(o: { discoPrivateKey: string; stunServers: string[]; primingTtl?: number; fastPath?: boolean; port?: number; wgInterface?: string; realWg?: { address: string } }): Promise<ReadyInfo> {
    this.send({ op: 'start', port: 0, ...o });
    const ev = await this.waitFor((e) => e.type === 'ready', 15_000, 'ready');
    return ev as unknown as ReadyInfo;
  }

  /** allowedIps: with real WireGuard, the peer is added to the device first. */
  setPeers(peers: Array<MagicPeer & { allowedIps?: string[] }>): void {
    this.send({ op: 'peers', peers });
  }

  paths(peerId: string): Array<PathState & { at: number }> {
    return this.events.filter((e) => e.type === 'path' && e.peerId === peerId).map((e) => ({ ...(e.state as PathState), at: e.at }));
  }

  async ping(peerId: string, count: number, timeoutMs = 1000): Promise<Array<{ answered: boolean; rttMs: number | null; via: string | null; path: string }>> {
    const id = ++this.seq;
    this.send({ op: 'ping', id, peerId, count, timeoutMs });
    const ev = await this.waitFor((e) => e.type === 'ping' && e.id === id, count * timeoutMs + 5000, 'ping results', false);
    if (ev.error) throw new Error(String(ev.error));
    return ev.results as Array<{ answered: boolean; rttMs: number | null; via: string | null; path: string }>;
  }

  async counters(): Promise<MagicCounters> {
    const id = ++this.seq;
    this.send({ op: 'counters', id });
    const ev = await this.waitFor((e) => e.type === 'counters' && e.id === id, 5000, 'counters', false);
    return ev.counters as MagicCounters;
  }

  /** Closes stdin: the driver closes its MagicSock (removing any nft table) and exits. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.stdin?.end();
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
  }
}
