// Linux metrics straight from /proc: three small synchronous reads (~50 µs together here).
// systeminformation does the same job portably but spawns processes and reads far more than we
// show; sampled every second it was what made a watched helper cost 3-11 % of a core. Other
// platforms keep systemReader (reader.ts).

import { readProcText } from '../core/proc-text.js';
import type { MetricsReader } from './reader.js';
import type { RawReading } from './sample.js';

export interface CpuTimes {
  busy: number;
  total: number;
}

/** The aggregate "cpu" line of /proc/stat: busy = everything but idle and iowait. */
export function parseProcStat(text: string): CpuTimes {
  const line = text.split('\n', 1)[0] ?? '';
  const f = line.trim().split(/\s+/);
  if (f[0] !== 'cpu') throw new Error('/proc/stat does not start with the cpu line');
  // user nice system idle iowait irq softirq steal (guest time is already inside user/nice).
  const v = f.slice(1, 9).map((x) => Number(x) || 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - (v[3] ?? 0) - (v[4] ?? 0), total };
}

/** Busy share between two readings, 0-100. */
export function cpuPercent(prev: CpuTimes | null, cur: CpuTimes): number {
  if (!prev) return 0;
  const dt = cur.total - prev.total;
  return dt > 0 ? Math.min(100, Math.max(0, (100 * (cur.busy - prev.busy)) / dt)) : 0;
}

type MeminfoKey = 'MemTotal' | 'MemAvailable' | 'MemFree';
const meminfoRe = (key: MeminfoKey): RegExp => new RegExp(`^${key}:\\s+(\\d+)`, 'm');
// Built once: read every 10 s at rest.
const MEMINFO_RE: Record<MeminfoKey, RegExp> = { MemTotal: meminfoRe('MemTotal'), MemAvailable: meminfoRe('MemAvailable'), MemFree: meminfoRe('MemFree') };

/** Used = total - MemAvailable (page cache does not count as used), in bytes. */
export function parseMeminfo(text: string): { used: number; total: number } {
  const kb = (key: MeminfoKey): number => {
    const m = MEMINFO_RE[key].exec(text);
    return m ? Number(m[1]) * 1024 : 0;
  };
  const total = kb('MemTotal');
  const avail = kb('MemAvailable') || kb('MemFree');
  return { used: Math.max(0, total - avail), total };
}

/** Sum of received and sent bytes over the non-loopback interfaces of /proc/net/dev. */
export function parseNetDev(text: string, skip: (iface: string) => boolean = () => false): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const iface = line.slice(0, colon).trim();
    if (iface === 'lo' || iface.startsWith('lo') || skip(iface)) continue;
    const f = line.slice(colon + 1).trim().split(/\s+/);
    rx += Number(f[0]) || 0;
    tx += Number(f[8]) || 0;
  }
  return { rx, tx };
}

export function procReader(): MetricsReader {
  let prevCpu: CpuTimes | null = null;
  return {
    read(): Promise<RawReading> {
      const cpu = parseProcStat(readProcText('/proc/stat'));
      const pct = cpuPercent(prevCpu, cpu);
      prevCpu = cpu;
      const mem = parseMeminfo(readProcText('/proc/meminfo'));
      const net = parseNetDev(readProcText('/proc/net/dev'));
      const self = process.cpuUsage();
      return Promise.resolve({
        atMs: Date.now(),
        cpuPercent: pct,
        memUsed: mem.used,
        memTotal: mem.total,
        rxBytes: net.rx,
        txBytes: net.tx,
        helperCpuMicros: self.user + self.system,
        helperRss: process.memoryUsage.rss(),
      });
    },
  };
}
