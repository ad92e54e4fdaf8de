import type { Db } from '../store/db.js';
import type { PathChangeRecord, PeerSample } from './peer-metrics.js';

// Per-peer history in three resolutions: 1 s rows for 10 minutes, 10 s for 24 hours, 1 min for
// 30 days. Samples are averaged into the coarser steps in memory and written in one transaction
// every 10 s (a write per second would cost more than the sampling); queries flush first, so a
// reply includes the last seconds.

export const TIERS = [
  { step: 1, keepSeconds: 600 },
  { step: 10, keepSeconds: 24 * 3600 },
  { step: 60, keepSeconds: 30 * 24 * 3600 },
] as const;
const MAX_POINTS_PER_PEER = 900;
/** Rows are kept a minute past their tier's span, so "the last 10 minutes" asked a little late still gets 1 s steps. */
const GRACE_SECONDS = 60;
const FLUSH_EVERY_MS = 10_000;

interface Bucket {
  ts: number;
  n: number;
  rttN: number;
  last: PeerSample;
  rtt: number;
  jitter: number;
  loss: number;
  rxBps: number;
  txBps: number;
  rxPps: number;
  txPps: number;
  quality: number;
}

type Row = [number, string, number, string, number, number, number, number, number, number, number, number, number, number, number, number, number, number];

interface DbRow {
  ts: number;
  device_id: string;
  name: string;
  path: number;
  fast_path: number;
  rtt: number;
  jitter: number;
  loss: number;
  rx_bps: number;
  tx_bps: number;
  rx_pps: number;
  tx_pps: number;
  quality: number;
  rx_bytes: number;
  tx_bytes: number;
  rx_packets: number;
  tx_packets: number;
}

function newBucket(ts: number, s: PeerSample): Bucket {
  return { ts, n: 0, rttN: 0, last: s, rtt: 0, jitter: 0, loss: 0, rxBps: 0, txBps: 0, rxPps: 0, txPps: 0, quality: 0 };
}

function addTo(b: Bucket, s: PeerSample): void {
  b.n++;
  b.last = s;
  // An unknown RTT (0) is not a fast path: average only the measured ones.
  if (s.rttMs > 0) {
    b.rttN++;
    b.rtt += s.rttMs;
    b.jitter += s.jitterMs;
  }
  b.loss += s.lossRatio;
  b.rxBps += s.rxBps;
  b.txBps += s.txBps;
  b.rxPps += s.rxPps;
  b.txPps += s.txPps;
  b.quality += s.quality;
}

function rowOf(step: number, b: Bucket): Row {
  const l = b.last;
  const n = Math.max(1, b.n);
  const rn = Math.max(1, b.rttN);
  return [step, l.deviceId, b.ts, l.name, l.path, l.fastPath ? 1 : 0, b.rtt / rn, b.jitter / rn, b.loss / n, b.rxBps / n, b.txBps / n, b.rxPps / n, b.txPps / n, b.quality / n, l.rxBytes, l.txBytes, l.rxPackets, l.txPackets];
}

export class PeerHistory {
  /** step → device → open bucket. */
  private readonly open = new Map<number, Map<string, Bucket>>(TIERS.map((t) => [t.step, new Map()]));
  private pending: Row[] = [];
  private changes: PathChangeRecord[] = [];
  private lastFlush = 0;
  private lastPrune = 0;
  private readonly insert;
  private readonly insertChange;
  private readonly pruneStep;
  private readonly pruneChanges;

  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {
    this.insert = db.prepare<Row>(
      `INSERT OR REPLACE INTO peer_metrics(step, device_id, ts, name, path, fast_path, rtt, jitter, loss, rx_bps, tx_bps, rx_pps, tx_pps, quality, rx_bytes, tx_bytes, rx_packets, tx_packets)
       VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
    );
    this.insertChange = db.prepare<[number, string, string, number, number, string, string]>(
      'INSERT INTO path_changes(ts_ms, device_id, name, from_kind, to_kind, reason, endpoint) VALUES (?,?,?,?,?,?,?)',
    );
    this.pruneStep = db.prepare<[number, number]>('DELETE FROM peer_metrics WHERE step = ? AND ts < ?');
    this.pruneChanges = db.prepare<[number]>('DELETE FROM path_changes WHERE ts_ms < ?');
  }

  add(samples: readonly PeerSample[]): void {
    for (const s of samples) {
      const sec = Math.floor(s.atMs / 1000);
      for (const t of TIERS) {
        const open = this.open.get(t.step)!;
        const ts = Math.floor(sec / t.step) * t.step;
        let b = open.get(s.deviceId);
        if (b && b.ts !== ts) {
          this.pending.push(rowOf(t.step, b));
          b = undefined;
        }
        if (!b) {
          b = newBucket(ts, s);
          open.set(s.deviceId, b);
        }
        addTo(b, s);
      }
    }
    const now = this.now();
    if (now - this.lastFlush >= FLUSH_EVERY_MS) this.flush(false);
  }

  addPathChange(c: PathChangeRecord): void {
    this.changes.push(c);
  }

  /** Writes what is pending; `all` also writes the open buckets (queries, shutdown). */
  flush(all = true): void {
    const rows = [...this.pending];
    if (all) for (const [step, m] of this.open) for (const b of m.values()) rows.push(rowOf(step, b));
    const changes = this.changes;
    this.pending = [];
    this.changes = [];
    this.lastFlush = this.now();
    if (rows.length > 0 || changes.length > 0) {
      this.db.transaction(() => {
        for (const r of rows) this.insert.run(...r);
        for (const c of changes) this.insertChange.run(c.atMs, c.deviceId, c.name, c.from, c.to, c.reason, c.endpoint);
      })();
    }
    if (this.lastFlush - this.lastPrune >= 60_000) this.prune();
  }

  prune(): void {
    const nowSec = Math.floor(this.now() / 1000);
    this.lastPrune = this.now();
    for (const t of TIERS) this.pruneStep.run(t.step, nowSec - t.keepSeconds - GRACE_SECONDS);
    this.pruneChanges.run(this.now() - TIERS[TIERS.length - 1]!.keepSeconds * 1000);
  }

  /** The finest tier that still holds `sinceMs`, coarsened so that one peer gets at most 900 points. */
  stepFor(sinceMs: number, untilMs: number): { tier: number; step: number } {
    const age = (this.now() - sinceMs) / 1000;
    const tier = (TIERS.find((t) => age <= t.keepSeconds + GRACE_SECONDS) ?? TIERS[TIERS.length - 1]!).step;
    const range = Math.max(0, (untilMs - sinceMs) / 1000);
    const step = Math.max(tier, Math.ceil(range / MAX_POINTS_PER_PEER / tier) * tier);
    return { tier, step };
  }

  /** deviceId "*" = every peer. */
  query(deviceId: string, sinceMs: number, untilMs: number): { samples: PeerSample[]; stepSeconds: number; changes: PathChangeRecord[] } {
    this.flush(true);
    const { tier, step } = this.stepFor(sinceMs, untilMs);
    const since = Math.floor(sinceMs / 1000);
    const until = Math.ceil(untilMs / 1000);
    const all = deviceId === '*';
    // Coarsening: averages over `step`; names, path and totals from the group's last row.
    const rows = this.db
      .prepare<[number, number, number, number, number, string], DbRow>(
        `SELECT (ts / ?) * ? AS ts, device_id, MAX(name) AS name, MAX(path) AS path, MAX(fast_path) AS fast_path,
                COALESCE(AVG(NULLIF(rtt, 0)), 0) AS rtt, COALESCE(AVG(NULLIF(jitter, 0)), 0) AS jitter, AVG(loss) AS loss,
                AVG(rx_bps) AS rx_bps, AVG(tx_bps) AS tx_bps, AVG(rx_pps) AS rx_pps, AVG(tx_pps) AS tx_pps, AVG(quality) AS quality,
                MAX(rx_bytes) AS rx_bytes, MAX(tx_bytes) AS tx_bytes, MAX(rx_packets) AS rx_packets, MAX(tx_packets) AS tx_packets
           FROM peer_metrics
          WHERE step = ? AND ts >= ? AND ts <= ? AND (${all ? "? = '*'" : 'device_id = ?'})
          GROUP BY device_id, ts / ${step} ORDER BY ts, device_id`,
      )
      .all(step, step, tier, since, until, deviceId);
    const changes = this.db
      .prepare<[number, number, string], { ts_ms: number; device_id: string; name: string; from_kind: number; to_kind: number; reason: string; endpoint: string }>(
        `SELECT ts_ms, device_id, name, from_kind, to_kind, reason, endpoint FROM path_changes
          WHERE ts_ms >= ? AND ts_ms <= ? AND (${all ? "? = '*'" : 'device_id = ?'}) ORDER BY ts_ms LIMIT 1000`,
      )
      .all(sinceMs, untilMs, deviceId);
    return {
      stepSeconds: step,
      samples: rows.map((r) => ({
        atMs: r.ts * 1000,
        deviceId: r.device_id,
        name: r.name,
        path: r.path,
        fastPath: r.fast_path === 1,
        rttMs: r.rtt,
        jitterMs: r.jitter,
        lossRatio: r.loss,
        rxBps: r.rx_bps,
        txBps: r.tx_bps,
        rxPps: r.rx_pps,
        txPps: r.tx_pps,
        quality: r.quality,
        rxBytes: r.rx_bytes,
        txBytes: r.tx_bytes,
        rxPackets: r.rx_packets,
        txPackets: r.tx_packets,
      })),
      changes: changes.map((c) => ({ atMs: c.ts_ms, deviceId: c.device_id, name: c.name, from: c.from_kind, to: c.to_kind, reason: c.reason, endpoint: c.endpoint })),
    };
  }
}
