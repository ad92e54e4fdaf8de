import type { Logger } from '../core/log.js';
import type { MetricsReader } from './reader.js';
import { toSample, type RawReading, type Sample } from './sample.js';

export interface SamplerOptions {
  reader: MetricsReader;
  log: Logger;
  /** Interval while somebody watches live. */
  liveIntervalMs: number;
  /** Interval otherwise: enough for the 10 s history steps, cheap when idle. */
  idleIntervalMs: number;
  onSample(s: Sample): void;
}

// Samples fast only while a client is watching, so an idle helper costs next to no CPU.
export class MetricsSampler {
  private prev: RawReading | null = null;
  private timer: NodeJS.Timeout | null = null;
  private watchers = 0;
  private running = false;
  private latest: Sample | null = null;

  constructor(private readonly opts: SamplerOptions) {}

  start(): void {
    this.running = true;
    void this.tick();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Returns a release function; sampling stays fast while any watcher holds one. */
  watch(): () => void {
    this.watchers++;
    if (this.watchers === 1 && this.timer) {
      clearTimeout(this.timer);
      this.schedule();
    }
    let released = false;
    return () => {
      if (!released) this.watchers--;
      released = true;
    };
  }

  current(): Sample | null {
    return this.latest;
  }

  private schedule(): void {
    if (!this.running) return;
    const ms = this.watchers > 0 ? this.opts.liveIntervalMs : this.opts.idleIntervalMs;
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    try {
      const cur = await this.opts.reader.read();
      const s = toSample(this.prev, cur);
      this.prev = cur;
      this.latest = s;
      this.opts.onSample(s);
    } catch (err) {
      this.opts.log.warn('metrics sample failed', { err });
    }
    this.schedule();
  }
}
