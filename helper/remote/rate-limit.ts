// Token buckets for pairing attempts: one per source address and one for everybody, so neither a
// single phone nor a crowd of addresses can guess codes quickly. Pure; the clock is injected.

export interface Bucket {
  /** Attempts allowed in a burst. */
  burst: number;
  /** Attempts regained per minute. */
  perMinute: number;
}

interface State {
  tokens: number;
  atMs: number;
}

export class AttemptLimiter {
  private readonly perSource = new Map<string, State>();
  private global: State;

  constructor(
    private readonly source: Bucket,
    private readonly all: Bucket,
    private readonly now: () => number = Date.now,
  ) {
    this.global = { tokens: all.burst, atMs: now() };
  }

  /** True when one more attempt from `source` may go ahead (and counts it). */
  take(source: string): boolean {
    const t = this.now();
    const g = refill(this.global, this.all, t);
    const s = refill(this.perSource.get(source) ?? { tokens: this.source.burst, atMs: t }, this.source, t);
    if (g.tokens < 1 || s.tokens < 1) {
      this.global = g;
      this.perSource.set(source, s);
      return false;
    }
    this.global = { tokens: g.tokens - 1, atMs: t };
    this.perSource.set(source, { tokens: s.tokens - 1, atMs: t });
    if (this.perSource.size > 4096) this.forgetFull(t);
    return true;
  }

  private forgetFull(t: number): void {
    for (const [k, v] of this.perSource) if (refill(v, this.source, t).tokens >= this.source.burst) this.perSource.delete(k);
  }
}

function refill(s: State, b: Bucket, t: number): State {
  const gained = ((t - s.atMs) / 60_000) * b.perMinute;
  return { tokens: Math.min(b.burst, s.tokens + gained), atMs: t };
}
