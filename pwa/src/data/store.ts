// The one place live state lives. The Watch stream (live.ts) writes it; views read and subscribe.
import type { HelperStatus } from '../gen/lanrage/v1/helper.js';
import type { MetricsSample } from '../gen/lanrage/v1/metrics.js';
import { Ring } from './ring.js';

export type ConnectionState = 'connecting' | 'live' | 'helper-down';

/** About two minutes at the helper's one sample a second. */
export const SAMPLE_CAPACITY = 120;

export interface LiveState {
  readonly connection: ConnectionState;
  readonly status: HelperStatus | undefined;
  /** performance.now() when `status` arrived, to advance its uptime between snapshots. */
  readonly statusAt: number;
  readonly latest: MetricsSample | undefined;
  /** Oldest first, at most SAMPLE_CAPACITY. */
  readonly samples: readonly MetricsSample[];
  /** Streams opened since the page loaded (rotations included). */
  readonly streamsOpened: number;
  /** Why the last stream failed, for the helper-down view. */
  readonly lastError: string | undefined;
}

type Listener = (state: LiveState) => void;

class LiveStore {
  private readonly ring = new Ring<MetricsSample>(SAMPLE_CAPACITY);
  private readonly listeners = new Set<Listener>();
  private current: LiveState = {
    connection: 'connecting',
    status: undefined,
    statusAt: 0,
    latest: undefined,
    samples: [],
    streamsOpened: 0,
    lastError: undefined,
  };

  get state(): LiveState {
    return this.current;
  }

  /** Calls `listener` now and on every change; returns the unsubscribe function. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    listener(this.current);
    return () => this.listeners.delete(listener);
  }

  setConnection(connection: ConnectionState, lastError?: string): void {
    if (connection === this.current.connection && lastError === this.current.lastError) return;
    this.update({ connection, lastError });
  }

  setStatus(status: HelperStatus): void {
    this.update({ status, statusAt: performance.now() });
  }

  streamOpened(): void {
    this.update({ streamsOpened: this.current.streamsOpened + 1 });
  }

  addSample(sample: MetricsSample): void {
    // A restarted helper or a resumed laptop can send a time before the last one; the charts
    // plot by time, so start over rather than draw backwards.
    const last = this.ring.last?.time?.getTime();
    const now = sample.time?.getTime();
    if (last !== undefined && now !== undefined && now < last) this.ring.clear();
    this.ring.push(sample);
    this.update({ latest: sample, samples: this.ring.toArray() });
  }

  private update(patch: Partial<LiveState>): void {
    this.current = { ...this.current, ...patch };
    for (const l of this.listeners) l(this.current);
  }
}

export const liveStore = new LiveStore();
export type { LiveStore };
