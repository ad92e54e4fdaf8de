import type { Db } from '../store/db.js';
import { averageSamples, historyStep, type Sample } from './sample.js';

export const HISTORY_STEP_SECONDS = 10;
const MAX_POINTS = 720;

interface Row {
  ts: number;
  cpu: number;
  mem_used: number;
  mem_total: number;
  rx: number;
  tx: number;
  helper_cpu: number;
  helper_rss: number;
}

// Downsampled history: live samples are averaged into 10 s steps before they touch the disk,
// and queries over long ranges average again so a reply never exceeds MAX_POINTS.
export class MetricsHistory {
  private bucket: Sample[] = [];
  private bucketStart = -1;
  private readonly insert;
  private readonly prune;

  constructor(private readonly db: Db) {
    this.insert = db.prepare<[number, number, number, number, number, number, number, number]>(
      'INSERT OR REPLACE INTO metrics_history(ts, cpu, mem_used, mem_total, rx, tx, helper_cpu, helper_rss) VALUES (?,?,?,?,?,?,?,?)',
    );
    this.prune = db.prepare<[number]>('DELETE FROM metrics_history WHERE ts < ?');
  }

  add(s: Sample): void {
    const start = Math.floor(s.atMs / 1000 / HISTORY_STEP_SECONDS) * HISTORY_STEP_SECONDS;
    if (start !== this.bucketStart) this.flush();
    this.bucketStart = start;
    this.bucket.push(s);
  }

  flush(): void {
    const avg = averageSamples(this.bucket);
    if (avg && this.bucketStart >= 0) {
      this.insert.run(this.bucketStart, avg.cpuPercent, avg.memUsed, avg.memTotal, avg.rxPerSec, avg.txPerSec, avg.helperCpuPercent, avg.helperRss);
    }
    this.bucket = [];
  }

  pruneOlderThan(cutoffMs: number): void {
    this.prune.run(Math.floor(cutoffMs / 1000));
  }

  query(sinceMs: number, untilMs: number): { samples: Sample[]; stepSeconds: number } {
    const since = Math.floor(sinceMs / 1000);
    const until = Math.ceil(untilMs / 1000);
    const step = historyStep(Math.max(0, Math.floor((untilMs - sinceMs) / 1000)), HISTORY_STEP_SECONDS, MAX_POINTS);
    const rows = this.db
      .prepare<[number, number, number, number], Row>(
        `SELECT (ts / ?) * ? AS ts, AVG(cpu) AS cpu, CAST(AVG(mem_used) AS INTEGER) AS mem_used, CAST(AVG(mem_total) AS INTEGER) AS mem_total,
                AVG(rx) AS rx, AVG(tx) AS tx, AVG(helper_cpu) AS helper_cpu, CAST(AVG(helper_rss) AS INTEGER) AS helper_rss
           FROM metrics_history WHERE ts >= ? AND ts <= ? GROUP BY ts / ${step} ORDER BY ts`,
      )
      .all(step, step, since, until);
    return {
      stepSeconds: step,
      samples: rows.map((r) => ({
        atMs: r.ts * 1000,
        cpuPercent: r.cpu,
        memUsed: r.mem_used,
        memTotal: r.mem_total,
        rxPerSec: r.rx,
        txPerSec: r.tx,
        helperCpuPercent: r.helper_cpu,
        helperRss: r.helper_rss,
      })),
    };
  }
}
