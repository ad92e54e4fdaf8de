// "Seen this already?" over a sliding time window, bounded in memory. Pure: the caller passes the
// time, so tests drive it without waiting. Used twice by the LAN relay: on capture, to fold the
// copies of one datagram a game sends out of several interfaces at once (keyed by content), and
// on receipt, to drop an envelope that arrives twice (keyed by origin and id).

export class DedupWindow {
  /** key → time first seen; Map keeps insertion order, which is time order for the sweep. */
  private readonly seen = new Map<string, number>();

  constructor(
    readonly windowMs: number,
    readonly maxEntries = 4096,
  ) {
    if (!(windowMs > 0) || !Number.isFinite(windowMs)) throw new Error('dedup window must be a positive number of ms');
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new Error('dedup maxEntries must be a positive integer');
  }

  /**
   * True when `key` was first seen less than windowMs ago (a duplicate; the window is not
   * extended). Otherwise records it and returns false.
   */
  isDuplicate(key: string, now: number): boolean {
    this.sweep(now);
    const at = this.seen.get(key);
    // A clock that stepped backwards (at > now) still counts as inside the window.
    if (at !== undefined && now - at < this.windowMs) return true;
    if (at !== undefined) this.seen.delete(key);
    if (this.seen.size >= this.maxEntries) {
      // Full of live entries (a flood of distinct datagrams): forget the oldest. A duplicate of
      // it may then pass once more, which rate limiting bounds.
      const oldest = this.seen.keys().next();
      if (!oldest.done) this.seen.delete(oldest.value);
    }
    this.seen.set(key, now);
    return false;
  }

  get size(): number {
    return this.seen.size;
  }

  private sweep(now: number): void {
    for (const [k, at] of this.seen) {
      if (now - at < this.windowMs) break;
      this.seen.delete(k);
    }
  }
}
