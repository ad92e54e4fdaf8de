import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { ProcInfo } from './match.js';
import type { ProcessSource } from './detector.js';

// Linux process listing straight from /proc. systeminformation.processes() costs ~0.7 s of CPU
// per call here (it runs ps and then a shell per process), far over the detection budget, so this
// reads /proc itself and remembers what it read: per known PID a scan costs one readlink of
// /proc/PID/exe (an exec changes it); the command line is read once per new process, and on every
// scan only for Wine processes, which rewrite their argv to the Windows path after starting.

const WINE_EXE = /^wine(64)?(-preloader)?$|^wineserver$|^wine64-preloader$/;
const CMDLINE_MAX = 4096;

interface Cached {
  link: string;
  info: ProcInfo;
  wine: boolean;
}

const baseName = (p: string): string => p.slice(p.lastIndexOf('/') + 1);

export class LinuxProcSource implements ProcessSource {
  readonly platform = 'linux' as const;
  private cache = new Map<number, Cached>();

  constructor(private readonly root = '/proc') {}

  list(): ProcInfo[] {
    const next = new Map<number, Cached>();
    for (const name of readdirSync(this.root)) {
      const c0 = name.charCodeAt(0);
      if (c0 < 48 || c0 > 57) continue;
      const pid = Number(name);
      const link = this.readExe(name);
      if (link === undefined) continue;
      const prev = this.cache.get(pid);
      if (prev && prev.link === link && !prev.wine) {
        next.set(pid, prev);
        continue;
      }
      const argv = this.readCmdline(name);
      if (argv === undefined) continue;
      const exe = baseName(link.endsWith(' (deleted)') ? link.slice(0, -10) : link);
      next.set(pid, { link, wine: WINE_EXE.test(exe), info: { pid, exe, argv0: argv[0] ?? '', cmdline: argv.join(' ').slice(0, CMDLINE_MAX) } });
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
      const raw = readFileSync(`${this.root}/${pid}/cmdline`, 'latin1');
      const parts = raw.split('\0');
      if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
      return parts;
    } catch {
      return undefined;
    }
  }
}
