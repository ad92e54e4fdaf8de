// With the kernel backend every WireGuard read is a `wg show NAME dump` process, with wireguard-go
// a UAPI connection and a full dump; the per-peer metrics read the counters once a second (and the
// traffic watch as often while bytes move), which on an idle party meant one read a second per
// helper for nothing. The interface's own counters in /proc/net/dev are a
// file read: re-read WireGuard only when they moved, a configuration change happened, or the last
// read is too old (per-peer counters also move on handshakes and keepalives, which the
// interface's counters do not see; the traffic watch ignores those, and the age bounds the
// staleness for everything else, e.g. a handshake's time). The age bound is maxAgeMs after
// traffic or a change and doubles, up to restMaxAgeMs, while the interface stays quiet: a party
// at rest read WireGuard every 5 s for nothing. restMaxAgeMs stays under the peers' 20 s
// persistent keepalive: the traffic watch takes more than one keepalive in one reading for data
// (a 40 s bound made two-way "data" of keepalives that then "stopped", and re-probed the path).
// Pure: the caller reads the file and passes the time.

/**
 * The interface's rx/tx bytes and packets from /proc/net/dev as one comparable string, or null.
 * Read once a second at rest: finds the interface's line instead of splitting the whole file
 * (names are right-aligned, so a line starts with spaces or the name itself, then a colon).
 */
export function netDevCounters(text: string, iface: string): string | null {
  const key = `${iface}:`;
  for (let at = text.indexOf(key); at >= 0; at = text.indexOf(key, at + 1)) {
    const before = at === 0 ? '\n' : text[at - 1];
    if (before !== ' ' && before !== '\n') continue;
    const end = text.indexOf('\n', at);
    const f = text.slice(at + key.length, end < 0 ? undefined : end).trim().split(/\s+/);
    // receive: bytes packets ... (8 fields); transmit: bytes packets ...
    return f.length >= 10 ? `${f[0]} ${f[1]} ${f[8]} ${f[9]}` : null;
  }
  return null;
}

export class StatsGate {
  private lastCounters: string | null = null;
  private lastReadAt = -Infinity;
  private dirty = true;
  private ageMs: number;

  constructor(
    private readonly maxAgeMs = 5000,
    private readonly restMaxAgeMs = 15_000,
  ) {
    this.ageMs = maxAgeMs;
  }

  /** A configuration change: the next read goes to WireGuard. */
  invalidate(): void {
    this.dirty = true;
  }

  /** counters: netDevCounters() now (null when unreadable: always read). */
  mustRead(counters: string | null, now: number): boolean {
    return this.dirty || counters === null || counters !== this.lastCounters || now - this.lastReadAt >= this.ageMs;
  }

  /** WireGuard was read when the interface showed these counters. */
  read(counters: string | null, now: number): void {
    // Only a read forced by age on a quiet interface lengthens the next wait.
    const quiet = !this.dirty && counters !== null && counters === this.lastCounters;
    this.ageMs = quiet ? Math.min(this.restMaxAgeMs, this.ageMs * 2) : this.maxAgeMs;
    this.lastCounters = counters;
    this.lastReadAt = now;
    this.dirty = false;
  }
}
