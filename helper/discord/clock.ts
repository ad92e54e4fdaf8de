// Time for the queue, injectable so that unit tests drive rate limits without waiting.
export interface Clock {
  now(): number;
  /** Calls fn after ms; returns a cancel function. */
  after(ms: number, fn: () => void): () => void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  after: (ms, fn) => {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return () => clearTimeout(t);
  },
};
