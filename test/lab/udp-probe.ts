// A tiny UDP endpoint for NAT tests, run inside a lab namespace:
//   node dist/test/lab/udp-probe.js --port 5000 [--port 5001 ...] [--echo]
// binds 0.0.0.0 on each port and writes one JSON line per event on stdout:
//   {"type":"ready","ports":[5000,5001]}
//   {"type":"recv","local":5000,"from":"203.0.113.6:40001","address":"203.0.113.6","port":40001,"data":"hi"}
//   {"type":"sent","seq":1} | {"type":"error","seq":1,"message":"..."}
// With --echo every datagram is sent back from the socket it arrived on. Commands arrive as JSON
// lines on stdin: {"op":"send","seq":1,"from":5000,"to":"203.0.113.2:3478","data":"hi","ttl":2}.
// It exits when stdin closes, so a probe never outlives the test that drives it.
// The same module exports UdpProbe, the test-side driver.

import dgram from 'node:dgram';
import { createInterface } from 'node:readline';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';

/** The compiled script (this file), for `lab.spawn(ns, process.execPath, [UDP_PROBE_SCRIPT, ...])`. */
export const UDP_PROBE_SCRIPT = fileURLToPath(import.meta.url);

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const DEFAULT_TTL = 64;

export interface ProbePacket {
  /** The local port it arrived on. */
  local: number;
  /** Its source, "address:port". */
  from: string;
  address: string;
  port: number;
  data: string;
}

export interface SendCommand {
  op: 'send';
  seq: number;
  from: number;
  to: string;
  data: string;
  ttl?: number;
}

function isPort(n: unknown, allowZero = false): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= (allowZero ? 0 : 1) && n <= 65535;
}

export function parseEndpoint(s: string): { address: string; port: number } {
  const m = /^([0-9.]+):(\d{1,5})$/.exec(s);
  const port = Number(m?.[2]);
  if (!m || m[1] === undefined || !IPV4_RE.test(m[1]) || !isPort(port)) throw new Error(`not an IPv4 endpoint: ${JSON.stringify(s)}`);
  return { address: m[1], port };
}

/** Validates a stdin command line; throws with a reason. */
export function parseCommand(line: string): SendCommand {
  const v = JSON.parse(line) as Record<string, unknown>;
  if (typeof v !== 'object' || v === null || v.op !== 'send') throw new Error('unknown op');
  if (typeof v.seq !== 'number' || !Number.isInteger(v.seq)) throw new Error('seq must be an integer');
  if (!isPort(v.from)) throw new Error('from must be a port');
  if (typeof v.to !== 'string') throw new Error('to must be "ip:port"');
  parseEndpoint(v.to);
  if (typeof v.data !== 'string' || v.data.length > 1200) throw new Error('data must be a string of at most 1200 characters');
  if (v.ttl !== undefined && !(typeof v.ttl === 'number' && Number.isInteger(v.ttl) && v.ttl >= 1 && v.ttl <= 255)) throw new Error('ttl must be 1..255');
  return { op: 'send', seq: v.seq, from: v.from, to: v.to, data: v.data, ...(v.ttl !== undefined ? { ttl: v.ttl as number } : {}) };
}

// --- the script --------------------------------------------------------------------------------

function emit(ev: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(ev) + '\n');
}

async function main(argv: string[]): Promise<void> {
  const ports: number[] = [];
  let echo = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--echo') echo = true;
    else if (a === '--port') {
      const p = Number(argv[++i]);
      if (!isPort(p, true)) throw new Error(`bad --port ${argv[i]}`);
      ports.push(p);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (ports.length === 0) throw new Error('at least one --port');

  const sockets = new Map<number, dgram.Socket>();
  for (const want of ports) {
    const sock = dgram.createSocket({ type: 'udp4' });
    await new Promise<void>((res, rej) => {
      sock.once('error', rej);
      sock.bind(want, '0.0.0.0', () => {
        sock.off('error', rej);
        res();
      });
    });
    const local = sock.address().port;
    sockets.set(local, sock);
    sock.on('error', (err) => emit({ type: 'error', local, message: err.message }));
    sock.on('message', (msg, rinfo) => {
      emit({ type: 'recv', local, from: `${rinfo.address}:${rinfo.port}`, address: rinfo.address, port: rinfo.port, data: msg.toString('utf8') });
      if (echo) sock.send(msg, rinfo.port, rinfo.address);
    });
  }
  emit({ type: 'ready', ports: [...sockets.keys()] });

  // One command at a time: a TTL set for one send must not leak into another.
  let chain = Promise.resolve();
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    chain = chain.then(async () => {
      let cmd: SendCommand;
      try {
        cmd = parseCommand(line);
      } catch (err) {
        emit({ type: 'error', message: `bad command: ${(err as Error).message}` });
        return;
      }
      const sock = sockets.get(cmd.from);
      if (!sock) return emit({ type: 'error', seq: cmd.seq, message: `not bound to port ${cmd.from}` });
      const to = parseEndpoint(cmd.to);
      try {
        if (cmd.ttl !== undefined) sock.setTTL(cmd.ttl);
        await new Promise<void>((res, rej) => sock.send(cmd.data, to.port, to.address, (err) => (err ? rej(err) : res())));
        emit({ type: 'sent', seq: cmd.seq });
      } catch (err) {
        emit({ type: 'error', seq: cmd.seq, message: (err as Error).message });
      } finally {
        if (cmd.ttl !== undefined) sock.setTTL(DEFAULT_TTL);
      }
    });
  });
  rl.on('close', () => {
    void chain.then(() => {
      for (const s of sockets.values()) s.close();
      process.exit(0);
    });
  });
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === UDP_PROBE_SCRIPT) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    emit({ type: 'fatal', message: (err as Error).message });
    process.exit(2);
  });
}

// --- the driver --------------------------------------------------------------------------------

export interface ProbeSpawner {
  spawn(ns: string, cmd: string, args: string[], opts?: { env?: NodeJS.ProcessEnv }): ChildProcess;
}

type Listener = (ev: Record<string, unknown>) => void;

/** Drives one udp-probe process in a namespace and keeps every datagram it reported. */
export class UdpProbe {
  readonly received: ProbePacket[] = [];
  private readonly listeners = new Set<Listener>();
  private seq = 0;
  private stderr = '';
  private exited: string | null = null;

  private constructor(
    readonly ns: string,
    readonly child: ChildProcess,
    public ports: number[],
  ) {}

  static async start(lab: ProbeSpawner, ns: string, opts: { ports: number[]; echo?: boolean; startTimeoutMs?: number }): Promise<UdpProbe> {
    const args = [UDP_PROBE_SCRIPT, ...opts.ports.flatMap((p) => ['--port', String(p)]), ...(opts.echo ? ['--echo'] : [])];
    const child = lab.spawn(ns, process.execPath, args);
    const probe = new UdpProbe(ns, child, []);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => (probe.stderr = (probe.stderr + d).slice(-4000)));
    child.on('exit', (code, sig) => {
      probe.exited = `udp-probe in ${ns} exited (${code ?? sig})${probe.stderr ? `: ${probe.stderr.trim()}` : ''}`;
      for (const l of probe.listeners) l({ type: 'exit' });
    });
    if (!child.stdout) throw new Error('udp-probe has no stdout');
    createInterface({ input: child.stdout }).on('line', (line) => {
      let ev: Record<string, unknown>;
      try {
        ev = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (ev.type === 'recv') {
        probe.received.push({ local: Number(ev.local), from: String(ev.from), address: String(ev.address), port: Number(ev.port), data: String(ev.data) });
      }
      for (const l of probe.listeners) l(ev);
    });
    const ready = await probe.next((ev) => ev.type === 'ready' || ev.type === 'fatal', opts.startTimeoutMs ?? 5000, 'ready');
    if (ready.type === 'fatal') throw new Error(`udp-probe in ${ns}: ${String(ready.message)}`);
    probe.ports = (ready.ports as number[]).map(Number);
    return probe;
  }

  private next(match: (ev: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    return new Promise((res, rej) => {
      if (this.exited) return rej(new Error(`${this.exited} before ${what}`));
      const done = (): void => {
        clearTimeout(timer);
        this.listeners.delete(l);
      };
      const l: Listener = (ev) => {
        if (ev.type === 'exit') {
          done();
          rej(new Error(`${this.exited ?? 'udp-probe exited'} before ${what}`));
        } else if (match(ev)) {
          done();
          res(ev);
        }
      };
      const timer = setTimeout(() => {
        this.listeners.delete(l);
        rej(new Error(`udp-probe in ${this.ns}: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.listeners.add(l);
    });
  }

  /** Sends one datagram from a bound local port; resolves once the kernel took it. */
  async send(from: number, to: string, data: string, opts: { ttl?: number } = {}): Promise<void> {
    const seq = ++this.seq;
    const cmd: SendCommand = { op: 'send', seq, from, to, data, ...(opts.ttl !== undefined ? { ttl: opts.ttl } : {}) };
    parseCommand(JSON.stringify(cmd)); // fail here, not silently in the child
    const ack = this.next((ev) => ev.seq === seq && (ev.type === 'sent' || ev.type === 'error'), 5000, `ack of send #${seq}`);
    this.child.stdin?.write(JSON.stringify(cmd) + '\n');
    const ev = await ack;
    if (ev.type === 'error') throw new Error(`udp-probe in ${this.ns}: send to ${to} failed: ${String(ev.message)}`);
  }

  /** The first datagram (already received or arriving within timeoutMs) that matches. */
  async waitFor(match: (p: ProbePacket) => boolean, timeoutMs = 3000, what = 'matching datagram'): Promise<ProbePacket> {
    const have = this.received.find(match);
    if (have) return have;
    let found: ProbePacket | undefined;
    await this.next(
      () => {
        found = this.received.find(match);
        return found !== undefined;
      },
      timeoutMs,
      what,
    );
    return found as ProbePacket;
  }

  /** Datagrams matching `match` received so far (call after waiting long enough). */
  matching(match: (p: ProbePacket) => boolean): ProbePacket[] {
    return this.received.filter(match);
  }

  /** Closes stdin: the probe exits by itself. */
  close(): void {
    this.child.stdin?.end();
  }
}
