// Pure metric arithmetic, kept apart from systeminformation so it can be unit-tested.

export interface RawReading {
  atMs: number;
  cpuPercent: number;
  memUsed: number;
  memTotal: number;
  /** Cumulative bytes over non-loopback interfaces. */
  rxBytes: number;
  txBytes: number;
  /** process.cpuUsage() user+system, microseconds. */
  helperCpuMicros: number;
  helperRss: number;
}

export interface Sample {
  atMs: number;
  cpuPercent: number;
  memUsed: number;
  memTotal: number;
  rxPerSec: number;
  txPerSec: number;
  helperCpuPercent: number;
  helperRss: number;
}

export function toSample(prev: RawReading | null, cur: RawReading): Sample {
  const dt = prev ? (cur.atMs - prev.atMs) / 1000 : 0;
  // Counters reset when an interface goes away: a negative delta is not traffic.
  const rate = (a: number, b: number): number => (dt > 0 && b >= a ? (b - a) / dt : 0);
  return {
    atMs: cur.atMs,
    cpuPercent: clamp(cur.cpuPercent, 0, 100),
    memUsed: cur.memUsed,
    memTotal: cur.memTotal,
    rxPerSec: prev ? rate(prev.rxBytes, cur.rxBytes) : 0,
    txPerSec: prev ? rate(prev.txBytes, cur.txBytes) : 0,
    helperCpuPercent: prev && dt > 0 ? Math.max(0, (cur.helperCpuMicros - prev.helperCpuMicros) / 1e4 / dt) : 0,
    helperRss: cur.helperRss,
  };
}

/** Averages samples into one (time = the first sample's), for downsampled history. */
export function averageSamples(samples: readonly Sample[]): Sample | null {
  if (samples.length === 0) return null;
  const n = samples.length;
  const sum = (f: (s: Sample) => number): number => samples.reduce((a, s) => a + f(s), 0);
  return {
    atMs: samples[0]!.atMs,
    cpuPercent: sum((s) => s.cpuPercent) / n,
    memUsed: Math.round(sum((s) => s.memUsed) / n),
    memTotal: Math.round(sum((s) => s.memTotal) / n),
    rxPerSec: sum((s) => s.rxPerSec) / n,
    txPerSec: sum((s) => s.txPerSec) / n,
    helperCpuPercent: sum((s) => s.helperCpuPercent) / n,
    helperRss: Math.round(sum((s) => s.helperRss) / n),
  };
}

/** Step for a history query: at most maxPoints points, a multiple of the stored base step. */
export function historyStep(rangeSeconds: number, baseStep: number, maxPoints: number): number {
  const raw = Math.ceil(rangeSeconds / maxPoints);
  return Math.max(baseStep, Math.ceil(raw / baseStep) * baseStep);
}

function clamp(x: number, lo: number, hi: number): number {
  return Number.isFinite(x) ? Math.min(hi, Math.max(lo, x)) : lo;
}
