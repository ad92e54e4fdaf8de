import type { WgPeer } from './device.js';
import type { UapiTiming } from './uapi-socket.js';
import { loopLag } from '../core/loop-lag.js';

// WireGuard peer changes, written in order and in batches. A join storm asks for one change per
// peer at nearly the same moment (the party engine adds every new member, then magicsock points
// each one at its proxy port): on fresh UAPI connections each, a helper had 15 configuration
// changes in flight against one wireguard-go, which serves them one at a time; some waited out
// the 5 s UAPI timeout and the peer never got its endpoint. Here, changes that arrive while a
// write is under way wait and go together in the next one (the newest change per peer wins), so
// a storm costs a few writes, and a later change can never be overtaken by an earlier one.

export interface PeerSink {
  setPeers(ps: readonly WgPeer[], timing?: UapiTiming): Promise<void>;
  removePeer(publicKey: string): Promise<void>;
}

export interface WriteStats extends UapiTiming {
  peers: number;
  removed: number;
  ms: number;
  /** Our event loop's largest lateness during the write. */
  loopLagMs: number;
  /** From the first change asked for to the write's start (batching, earlier writes). */
  queuedMs: number;
}

type Change = { set: WgPeer } | { remove: string };
interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

export class PeerWriter {
  private pending = new Map<string, Change>();
  private waiters: Waiter[] = [];
  private running = false;
  private firstAsked = 0;

  /**
   * onWrite: each write's size and duration (the party engine logs slow ones at debug level), with
   * where the time went: UAPI connect and answer (wireguard-go only) and our own event loop's
   * worst lateness meanwhile (a busy helper delays reading the answer, not wireguard-go).
   */
  constructor(
    private readonly sink: PeerSink,
    private readonly onWrite?: (w: WriteStats) => void,
  ) {}

  /** Adds or replaces the peer; settles once a write carrying this change (or a newer one for the peer) is done. */
  set(p: WgPeer): Promise<void> {
    return this.queue(p.publicKey, { set: p });
  }

  setMany(ps: readonly WgPeer[]): Promise<void> {
    if (ps.length === 0) return Promise.resolve();
    return Promise.all(ps.map((p) => this.set(p))).then(() => undefined);
  }

  remove(publicKey: string): Promise<void> {
    return this.queue(publicKey, { remove: publicKey });
  }

  private queue(key: string, c: Change): Promise<void> {
    const old = this.pending.get(key);
    // A change without an endpoint leaves the endpoint as it was, in WireGuard and here: it keeps
    // the one of the change it replaces (and its keepalive, which belongs with the endpoint).
    if (old && 'set' in old && 'set' in c && c.set.endpoint === undefined && old.set.endpoint !== undefined) {
      c = { set: { ...c.set, endpoint: old.set.endpoint, persistentKeepaliveSeconds: c.set.persistentKeepaliveSeconds ?? old.set.persistentKeepaliveSeconds } };
    }
    // Re-inserted so that the batch keeps the order of the newest changes.
    if (this.pending.size === 0) this.firstAsked = performance.now();
    this.pending.delete(key);
    this.pending.set(key, c);
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.running) void this.drain();
    return done;
  }

  private async drain(): Promise<void> {
    this.running = true;
    // One turn of the event loop first: changes asked for in the same burst share the write.
    await new Promise<void>((r) => setImmediate(r));
    while (this.pending.size > 0) {
      const batch = [...this.pending.values()];
      const waiters = this.waiters;
      this.pending = new Map();
      this.waiters = [];
      const started = performance.now();
      const queuedMs = Math.round(started - this.firstAsked);
      const lag = loopLag.watch();
      const timing: UapiTiming = {};
      try {
        const sets = batch.flatMap((c) => ('set' in c ? [c.set] : []));
        for (const c of batch) if ('remove' in c) await this.sink.removePeer(c.remove);
        await this.sink.setPeers(sets, timing);
        this.onWrite?.({ peers: sets.length, removed: batch.length - sets.length, ms: performance.now() - started, loopLagMs: lag(), queuedMs, ...timing });
        for (const w of waiters) w.resolve();
      } catch (err) {
        lag();
        for (const w of waiters) w.reject(err);
      }
    }
    this.running = false;
  }
}
