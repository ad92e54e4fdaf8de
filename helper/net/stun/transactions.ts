// STUN client transactions (RFC 8489 §6.2) for every STUN client here (TURN, the Binding client on
// magicsock's socket, netcheck): a request is matched to its answer by transaction id, and, where
// the caller says so, by what the answer must be and where it must come from. Over UDP it is
// retransmitted, byte for byte, on the caller's schedule; over TCP it is sent once and only timed
// out. TURN's schedule is shorter than the RFC's 39.5 s: a relay that has not answered within ~6 s
// is treated as lost, so that the client re-allocates while the party still waits.

import type { Clock } from '../../core/clock.js';

export interface RetransmitTiming {
  /** Waits before each retransmission (UDP). */
  rtoMs: readonly number[];
  /** Wait after the last (re)transmission before giving up (UDP). */
  finalWaitMs: number;
  /** The one timeout of a request over a reliable transport. */
  reliableTimeoutMs: number;
}

export const DEFAULT_RETRANSMIT: RetransmitTiming = { rtoMs: [250, 500, 1000, 2000], finalWaitMs: 2000, reliableTimeoutMs: 8000 };

export class TransactionTimeout extends Error {
  constructor(what: string) {
    super(`${what}: no answer from the relay`);
    this.name = 'TransactionTimeout';
  }
}

/**
 * Whether a datagram carrying an open transaction's id really answers it; when false it is left
 * unclaimed and the transaction stays open (a forged or misrouted answer must not end it).
 */
export type AcceptAnswer = (b: Buffer, from: string | undefined) => boolean;

interface Pending {
  done: boolean;
  accept: AcceptAnswer | undefined;
  resolve(b: Buffer): void;
  reject(e: Error): void;
  cancel: () => void;
}

export class Transactions {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly clock: Clock,
    private readonly timing: RetransmitTiming = DEFAULT_RETRANSMIT,
  ) {}

  /**
   * Sends `msg` (whose bytes 8-20 are its transaction id) through `send` until an answer with that id
   * is fed to handle(); resolves with the answer's bytes.
   */
  request(msg: Buffer, send: (b: Buffer) => void, reliable: boolean, what = 'request', accept?: AcceptAnswer): Promise<Buffer> {
    const key = msg.toString('hex', 8, 20);
    if (this.pending.has(key)) return Promise.reject(new Error('duplicate transaction id'));
    return new Promise<Buffer>((resolve, reject) => {
      const p: Pending = { done: false, accept, resolve, reject, cancel: () => {} };
      this.pending.set(key, p);
      let attempt = 0;
      const transmit = (): void => {
        try {
          send(msg);
        } catch {
          // A failed send (socket closing, no route) counts as a lost datagram: the timers decide.
        }
      };
      const giveUp = (): void => {
        p.done = true;
        this.pending.delete(key);
        reject(new TransactionTimeout(what));
      };
      const step = (): void => {
        transmit();
        // An answer can arrive during send() (an in-process transport).
        if (p.done) return;
        const wait = this.timing.rtoMs[attempt];
        attempt++;
        p.cancel = wait === undefined ? this.clock.setTimeout(giveUp, this.timing.finalWaitMs) : this.clock.setTimeout(step, wait);
      };
      if (reliable) {
        transmit();
        if (p.done) return;
        p.cancel = this.clock.setTimeout(giveUp, this.timing.reliableTimeoutMs);
      } else {
        step();
      }
    });
  }

  /** True when `b` (a STUN response, from `from`) answered one of our open transactions; it is then consumed. */
  handle(b: Buffer, from?: string): boolean {
    if (b.length < 20) return false;
    const key = b.toString('hex', 8, 20);
    const p = this.pending.get(key);
    if (!p) return false;
    if (p.accept && !p.accept(b, from)) return false;
    this.pending.delete(key);
    p.done = true;
    p.cancel();
    p.resolve(b);
    return true;
  }

  isPending(txid: Buffer): boolean {
    return this.pending.has(txid.toString('hex'));
  }

  get size(): number {
    return this.pending.size;
  }

  /** Fails every open transaction (transport closed, client closing). */
  failAll(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      p.done = true;
      p.cancel();
      p.reject(err);
    }
  }
}
