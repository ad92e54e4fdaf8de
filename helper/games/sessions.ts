// Game sessions: a game played here, from the detector seeing its first process start to seeing
// its last one stop, with the party members who played the same game meanwhile (as their helpers
// announce it) and the round trips to them while both played. Pure: the helper feeds it
// detections, the party's announced games and the per-peer samples (about one a second), and
// stores what `end` hands back.

export interface SessionPlayer {
  deviceId: string;
  name: string;
  /** Milliseconds both played the game. */
  overlapMs: number;
  /** Mean of the measured round trips while both played (0: none measured). */
  avgRttMs: number;
  rttSamples: number;
  /** Share of the samples taken while both played that were on a direct path, 0-1. */
  directShare: number;
}

export interface GameSessionRecord {
  profileId: string;
  gameName: string;
  startMs: number;
  endMs: number;
  players: SessionPlayer[];
}

/** What a member's helper announced: the game profile ids running there. */
export interface MemberGames {
  deviceId: string;
  name: string;
  games: readonly string[];
}

/** One per-peer measurement (the per-peer metrics' sample, narrowed). */
export interface PeerRtt {
  deviceId: string;
  rttMs: number;
  direct: boolean;
}

interface PlayerAcc {
  name: string;
  overlapMs: number;
  /** While playing along: since when (ms). */
  since: number | null;
  rttSum: number;
  rttN: number;
  samples: number;
  direct: number;
}

interface OpenSession {
  profileId: string;
  gameName: string;
  startMs: number;
  /** Processes of the game running here (a game may run several, e.g. launcher and engine). */
  pids: Set<number>;
  players: Map<string, PlayerAcc>;
}

export class GameSessions {
  private readonly open = new Map<string, OpenSession>();
  /** deviceId → the member's name and announced games. */
  private members = new Map<string, MemberGames>();

  /** A process of a game started here. */
  started(profileId: string, gameName: string, pid: number, atMs: number): void {
    const s = this.open.get(profileId);
    if (s) {
      s.pids.add(pid);
      return;
    }
    const n: OpenSession = { profileId, gameName, startMs: atMs, pids: new Set([pid]), players: new Map() };
    this.open.set(profileId, n);
    this.syncPlayers(n, atMs);
  }

  /** A process of a game stopped here; the session it ends, if it was the game's last process. */
  stopped(profileId: string, pid: number, atMs: number): GameSessionRecord | undefined {
    const s = this.open.get(profileId);
    if (!s) return undefined;
    s.pids.delete(pid);
    if (s.pids.size > 0) return undefined;
    this.open.delete(profileId);
    return close(s, atMs);
  }

  /** The party's announced games changed (the whole picture: members absent play nothing). */
  setMembers(members: readonly MemberGames[], atMs: number): void {
    this.members = new Map(members.map((m) => [m.deviceId, m]));
    for (const s of this.open.values()) this.syncPlayers(s, atMs);
  }

  /** A game is being played here now. */
  anyOpen(): boolean {
    return this.open.size > 0;
  }

  /** Per-peer samples: the round trips count for sessions in which that peer plays along now. */
  samples(list: readonly PeerRtt[]): void {
    if (this.open.size === 0) return;
    for (const x of list) {
      for (const s of this.open.values()) {
        const p = s.players.get(x.deviceId);
        if (!p || p.since === null) continue;
        p.samples++;
        if (x.direct) p.direct++;
        if (x.rttMs > 0 && Number.isFinite(x.rttMs)) {
          p.rttSum += x.rttMs;
          p.rttN++;
        }
      }
    }
  }

  /** Every open session ends now (the helper stops). */
  endAll(atMs: number): GameSessionRecord[] {
    const out = [...this.open.values()].map((s) => close(s, atMs));
    this.open.clear();
    return out;
  }

  /** Games being played here now, oldest first. */
  openSessions(): Array<{ profileId: string; startMs: number }> {
    return [...this.open.values()].map((s) => ({ profileId: s.profileId, startMs: s.startMs })).sort((a, b) => a.startMs - b.startMs);
  }

  private syncPlayers(s: OpenSession, atMs: number): void {
    for (const [id, m] of this.members) {
      const playing = m.games.includes(s.profileId);
      let p = s.players.get(id);
      if (playing && !p) {
        p = { name: m.name, overlapMs: 0, since: null, rttSum: 0, rttN: 0, samples: 0, direct: 0 };
        s.players.set(id, p);
      }
      if (!p) continue;
      p.name = m.name || p.name;
      if (playing && p.since === null) p.since = atMs;
      if (!playing) stopPlaying(p, atMs);
    }
    for (const [id, p] of s.players) if (!this.members.has(id)) stopPlaying(p, atMs);
  }
}

function stopPlaying(p: PlayerAcc, atMs: number): void {
  if (p.since === null) return;
  p.overlapMs += Math.max(0, atMs - p.since);
  p.since = null;
}

function close(s: OpenSession, endMs: number): GameSessionRecord {
  const players: SessionPlayer[] = [];
  for (const [deviceId, p] of s.players) {
    stopPlaying(p, endMs);
    players.push({
      deviceId,
      name: p.name,
      overlapMs: p.overlapMs,
      avgRttMs: p.rttN > 0 ? p.rttSum / p.rttN : 0,
      rttSamples: p.rttN,
      directShare: p.samples > 0 ? p.direct / p.samples : 0,
    });
  }
  players.sort((a, b) => b.overlapMs - a.overlapMs || a.name.localeCompare(b.name));
  return { profileId: s.profileId, gameName: s.gameName, startMs: s.startMs, endMs: Math.max(endMs, s.startMs), players };
}
