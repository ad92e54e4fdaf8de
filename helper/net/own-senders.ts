// The helper's own discovery searches (the port mapper's SSDP M-SEARCH to 239.255.255.250:1900)
// leave this machine like a game's multicast, so the LAN relay's capture rule (nft `dup` in the
// output hook, helper/lan/nft.ts) copies them too — turning the socket's multicast loopback off does not
// stop that. Carried, each search crossed the tunnel to every player's LAN, and at rest the
// traffic watch then saw unanswered WireGuard bytes and re-probed the path, checked the relay
// allocation and the control connection, and moved the fast path (CPU profile of an idle
// helper). The sockets that send such searches register here while they are open; the relay
// does not carry what they sent.

export class OwnSenders {
  private readonly open = new Map<string, number>();

  /** A socket of ours bound to ip:port sends discovery; returns the release (call it at close). */
  add(ip: string, port: number): () => void {
    const key = `${ip}:${port}`;
    this.open.set(key, (this.open.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.open.get(key) ?? 1) - 1;
      if (n > 0) this.open.set(key, n);
      else this.open.delete(key);
    };
  }

  has(ip: string, port: number): boolean {
    return this.open.size > 0 && this.open.has(`${ip}:${port}`);
  }
}

/** The helper's one registry: the port mapper's transport adds to it, the LAN relay reads it. */
export const ownSenders = new OwnSenders();
