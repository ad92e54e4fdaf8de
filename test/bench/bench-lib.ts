// Small measurement helpers shared by the benchmarks: percentiles, ping output, iperf3 JSON, and
// per-process CPU and memory from /proc. Pure parsing is separate from the /proc reads.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Lab } from '../lab/lab.js';

/** Nearest-rank percentile (p in 0..100) of a non-empty list. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))]!;
}

export interface PingResult {
  rtts: number[];
  transmitted: number;
  received: number;
}

/** Per-packet `time=X ms` lines and the summary counts of iputils ping (run without -q). */
export function parsePing(stdout: string): PingResult {
  const rtts = [...stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  const sum = /(\d+) packets transmitted, (\d+) received/.exec(stdout);
  return { rtts, transmitted: Number(sum?.[1] ?? 0), received: Number(sum?.[2] ?? rtts.length) };
}

export interface StampedReply {
  seq: number;
  /** Receive time, ms since the epoch (ping -D). */
  at: number;
  rtt: number;
}

/** Replies of `ping -D` with their sequence numbers and receive times. */
export function parseStamped(stdout: string): StampedReply[] {
  return [...stdout.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+) .*time=([\d.]+) ms/gm)].map((m) => ({
    at: Number(m[1]) * 1000,
    seq: Number(m[2]),
    rtt: Number(m[3]),
  }));
}

export interface Stall {
  /** When the first late packet was sent, ms since the epoch. */
  sentAt: number;
  /** When the last of them came back. */
  at: number;
  count: number;
  maxRtt: number;
}

/** Runs of replies later than `overMs` (consecutive sequence numbers form one stall). */
export function stallsOf(replies: readonly StampedReply[], overMs: number): Stall[] {
  const out: Stall[] = [];
  let cur: Stall | null = null;
  let lastSeq = -2;
  for (const r of replies) {
    if (r.rtt <= overMs) continue;
    if (cur && r.seq <= lastSeq + 2) {
      cur.count++;
      cur.at = r.at;
      cur.maxRtt = Math.max(cur.maxRtt, r.rtt);
    } else {
      cur = { sentAt: r.at - r.rtt, at: r.at, count: 1, maxRtt: r.rtt };
      out.push(cur);
    }
    lastSeq = r.seq;
  }
  return out;
}

export interface IperfResult {
  mbits: number;
  retransmits: number;
}

export function parseIperf(json: string): IperfResult {
  const j = JSON.parse(json) as { end?: { sum_received?: { bits_per_second?: number }; sum_sent?: { retransmits?: number } }; error?: string };
  if (j.error || j.end?.sum_received?.bits_per_second === undefined) throw new Error(`iperf3: ${j.error ?? 'no result'}`);
  return { mbits: j.end.sum_received.bits_per_second / 1e6, retransmits: j.end.sum_sent?.retransmits ?? 0 };
}

/** One iperf3 TCP run from namespace `fromNs` to a server bound to `ip` in `toNs`. */
export async function iperfOnce(lab: Lab, fromNs: string, toNs: string, ip: string, seconds: number): Promise<IperfResult> {
  const server = lab.spawn(toNs, 'iperf3', ['-s', '-1', '-B', ip]);
  try {
    await sleep(500);
    const { stdout } = await lab.exec(fromNs, 'iperf3', ['-c', ip, '-t', String(seconds), '-J'], { timeoutMs: (seconds + 30) * 1000 });
    return parseIperf(stdout);
  } finally {
    server.kill();
  }
}

// --- /proc -------------------------------------------------------------------------------------

let clkTck: number | undefined;
/** Clock ticks per second (utime/stime unit). */
export function clockTicks(): number {
  clkTck ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return clkTck;
}

/** Fields of /proc/PID/stat after the command name: [0] state, [1] ppid, [11] utime, [12] stime. */
function statFields(pid: number): string[] {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
}

/** utime and stime of a process apart, in clock ticks (sends through the lab's routers are stime). */
export function cpuTicksSplit(pid: number): { user: number; sys: number } {
  const f = statFields(pid);
  return { user: Number(f[11]), sys: Number(f[12]) };
}

/** utime + stime of a process, in clock ticks (its reaped children are not included). */
export function cpuTicks(pid: number): number {
  const f = statFields(pid);
  return Number(f[11]) + Number(f[12]);
}

export function comm(pid: number): string {
  return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
}

/** Resident set size in KiB (VmRSS). */
export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

/** Every process of the machine that `visit` (reading its /proc entries) does not throw for. */
function eachProcess(visit: (pid: number) => void): void {
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      visit(Number(e));
    } catch {
      // exited meanwhile
    }
  }
}

export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  eachProcess((p) => {
    if (Number(statFields(p)[1]) === pid) out.push(p);
  });
  return out;
}

/**
 * The process named `name` at `pid` or below it (e.g. node under `ip netns exec`, which normally
 * execs but may fork on some iproute2 versions).
 */
export function findProcess(pid: number, name: string, depth = 3): number | null {
  try {
    if (comm(pid) === name) return pid;
  } catch {
    return null;
  }
  if (depth === 0) return null;
  for (const c of childrenOf(pid)) {
    const found = findProcess(c, name, depth - 1);
    if (found !== null) return found;
  }
  return null;
}

/** CPU use of a set of processes between start() and stop(), in percent of one core each. */
export class CpuMeter {
  private readonly t0: number;
  private readonly ticks0: Map<number, number>;

  constructor(readonly pids: readonly number[]) {
    this.t0 = performance.now();
    this.ticks0 = new Map(pids.map((p) => [p, safeTicks(p)]));
  }

  /** Percent of one core per pid (NaN when the process went away). */
  stop(): Map<number, number> {
    const secs = (performance.now() - this.t0) / 1000;
    const out = new Map<number, number>();
    for (const p of this.pids) out.set(p, ((safeTicks(p) - this.ticks0.get(p)!) / clockTicks() / secs) * 100);
    return out;
  }
}

function safeTicks(pid: number): number {
  try {
    return cpuTicks(pid);
  } catch {
    return NaN;
  }
}

/** Machine-wide CPU time from /proc/stat, in clock ticks summed over all cores. */
export interface SystemCpu {
  user: number;
  system: number;
  softirq: number;
  idle: number;
  total: number;
}

export function systemCpu(): SystemCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
  const u = (user ?? 0) + (nice ?? 0);
  const sys = (system ?? 0) + (irq ?? 0);
  const idl = (idle ?? 0) + (iowait ?? 0);
  return { user: u, system: sys, softirq: softirq ?? 0, idle: idl, total: u + sys + idl + (softirq ?? 0) + (steal ?? 0) };
}

/** Shares (percent of all cores) of each kind of CPU time between two samples. */
export function systemCpuShares(a: SystemCpu, b: SystemCpu): { user: number; system: number; softirq: number; idle: number } {
  const t = b.total - a.total || 1;
  const pct = (k: keyof SystemCpu): number => ((b[k] - a[k]) / t) * 100;
  return { user: pct('user'), system: pct('system'), softirq: pct('softirq'), idle: pct('idle') };
}

/** "load 1.23 0.98 0.70" for the run's header. */
export function loadLine(): string {
  return `load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`;
}

export const fmt = (x: number, digits = 0): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');

/** CPU ticks of every process of the machine at one moment, by class (see cpuByClass). */
export interface ClassSnapshot {
  at: number;
  system: SystemCpu;
  /** pid → [class, own ticks, reaped children's ticks] */
  procs: Map<number, [string, number, number]>;
}

/**
 * Snapshots utime+stime (and cutime+cstime: children it reaped, such as nft runs) of every process
 * that `classify` names from its command line; the others are left out.
 */
export function snapshotByClass(classify: (argv: readonly string[]) => string | null): ClassSnapshot {
  const procs = new Map<number, [string, number, number]>();
  eachProcess((pid) => {
    const cls = classify(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean));
    if (cls === null) return;
    const f = statFields(pid);
    procs.set(pid, [cls, Number(f[11]) + Number(f[12]), Number(f[13]) + Number(f[14])]);
  });
  return { at: performance.now(), system: systemCpu(), procs };
}

export interface ClassCpu {
  seconds: number;
  /** CPU-seconds the machine was busy, and what its cores had. */
  busyS: number;
  capacityS: number;
  /** class → CPU-seconds of its own, and of the children it reaped meanwhile. */
  byClass: Map<string, { ownS: number; childrenS: number }>;
}

/** CPU-seconds per class between two snapshots (a process born in between counts whole). */
export function cpuByClass(a: ClassSnapshot, b: ClassSnapshot): ClassCpu {
  const hz = clockTicks();
  const byClass = new Map<string, { ownS: number; childrenS: number }>();
  for (const [pid, [cls, own, kids]] of b.procs) {
    const before = a.procs.get(pid);
    const e = byClass.get(cls) ?? { ownS: 0, childrenS: 0 };
    e.ownS += (own - (before?.[1] ?? 0)) / hz;
    e.childrenS += (kids - (before?.[2] ?? 0)) / hz;
    byClass.set(cls, e);
  }
  const busy = b.system.total - b.system.idle - (a.system.total - a.system.idle);
  return { seconds: (b.at - a.at) / 1000, busyS: busy / hz, capacityS: (b.system.total - a.system.total) / hz, byClass };
}
