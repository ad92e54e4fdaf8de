import { readFile } from 'node:fs/promises';
import type { MetricsReader } from './reader.js';
import type { RawReading } from './sample.js';

// Linux metrics straight from /proc: three small file reads, no child process. systeminformation
// gets the same figures by running `ip`, `cat` and friends with spawnSync, which blocks the
// event loop; on a loaded machine one sample blocked a helper for seconds in the middle of a join
// storm (CPU profile: 30 % of the helpers' main-thread time in spawnSync) and cost most of an
// idle helper's CPU. Parsing is pure and unit-tested; only procReader() touches the files.

export interface CpuTimes {
  busy: number;
  total: number;
}

/** The aggregate "cpu" line of /proc/stat: busy and total jiffies (iowait counts as idle). */
export function parseProcStat(text: string): CpuTimes | null {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return null;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  if (f.length < 4 || f.some((x) => !Number.isFinite(x))) return null;
  // user nice system idle iowait irq softirq steal (guest times are already in user/nice).
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** Busy percentage between two /proc/stat readings (0 when no time passed). */
export function cpuPercentBetween(prev: CpuTimes | null, cur: CpuTimes): number {
  const base = prev ?? { busy: 0, total: 0 };
  const dt = cur.total - base.total;
  if (dt <= 0) return 0;
  return Math.min(100, Math.max(0, ((cur.busy - base.busy) / dt) * 100));
}

/** MemTotal and memory in use (MemTotal − MemAvailable: page cache that can be dropped is not "used"), in bytes. */
export function parseMeminfo(text: string): { total: number; used: number } | null {
  const kb = (key: string): number | null => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : null;
  };
  const total = kb('MemTotal');
  const avail = kb('MemAvailable') ?? kb('MemFree');
  if (total === null || avail === null) return null;
  return { total, used: Math.max(0, total - avail) };
}

/** Received and sent bytes summed over every interface but loopback (/proc/net/dev). */
export function parseNetDev(text: string): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    if (name === 'lo' || name.startsWith('lo')) continue;
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    // receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes ...
    if (Number.isFinite(f[0]) && Number.isFinite(f[8])) {
      rx += f[0]!;
      tx += f[8]!;
    }
  }
  return { rx, tx };
}

export function procReader(): MetricsReader {
  let prevCpu: CpuTimes | null = null;
  return {
    async read(): Promise<RawReading> {
      const [stat, meminfo, netdev] = await Promise.all([readFile('/proc/stat', 'utf8'), readFile('/proc/meminfo', 'utf8'), readFile('/proc/net/dev', 'utf8')]);
      const cpuTimes = parseProcStat(stat);
      const mem = parseMeminfo(meminfo);
      if (!cpuTimes || !mem) throw new Error('unexpected /proc/stat or /proc/meminfo format');
      const cpuPercent = cpuPercentBetween(prevCpu, cpuTimes);
      prevCpu = cpuTimes;
      const net = parseNetDev(netdev);
      const own = process.cpuUsage();
      return {
        atMs: Date.now(),
        cpuPercent,
        memUsed: mem.used,
        memTotal: mem.total,
        rxBytes: net.rx,
        txBytes: net.tx,
        helperCpuMicros: own.user + own.system,
        helperRss: process.memoryUsage.rss(),
      };
    },
  };
}
