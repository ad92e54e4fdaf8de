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
//
// At rest even the directory listing is mostly wasted (hundreds of entries, a string each, every
// few seconds): /proc/loadavg's 4th field ends with the number of threads in the system and its
// 5th is the last PID handed out. Any fork or clone moves the last PID, any exit lowers the total
// with nothing raising it back but a clone, so while both stand still no process came or went
// and the listing is skipped: only the processes whose identity may still change (young ones,
// Wine) are re-read. PID reuse landing on exactly the same last PID would need a full wrap of
// the PID space between two scans; a full listing every FULL_READ_MS bounds even that. The
// cache is updated in place and the list handed out is rebuilt only when an entry changed, so
// the detector can tell "nothing changed" by identity.

const WINE_EXE = /^wine(64)?(-preloader)?$|^wineserver$|^wine64-preloader$/;
const CMDLINE_MAX = 4096;

interface Cached {
  link: string;
  info: ProcInfo;
  wine: boolean;
  firstSeen: number;
  /** The full listing that last saw this PID. */
  seenIn: number;
}

export const RECHECK_MS = 10_000;
/** Processes read (readlink, command line) between two yields to the event loop. */
export const YIELD_EVERY = 16;
/** The longest time the /proc listing is skipped while /proc/loadavg stands still. */
export const FULL_READ_MS = 30_000;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const baseName = (p: string): string => p.slice(p.lastIndexOf('/') + 1);

/** "total threads / last PID" of a /proc/loadavg line ("0.32 0.38 0.17 1/86 4712"), or null. */
export function loadavgKey(text: string): string | null {
  const f = text.trim().split(/\s+/);
  const slash = f[3]?.indexOf('/') ?? -1;
  if (f.length < 5 || slash < 0) return null;
  return `${f[3]!.slice(slash + 1)} ${f[4]}`;
}

export class LinuxProcSource implements ProcessSource {
  readonly platform = 'linux' as const;
  private readonly cache = new Map<number, Cached>();
  private procs: ProcInfo[] = [];
  private listing = 0;
  private lastKey: string | null = null;
  private lastFullAt = -Infinity;

  constructor(
    private readonly root = '/proc',
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The same array as the previous call while no process came, went or changed. */
  async list(): Promise<ProcInfo[]> {
    const now = this.now();
    // Read before the listing: a fork during it moves the key, and the next scan lists again.
    const key = this.readLoadavgKey();
    let changed: boolean;
    if (key !== null && key === this.lastKey && now - this.lastFullAt < FULL_READ_MS) {
      changed = await this.recheck(now);
    } else {
      changed = await this.fullRead(now);
      this.lastKey = key;
      this.lastFullAt = now;
    }
    if (changed) this.procs = Array.from(this.cache.values(), (c) => c.info);
    return this.procs;
  }

  private readLoadavgKey(): string | null {
    try {
      return loadavgKey(readProcText(`${this.root}/loadavg`));
    } catch {
      return null;
    }
  }

  private async fullRead(now: number): Promise<boolean> {
    const listing = ++this.listing;
    let changed = false;
    let read = 0;
    for (const name of readdirSync(this.root)) {
      const c0 = name.charCodeAt(0);
      if (c0 < 48 || c0 > 57) continue;
      const pid = Number(name);
      const prev = this.cache.get(pid);
      if (prev && !prev.wine && now - prev.firstSeen >= RECHECK_MS) {
        prev.seenIn = listing;
        continue;
      }
      if (++read % YIELD_EVERY === 0) await yieldToLoop();
      const r = this.readOne(pid, name, prev, now, listing);
      if (r !== 'same') changed = true;
    }
    for (const [pid, c] of this.cache) {
      if (c.seenIn === listing) continue;
      this.cache.delete(pid);
      changed = true;
    }
    return changed;
  }

  /** No process came or went: re-read those whose exe or command line may still change. */
  private async recheck(now: number): Promise<boolean> {
    let changed = false;
    let read = 0;
    for (const [pid, c] of this.cache) {
      if (!c.wine && now - c.firstSeen >= RECHECK_MS) continue;
      if (++read % YIELD_EVERY === 0) await yieldToLoop();
      const r = this.readOne(pid, String(pid), c, now, c.seenIn);
      if (r === 'gone') this.cache.delete(pid);
      if (r !== 'same') changed = true;
    }
    return changed;
  }

  /** Reads one process into the cache: 'same' (entry kept), 'new' (entry replaced or added) or 'gone' (unreadable, not cached). */
  private readOne(pid: number, name: string, prev: Cached | undefined, now: number, listing: number): 'same' | 'new' | 'gone' {
    const link = this.readExe(name);
    if (link === undefined) return 'gone';
    if (prev && prev.link === link && !prev.wine) {
      prev.seenIn = listing;
      return 'same';
    }
    const argv = this.readCmdline(name);
    if (argv === undefined) return 'gone';
    const exe = baseName(link.endsWith(' (deleted)') ? link.slice(0, -10) : link);
    const cmdline = argv.join(' ').slice(0, CMDLINE_MAX);
    const argv0 = argv[0] ?? '';
    if (prev && prev.link === link && prev.info.cmdline === cmdline && prev.info.argv0 === argv0) {
      prev.seenIn = listing;
      return 'same';
    }
    this.cache.set(pid, { link, wine: WINE_EXE.test(exe), firstSeen: prev?.firstSeen ?? now, seenIn: listing, info: { pid, exe, argv0, cmdline } });
    return 'new';
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
