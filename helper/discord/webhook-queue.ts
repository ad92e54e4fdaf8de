import type { Clock } from './clock.js';
import type { DiscordEvent } from './events.js';
import { formatBurst } from './format.js';
import { judgeAnswer, judgeFailure, type Verdict, type WebhookAnswer } from './rate-limit.js';

// One queue per webhook. Events wait a short merge window (a party of 16 joining at once is one
// message, not 16), then everything pending is sent as few messages as possible, one request
// at a time, in order, never before the rate limit allows. While Discord makes us wait, new
// events join the pending ones and are merged into the next message: nothing is lost and the
// channel is not flooded afterwards.

/** The one I/O edge: POST one message, or throw when Discord could not be reached. */
export interface WebhookTransport {
  post(content: string): Promise<WebhookAnswer>;
}

export type QueueState = 'ok' | 'rate-limited' | 'retrying' | 'disabled';

export interface QueueStatus {
  state: QueueState;
  problem: string;
  pending: number;
  sent: number;
  dropped: number;
}

export interface WebhookQueueOptions {
  transport: WebhookTransport;
  clock: Clock;
  /** Wait this long after the first event of a burst before sending (default 1500 ms). */
  mergeWindowMs?: number;
  /** Events kept while Discord cannot take them; the oldest go first beyond this (default 1000). */
  maxPending?: number;
  onSent?: (content: string) => void;
  onDisabled?: (why: string) => void;
  onProblem?: (why: string) => void;
}

export class WebhookQueue {
  private pending: { e: DiscordEvent; at: number }[] = [];
  private notBefore = 0;
  private cancelTimer: (() => void) | undefined;
  private inFlight = false;
  private attempt = 0;
  private closed = false;
  private st: QueueStatus = { state: 'ok', problem: '', pending: 0, sent: 0, dropped: 0 };
  private readonly mergeMs: number;
  private readonly maxPending: number;

  constructor(private readonly o: WebhookQueueOptions) {
    this.mergeMs = o.mergeWindowMs ?? 1500;
    this.maxPending = o.maxPending ?? 1000;
  }

  status(): QueueStatus {
    return { ...this.st, pending: this.pending.length };
  }

  push(e: DiscordEvent): void {
    if (this.closed || this.st.state === 'disabled') return;
    this.pending.push({ e, at: this.o.clock.now() });
    if (this.pending.length > this.maxPending) {
      this.pending.shift();
      this.st.dropped++;
    }
    this.schedule();
  }

  close(): void {
    this.closed = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  private schedule(): void {
    if (this.closed || this.inFlight || this.cancelTimer || this.pending.length === 0) return;
    const now = this.o.clock.now();
    const wake = Math.max(this.notBefore, this.pending[0]!.at + this.mergeMs);
    this.cancelTimer = this.o.clock.after(wake - now, () => {
      this.cancelTimer = undefined;
      void this.sendNext();
    });
  }

  /** How many of the pending events fit in one message (at least one). */
  private firstMessageSize(): number {
    const events = this.pending.map((p) => p.e);
    if (formatBurst(events).length <= 1) return events.length;
    let lo = 1;
    let hi = events.length;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (formatBurst(events.slice(0, mid)).length <= 1) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private async sendNext(): Promise<void> {
    if (this.closed || this.inFlight || this.pending.length === 0) return;
    this.inFlight = true;
    const n = this.firstMessageSize();
    const content = formatBurst(this.pending.slice(0, n).map((p) => p.e))[0] ?? '';
    let verdict: Verdict;
    try {
      verdict = judgeAnswer(await this.o.transport.post(content), this.attempt);
    } catch (err) {
      verdict = judgeFailure(err instanceof Error ? err.message : String(err), this.attempt);
    }
    this.inFlight = false;
    if (this.closed) return;
    const now = this.o.clock.now();
    switch (verdict.kind) {
      case 'sent':
        this.pending.splice(0, n);
        this.attempt = 0;
        this.st.sent++;
        this.st.state = 'ok';
        this.st.problem = '';
        this.notBefore = now + verdict.waitMs;
        this.o.onSent?.(content);
        break;
      case 'rejected':
        this.pending.splice(0, n);
        this.attempt = 0;
        this.st.dropped += n;
        this.st.problem = verdict.why;
        this.o.onProblem?.(verdict.why);
        break;
      case 'retry':
        this.attempt++;
        this.notBefore = now + verdict.waitMs;
        this.st.state = verdict.rateLimited ? 'rate-limited' : 'retrying';
        this.st.problem = verdict.rateLimited ? '' : verdict.why;
        if (!verdict.rateLimited) this.o.onProblem?.(verdict.why);
        break;
      case 'disabled':
        this.st.dropped += this.pending.length;
        this.pending = [];
        this.st.state = 'disabled';
        this.st.problem = verdict.why;
        this.o.onDisabled?.(verdict.why);
        return;
    }
    this.schedule();
  }
}
