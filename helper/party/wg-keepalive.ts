// WireGuard's persistent keepalive, only while it is worth something. It is set with each
// endpoint (a join, a path change) because its first keepalive starts the first handshake at
// once: without it the session waits for the first data. After that, disco's keepalives hold the
// same NAT mapping (one socket, one 5-tuple), so on a pair without data WireGuard's 20 s
// keepalives only cause its rekey every 2 minutes, whose handshakes pass through the helper and
// are followed by an endpoint write: in a 16-player lab party at rest, 42 % of each site's
// datagrams. Once a pair has completed a handshake and carried no data for a while (the traffic
// watch's idle), its keepalive goes to 0; WireGuard handshakes again by itself when data comes.

export interface KeepaliveReading {
  publicKey: string;
  lastHandshakeMs: number | null;
}

export class IdleKeepalive {
  /** Peers (WireGuard keys) whose keepalive is on, as we last set it. */
  private readonly on = new Set<string>();

  /** An endpoint was written with the keepalive on. */
  set(publicKey: string): void {
    this.on.add(publicKey);
  }

  forget(publicKey: string): void {
    this.on.delete(publicKey);
  }

  clear(): void {
    this.on.clear();
  }

  /** Whether any peer's keepalive is on (else toStop has nothing to do). */
  any(): boolean {
    return this.on.size > 0;
  }

  /** The peers whose keepalive should go to 0 now (and are counted as off from here). */
  toStop(readings: readonly KeepaliveReading[], idle: (publicKey: string) => boolean): string[] {
    const out: string[] = [];
    for (const r of readings) {
      if (!this.on.has(r.publicKey) || r.lastHandshakeMs === null || !idle(r.publicKey)) continue;
      this.on.delete(r.publicKey);
      out.push(r.publicKey);
    }
    return out;
  }
}
