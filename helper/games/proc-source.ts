import { readdirSync, readlinkSync } from 'node:fs';
import { readProcText } from '../core/proc-text.js';
import type { ProcInfo } from './match.js';
import type { ProcessSource } from './detector.js';

// Linux process listing straight from /proc. systeminformation.processes() costs ~0.7 s of CPU
// per call here (it runs ps and then a shell per process), far over the detection budget, so this
// reads /proc itself and remembers what it read. A new PID costs a readlink of /proc/PID/exe and a
// read of its command line. A known PID costs nothing but its directory entry, except:
// - while it is young (RECHECK_MS): one readlink per scan, because a process that is about to
//   become the game usually execs right after it starts (fork+exec, or a wrapper script such as
//   Debian's openarena-server that execs the engine), and an exec changes the link;
// - Wine processes: their command line is re-read every scan, because Wine rewrites argv to the
//   Windows path of the game after starting, without an exec.
// Measured (test/bench/games.bench.ts): re-reading every link on every scan cost ~9 ms of CPU at
// 650 processes, over the 4 ms budget; trusting settled processes brings it under 1 ms. A
// long-lived process that execs into a game much later is missed until it restarts: accepted.
// The reads are synchronous (a few µs each) but the scan yields to the event loop after every
// YIELD_EVERY processes it had to read: the helper forwards relayed packets on the same thread,
// and a whole scan of a busy machine held it for 10-50 ms on a loaded 2-core lab (CPU profile).

const WINE_EXE = /^wine(64)?(-preloader)?$|^wineserver$|^wine64-preloader$/;
const CMDLINE_MAX = 4096;

interface Cached {
  link: string;
  info: ProcInfo;
  wine: boolean;
  firstSeen: number;
}

export const RECHECK_MS = 10_000;
/** Processes read (readlink, command line) between two yields to the event loop. */
export const YIELD_EVERY = 16;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const baseName = (p: string): string => p.slice(p.lastIndexOf('/') + 1);

export class LinuxProcSource implements ProcessSource {
  readonly platform = 'linux' as const;
  private cache = new Map<number, Cached>();

  constructor(
    private readonly root = '/proc',
    private readonly now: () => number = () => performance.now(),
  ) {}

  async list(): Promise<ProcInfo[]> {
    const next = new Map<number, Cached>();
    const now = this.now();
    let read = 0;
    for (const name of readdirSync(this.root)) {
      const c0 = name.charCodeAt(0);
      if (c0 < 48 || c0 > 57) continue;
      const pid = Number(name);
      const prev = this.cache.get(pid);
      if (prev && !prev.wine && now - prev.firstSeen >= RECHECK_MS) {
        next.set(pid, prev);
        continue;
      }
      if (++read % YIELD_EVERY === 0) await yieldToLoop();
      const link = this.readExe(name);
      if (link === undefined) continue;
      if (prev && prev.link === link && !prev.wine) {
        next.set(pid, prev);
        continue;
      }
      const argv = this.readCmdline(name);
      if (argv === undefined) continue;
      const exe = baseName(link.endsWith(' (deleted)') ? link.slice(0, -10) : link);
      next.set(pid, {
        link,
        wine: WINE_EXE.test(exe),
        firstSeen: prev?.firstSeen ?? now,
        info: { pid, exe, argv0: argv[0] ?? '', cmdline: argv.join(' ').slice(0, CMDLINE_MAX) },
      });
    }
    this.cache = next;
    return [...next.values()].map((c) => c.info);
  }

  /** '' when the link cannot be read (kernel thread, another user's process without root). */
  private readExe(pid: string): string | undefined {
    try {
      return readlinkSync(`${this.root}/${pid}/exe`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENOENT is both "kernel thread" and "already gone"; the readdir of the next scan tells.
      return code === 'ENOENT' || code === 'EACCES' || code === 'EPERM' ? '' : undefined;
    }
  }

  private readCmdline(pid: string): string[] | undefined {
    try {
      const raw = readProcText(`${this.root}/${pid}/cmdline`);
      const parts = raw.split('\0');
      if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
      return parts;
    } catch {
      return undefined;
    }
  }
}
