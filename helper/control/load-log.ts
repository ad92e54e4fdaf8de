import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import type { Logger } from '../core/log.js';

// A join storm makes every helper wait on this server at once: each second with session events
// logs (debug) how many went out, the calls answered by method, how late the event loop ran, and
// what of that lateness was this process's own (its longest operation, its longest GC pause), so
// a slow Register or JoinParty can be told apart from a busy server, and a busy server from a
// starved one (late loop, short operations: waiting for a CPU).

const EVERY_MS = 1000;

export function watchLoad(plane: { delivered: number; runMaxMs: number }, log: Logger, calls?: Map<string, number>): () => void {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  let gcMaxMs = 0;
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMaxMs = Math.max(gcMaxMs, e.duration);
  });
  gc.observe({ entryTypes: ['gc'] });
  let last = plane.delivered;
  const timer = setInterval(() => {
    const events = plane.delivered - last;
    last = plane.delivered;
    if (events > 0) {
      log.debug('control load', {
        events,
        ...(calls && { calls: Object.fromEntries(calls) }),
        loopMaxMs: Math.round(h.max / 1e6),
        loopP99Ms: Math.round(h.percentile(99) / 1e6),
        opMaxMs: Math.round(plane.runMaxMs),
        gcMaxMs: Math.round(gcMaxMs),
      });
    }
    calls?.clear();
    plane.runMaxMs = 0;
    gcMaxMs = 0;
    h.reset();
  }, EVERY_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
    gc.disconnect();
    h.disable();
  };
}
