import { debugEnabled } from './log.js';

// How late this process's event loop ran while something was under way: a join storm's slow
// steps (a WireGuard write, a control call) are either the other side being slow or our own loop
// being busy, and only this tells them apart. A 10 ms timer runs only while someone watches.

const TICK_MS = 10;

export class LoopLag {
  private timer: ReturnType<typeof setInterval> | undefined;
  private last = 0;
  private readonly watching = new Set<{ max: number }>();

  /** enabled: whether anyone reads the figure (off, a watch costs nothing and gives 0). */
  constructor(private readonly enabled: () => boolean = () => true) {}

  /** Starts a watch; the returned function stops it and gives the largest lateness seen (ms). */
  watch(): () => number {
    if (!this.enabled()) return () => 0;
    const w = { max: 0 };
    this.watching.add(w);
    if (!this.timer) {
      this.last = performance.now();
      this.timer = setInterval(() => {
        const now = performance.now();
        const late = now - this.last - TICK_MS;
        this.last = now;
        for (const x of this.watching) x.max = Math.max(x.max, late);
      }, TICK_MS);
      this.timer.unref();
    }
    return () => {
      if (this.watching.delete(w) && this.watching.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
      // A watch shorter than a tick still counts a loop blocked right now.
      return Math.max(0, Math.round(Math.max(w.max, performance.now() - this.last - TICK_MS)));
    };
  }
}

/** One per process: watches share its timer, which feeds debug records only. */
export const loopLag = new LoopLag(debugEnabled);
