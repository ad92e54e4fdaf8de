import type { GameProfile } from './profile.js';

// Pure matching of a process to a game profile. The detector feeds it what it read about each
// process; nothing here touches /proc or the OS.

export interface ProcInfo {
  pid: number;
  /** Basename of the executable (Linux: /proc/PID/exe; Windows/macOS: the process name). */
  exe: string;
  /** argv[0] as the process shows it: for Wine/Proton games a Windows path like C:\Games\hl2.exe. */
  argv0: string;
  /** The command line, arguments joined by spaces (possibly cut short). */
  cmdline: string;
}

export interface Match {
  profileId: string;
  /** The executable name that matched (as written in the profile). */
  exe: string;
}

export type MatchPlatform = 'linux' | 'windows' | 'darwin';

const baseName = (p: string): string => {
  const i = Math.max(p.lastIndexOf('/'), p.lastIndexOf('\\'));
  return i < 0 ? p : p.slice(i + 1);
};

interface Entry {
  profile: GameProfile;
  name: string;
}

/** An index from executable names to profiles, built once per catalog change. */
export class ProfileMatcher {
  // Linux and macOS names are case-sensitive; Windows (and Wine) names are not.
  private readonly exact = new Map<string, Entry[]>();
  private readonly folded = new Map<string, Entry[]>();

  constructor(profiles: readonly GameProfile[], readonly platform: MatchPlatform) {
    const add = (m: Map<string, Entry[]>, key: string, e: Entry): void => {
      const list = m.get(key);
      if (list) list.push(e);
      else m.set(key, [e]);
    };
    for (const profile of profiles) {
      const ex = profile.executables;
      if (platform === 'windows') {
        for (const n of ex.windows) add(this.folded, n.toLowerCase(), { profile, name: n });
      } else {
        for (const n of ex.linux) add(this.exact, n, { profile, name: n });
        for (const n of ex.wine) add(this.folded, n.toLowerCase(), { profile, name: n });
      }
    }
  }

  match(p: ProcInfo): Match | undefined {
    const candidates: Entry[] = [];
    const argBase = baseName(p.argv0);
    for (const key of new Set([p.exe, argBase])) {
      if (key === '') continue;
      candidates.push(...(this.exact.get(key) ?? []));
      candidates.push(...(this.folded.get(key.toLowerCase()) ?? []));
    }
    if (candidates.length === 0) return undefined;
    // A profile that names a command-line hint claims the process only if the hint is there,
    // and then wins over profiles that match by name alone (ioq3ded + "baseoa" is OpenArena).
    let plain: Entry | undefined;
    for (const c of candidates) {
      const hints = c.profile.executables.cmdlineContains;
      if (hints && hints.length > 0) {
        if (hints.some((h) => p.cmdline.includes(h))) return { profileId: c.profile.id, exe: c.name };
      } else plain ??= c;
    }
    return plain ? { profileId: plain.profile.id, exe: plain.name } : undefined;
  }
}
