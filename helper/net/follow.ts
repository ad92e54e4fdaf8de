// The follower's rest, shared by direct (path.ts) and relayed (relaypath.ts) paths. One side of a
// pair leads its keepalives; while the leader's pings keep arriving, the other side's rounds send
// nothing until the leader's next ping is overdue or its own occasional ping is due (its RTT, a
// rescan, a check of its allocation), whichever comes first.

/**
 * How long the follower may still rest from `now` (ms, > 0), or null when it must send now.
 * `leaderPingAt`: the leader's last ping; `expectMs`: how long after it the next one is overdue.
 * `ownPingAt`, `ownEveryMs`: our own last ping and how often we ping all the same.
 */
export function followerRestMs(now: number, leaderPingAt: number, expectMs: number, ownPingAt: number, ownEveryMs: number): number | null {
  const until = Math.min(leaderPingAt + expectMs, ownPingAt + ownEveryMs);
  return until > now ? until - now : null;
}
