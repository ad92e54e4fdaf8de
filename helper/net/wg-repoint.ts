// A fast-path peer's handshake messages reach WireGuard through its 127.0.0.1 proxy port (the
// crossing guard judges them, fastpath.ts WG_FAST_TYPES), and wireguard-go roams to the source of
// every authenticated packet, handshakes included (device/receive.go: SetEndpointFromPacket for an
// initiation before it sends the response, for a response before it sends the keepalive). It
// then talks to the proxy port, through the helper, until the peer's next data packet arrives
// over the fast path: for a one-way stream up to the peer's passive keepalive, after every rekey.
//
// So after handing WireGuard a handshake message we point it back at the fast endpoint, but only
// once it has roamed: its answer leaving through the proxy port is that moment (it sends the
// answer after roaming; a push before that would be overwritten). The window stays open a while
// after the message, as a second message delivered right behind the first roams again; when it
// closes without an answer seen (a rejected message roams nothing, but a peer going on the fast
// path meanwhile may have had its endpoint overwritten), one push makes sure.

import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';

/** How long after the last handshake message WireGuard's answers through the proxy count. */
export const REPOINT_WINDOW_MS = 2000;
/**
 * Pushes per window at most: packets WireGuard sent before a push landed trail it through the
 * proxy socket (one more push is normal); a peer whose data keeps arriving through the helper
 * (e.g. over the relay) keeps WireGuard roaming, and a UAPI write per packet would not help.
 */
const MAX_PUSHES = 3;

export interface RepointPeer {
  readonly id: string;
  readonly removed: boolean;
  /** The endpoint WireGuard has on the fast path, or null. */
  readonly fastEp: string | null;
  /** The fast path's own loop is changing WireGuard's endpoint: it has the last word. */
  readonly reconciling: boolean;
}

export interface RepointIo<P extends RepointPeer> {
  clock: Clock;
  log: Pick<Logger, 'debug'>;
  c: { fastpath_repoints: number };
  /** Sets the peer's endpoint in WireGuard; false when that failed (logged by the callee). */
  push(rec: P, endpoint: string): Promise<boolean>;
}

interface Window {
  cancel(): void;
  pushes: number;
  pushing: boolean;
  /** WireGuard answered through the proxy while a push was under way. */
  again: boolean;
}

export class WgRepoint<P extends RepointPeer> {
  private readonly open = new Map<P, Window>();

  constructor(private readonly io: RepointIo<P>) {}

  /** A handshake message (initiation or response) of this peer was handed to WireGuard. */
  delivered(rec: P): void {
    if (rec.removed) return;
    const w = this.open.get(rec);
    w?.cancel();
    const next: Window = w ?? { cancel: () => {}, pushes: 0, pushing: false, again: false };
    // A newer message opens a new window: its answer may need pushes of its own.
    next.pushes = 0;
    next.cancel = this.io.clock.setTimeout(() => this.close(rec, next), REPOINT_WINDOW_MS);
    this.open.set(rec, next);
  }

  /** WireGuard sent a packet for this fast-path peer through its proxy port: it has roamed. */
  proxied(rec: P): void {
    const w = this.open.get(rec);
    if (!w) return;
    if (w.pushing) w.again = true;
    else void this.push(rec, w, 'answer');
  }

  /** The peer is gone or off the fast path: nothing more to push. */
  cancel(rec: P): void {
    const w = this.open.get(rec);
    if (!w) return;
    w.cancel();
    this.open.delete(rec);
  }

  /** Windows still open (tests). */
  get size(): number {
    return this.open.size;
  }

  private close(rec: P, w: Window): void {
    if (this.open.get(rec) !== w) return;
    this.open.delete(rec);
    if (w.pushes === 0 && !w.pushing) void this.push(rec, w, 'window-end');
  }

  private async push(rec: P, w: Window, why: 'answer' | 'window-end'): Promise<void> {
    const ep = rec.fastEp;
    if (ep === null || rec.removed || rec.reconciling || w.pushes >= MAX_PUSHES) return;
    w.pushing = true;
    w.again = false;
    w.pushes++;
    this.io.c.fastpath_repoints++;
    this.io.log.debug('fast path: WireGuard pointed back at the peer after a handshake', { peer: rec.id, endpoint: ep, why });
    try {
      await this.io.push(rec, ep);
    } finally {
      w.pushing = false;
    }
    if (w.again && this.open.get(rec) === w) void this.push(rec, w, 'answer');
  }
}
