import { EventEmitter } from 'node:events';
import type { Match, ProcInfo, ProfileMatcher } from './match.js';

// The game detector: polls a process source, matches each process to a profile and emits
// started/stopped. Contract shared with gamesb (add, never rename):
//   detector.on('started', (d: Detection) => ...); detector.on('stopped', (d: Detection) => ...);
//   detector.running(): Detection[]  (games running now, oldest first)

export interface Detection {
  pid: number;
  profileId: string;
  /** The executable name from the profile that matched. */
  exe: string;
  /** When the helper first saw it running (ms since the epoch). */
  detectedAt: number;
}

export interface GameDetectorEvents {
  started: [Detection];
  stopped: [Detection];
  /** A scan failed (e.g. /proc unreadable); detection keeps the last known state. */
  error: [Error];
}

/** Lists the processes of this machine (one implementation per OS). */
export interface ProcessSource {
  /** May return the very array of the previous call to say "nothing changed" (the detector then skips the scan). */
  list(): Promise<ProcInfo[]> | ProcInfo[];
  readonly platform: 'linux' | 'windows' | 'darwin';
}

export interface GameDetector extends EventEmitter<GameDetectorEvents> {
  running(): Detection[];
  start(): void;
  stop(): void;
  /** Re-match with new profiles (custom profile added or deleted); emits the differences. */
  setMatcher(m: ProfileMatcher): void;
  /** One scan now; resolves when its events have been emitted. */
  scan(): Promise<void>;
}

export class PollingGameDetector extends EventEmitter<GameDetectorEvents> implements GameDetector {
  private readonly current = new Map<number, Detection>();
  // Sources hand back the same ProcInfo object while nothing about a process changed, so its
  // match is remembered per object (until the profiles change).
  private matches = new WeakMap<ProcInfo, Match | null>();
  // The list of the last scan: a source that hands back the same array again (LinuxProcSource,
  // while no process came, went or changed) changed nothing, so the scan has nothing to match.
  private lastProcs: readonly ProcInfo[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  /** The wait before the next scan: intervalMs after a game started or stopped, doubling to maxIntervalMs while none does. */
  private waitMs: number;

  /**
   * maxIntervalMs (default intervalMs: no back-off): scans slow down to it while no game starts
   * or stops, so a machine at rest is scanned a few times a minute; a launch is still noticed
   * within maxIntervalMs, which is less than a game takes to reach its server list.
   */
  constructor(
    private readonly source: ProcessSource,
    private matcher: ProfileMatcher,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxIntervalMs = intervalMs,
  ) {
    super();
    this.waitMs = intervalMs;
  }

  running(): Detection[] {
    return [...this.current.values()].sort((a, b) => a.detectedAt - b.detectedAt || a.pid - b.pid);
  }

  start(): void {
    if (this.timer) return;
    void this.scan();
    this.waitMs = this.intervalMs;
    this.scheduleNext();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private scheduleNext(): void {
    const timer = setTimeout(() => {
      void this.scan().finally(() => {
        if (this.timer === timer) this.scheduleNext();
      });
    }, this.waitMs);
    timer.unref();
    this.timer = timer;
  }

  setMatcher(m: ProfileMatcher): void {
    this.matcher = m;
    this.matches = new WeakMap();
    this.lastProcs = undefined;
    void this.scan();
  }

  scan(): Promise<void> {
    // One scan at a time: a slow source (systeminformation) must not pile up overlapping scans.
    this.scanning ??= this.scanOnce().finally(() => {
      this.scanning = undefined;
    });
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    let procs: ProcInfo[];
    try {
      procs = await this.source.list();
    } catch (err) {
      if (this.listenerCount('error') > 0) this.emit('error', err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (procs === this.lastProcs) {
      this.waitMs = Math.min(this.maxIntervalMs, this.waitMs * 2);
      return;
    }
    this.lastProcs = procs;
    const seen = new Set<number>();
    const started: Detection[] = [];
    for (const p of procs) {
      let m = this.matches.get(p);
      if (m === undefined) {
        m = this.matcher.match(p) ?? null;
        this.matches.set(p, m);
      }
      if (!m) continue;
      seen.add(p.pid);
      const prev = this.current.get(p.pid);
      if (prev && prev.profileId === m.profileId) continue;
      if (prev) {
        this.current.delete(p.pid);
        this.emit('stopped', prev);
      }
      const d: Detection = { pid: p.pid, profileId: m.profileId, exe: m.exe, detectedAt: this.now() };
      this.current.set(p.pid, d);
      started.push(d);
    }
    let stopped = false;
    for (const [pid, d] of [...this.current]) {
      if (seen.has(pid)) continue;
      this.current.delete(pid);
      stopped = true;
      this.emit('stopped', d);
    }
    for (const d of started) this.emit('started', d);
    const changed = started.length > 0 || stopped;
    this.waitMs = changed ? this.intervalMs : Math.min(this.maxIntervalMs, this.waitMs * 2);
  }
}
