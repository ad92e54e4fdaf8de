import { closeSync, openSync, readSync } from 'node:fs';

// Small /proc files read over and over at rest (/proc/net/dev every second, /proc/stat and
// /proc/meminfo every 10 s, a new process's command line in the game scan). procfs reports a
// size of 0, so readFileSync allocates a fresh 64 KiB buffer per read and copies it again: ~76 µs
// and 64 KiB of garbage for 700 bytes of /proc/net/dev here, against ~18 µs reading into one
// buffer kept for the purpose (garbage collection was half of an idle helper's busy time).
// Synchronous on purpose: a procfs read takes microseconds, a thread-pool round trip more.

let buf = Buffer.allocUnsafeSlow(16 * 1024);

/** The whole file as latin1 text (procfs is ASCII; command lines keep their bytes 1:1). Throws as readFileSync does. */
export function readProcText(path: string): string {
  const fd = openSync(path, 'r');
  try {
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        const bigger = Buffer.allocUnsafeSlow(buf.length * 2);
        buf.copy(bigger, 0, 0, len);
        buf = bigger;
      }
      // Sequential reads (position null): seq_file (most of /proc) returns a large file in pieces.
      const n = readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
    }
    return buf.toString('latin1', 0, len);
  } finally {
    closeSync(fd);
  }
}
