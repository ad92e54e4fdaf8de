// Scheduling priority of the data path. Kernel WireGuard runs in softirq context, ahead of every
// process; wireguard-go and the helper (which forwards every relayed packet) are ordinary
// processes, and on a busy machine (a game, a browser, a build) a woken forwarder waits for a CPU.
// Measured in the lab (relay.bench, helpers profiled, packets captured on both hosts): relayed
// packets waited 40-150 ms in a helper whose thread was runnable but not running, in bursts a few
// seconds after a join. So both get a higher priority (a lower nice value) when we may set one
// (root, or CAP_SYS_NICE), wireguard-go above the helper so that the helper's own periodic work
// (game scans, counter reads) does not delay fast-path packets. Never lowered: an operator who
// set a higher priority keeps it.
//
// LANRAGE_PRIORITY=off leaves every priority alone (benchmarks compare both ways).
//
// Linux nice values are per thread (setpriority on a PID changes only that thread); threads
// started later inherit from the thread that starts them, so every current thread is set.

import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import type { Logger } from './log.js';

/** wireguard-go: the tunnel itself, on every path. */
export const WIREGUARD_NICE = -10;
/** The helper: forwards relayed and proxied packets; also does the periodic work. */
export const HELPER_NICE = -5;

/** Threads of a process (just the process itself where /proc has no task list). */
function threadsOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number).filter((t) => Number.isInteger(t) && t > 0);
  } catch {
    return [pid];
  }
}

/**
 * Raises every thread of `pid` to at least `nice` (lower is more urgent). Returns how many threads
 * changed; a process we may not change (not root) is left alone, said at debug level.
 */
export function raisePriority(pid: number, nice: number, log: Logger, what: string): number {
  if (process.env.LANRAGE_PRIORITY === 'off') return 0;
  let changed = 0;
  // Threads started while we go through the list may have copied an old value: look again.
  for (let pass = 0; pass < 3; pass++) {
    const n = raiseThreads(pid, nice, log, what);
    if (n <= 0) break;
    changed += n;
  }
  if (changed > 0) log.debug('scheduling priority raised', { what, pid, nice, threads: changed });
  return changed;
}

/** One pass over the threads: how many changed, or -1 when we may not change them. */
function raiseThreads(pid: number, nice: number, log: Logger, what: string): number {
  let changed = 0;
  for (const tid of threadsOf(pid)) {
    try {
      if (getPriority(tid) <= nice) continue;
      setPriority(tid, nice);
      changed++;
    } catch (err) {
      // ESRCH: the thread ended meanwhile; anything else (EACCES: not root) ends the attempt.
      if ((err as NodeJS.ErrnoException).code === 'ESRCH' || /ESRCH|no such process/i.test(String(err))) continue;
      log.debug('could not raise the scheduling priority', { what, pid, tid, nice, err: String(err) });
      return changed > 0 ? changed : -1;
    }
  }
  return changed;
}
