// What a path machine's disco probes tell about the path in use: cumulative counts of keepalives
// sent and lost, and the recent round trips. The path machines only record; the metrics collector
// (helper/metrics/peer-metrics.ts) reads them once a second and turns them into RTT, jitter and
// loss. Cheap on purpose: a few integer increments per probe, a bounded ring of RTTs.

const RING = 32;

export class ProbeStats {
  /** Keepalives sent on the path in use. */
  sentCount = 0;
  /** Keepalives still unanswered when the next one was due. */
  lostCount = 0;
  /** Pongs that measured the path in use. */
  answeredCount = 0;
  private readonly ring: number[] = [];

  sent(): void {
    this.sentCount++;
  }

  lost(): void {
    this.lostCount++;
  }

  answered(rttMs: number): void {
    this.answeredCount++;
    if (this.ring.length === RING) this.ring.shift();
    this.ring.push(rttMs);
  }

  /** RTTs measured after the first `seen` answers (as many as the ring still holds), oldest first. */
  rttsSince(seen: number): number[] {
    const fresh = Math.max(0, this.answeredCount - seen);
    return fresh === 0 ? [] : this.ring.slice(-Math.min(fresh, this.ring.length));
  }

  /** The last `n` RTTs, oldest first. */
  recent(n: number): number[] {
    return this.ring.slice(-n);
  }
}
