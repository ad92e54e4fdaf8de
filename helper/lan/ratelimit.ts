// Token buckets, one per source, bounded in number. Pure: the caller passes the time.
// Written by hand: a dozen lines, and the npm limiters are built around promises and timers,
// which a per-datagram decision on a hot path does not want.

export interface BucketConfig {
  /** Sustained datagrams per second. */
  ratePerSec: number;
  /** How many may pass at once after a quiet spell. */
  burst: number;
}

function checkConfig(c: BucketConfig): void {
  if (!(c.ratePerSec > 0) || !Number.isFinite(c.ratePerSec)) throw new Error('rate limit: ratePerSec must be a positive number');
  if (!(c.burst >= 1) || !Number.isFinite(c.burst)) throw new Error('rate limit: burst must be at least 1');
}

export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly cfg: BucketConfig,
    now: number,
  ) {
    checkConfig(cfg);
    this.tokens = cfg.burst;
    this.at = now;
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    // A clock that steps backwards refills nothing rather than going negative.
    const elapsed = Math.max(0, now - this.at);
    this.at = Math.max(this.at, now);
    this.tokens = Math.min(this.cfg.burst, this.tokens + (elapsed * this.cfg.ratePerSec) / 1000);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** One bucket per key; the least recently used key is forgotten beyond maxKeys. */
export class RateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly cfg: BucketConfig,
    private readonly maxKeys = 1024,
  ) {
    checkConfig(cfg);
    if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new Error('rate limit: maxKeys must be a positive integer');
  }

  allow(key: string, now: number): boolean {
    let b = this.buckets.get(key);
    if (b) {
      this.buckets.delete(key); // re-inserted below: Map order is recency order
    } else {
      b = new TokenBucket(this.cfg, now);
      if (this.buckets.size >= this.maxKeys) {
        const lru = this.buckets.keys().next();
        if (!lru.done) this.buckets.delete(lru.value);
      }
    }
    this.buckets.set(key, b);
    return b.take(now);
  }

  get size(): number {
    return this.buckets.size;
  }
}
