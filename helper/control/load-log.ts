import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Logger } from '../core/log.js';

// A join storm makes every helper wait on this server at once: each second with session events
// logs (debug) how many went out and how late the event loop ran, so a slow Register or
// JoinParty can be told apart from a busy server.

const EVERY_MS = 1000;

export function watchLoad(plane: { delivered: number }, log: Logger): () => void {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  let last = plane.delivered;
  const timer = setInterval(() => {
    const events = plane.delivered - last;
    last = plane.delivered;
    if (events > 0) log.debug('control load', { events, loopMaxMs: Math.round(h.max / 1e6), loopP99Ms: Math.round(h.percentile(99) / 1e6) });
    h.reset();
  }, EVERY_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
    h.disable();
  };
}
