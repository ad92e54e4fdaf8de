import type { Logger } from '../core/log.js';
import type { Announcement } from '../gen/lanrage/control/v1/control.js';
import type { PeerSample } from '../metrics/peer-metrics.js';
import { PathKind } from '../gen/lanrage/v1/peer.js';
import type { GameSessionsRepo, StoredSession } from '../store/game-sessions-repo.js';
import type { Detection } from './detector.js';
import { GameSessions, type GameSessionRecord, type MemberGames } from './sessions.js';

// Game sessions wired to the helper: detections and the party's announced games go in, sessions
// come out into SQLite and onto Watch (topic GAMES). Counts for Prometheus since the start.

/** Who plays what in the party: each member's announced games with the member's name. */
export function membersPlaying(announced: ReadonlyMap<string, Announcement>, names: ReadonlyMap<string, string>): MemberGames[] {
  return [...announced].map(([deviceId, a]) => ({ deviceId, name: names.get(deviceId) ?? deviceId.slice(0, 8), games: a.gameProfileIds ?? [] }));
}

export class SessionRecorder {
  private readonly sessions = new GameSessions();
  private readonly ended = new Map<string, number>();

  constructor(
    private readonly o: {
      repo: GameSessionsRepo;
      log: Logger;
      gameName(profileId: string): string;
      onRecorded(s: StoredSession): void;
      /**
       * Whether a detected process is played here: one in another network namespace (a container,
       * or the lab's other sites on one machine) is somebody else's game (default: all are ours).
       */
      ours?: (pid: number) => boolean;
      now?: () => number;
    },
  ) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  started(d: Detection): void {
    if (this.o.ours && !this.o.ours(d.pid)) return;
    this.sessions.started(d.profileId, this.o.gameName(d.profileId), d.pid, this.now());
  }

  /** Safe for processes that never counted (the process is gone, so it cannot be checked again). */
  stopped(d: Detection): void {
    const rec = this.sessions.stopped(d.profileId, d.pid, this.now());
    if (rec) this.record(rec);
  }

  members(list: readonly MemberGames[]): void {
    this.sessions.setMembers(list, this.now());
  }

  samples(list: readonly PeerSample[]): void {
    // Every round at rest: no game, nothing to copy.
    if (!this.sessions.anyOpen()) return;
    this.sessions.samples(list.map((s) => ({ deviceId: s.deviceId, rttMs: s.rttMs, direct: s.path === PathKind.PATH_KIND_DIRECT })));
  }

  /** Sessions ended since the helper started, by game profile id. */
  endedCounts(): ReadonlyMap<string, number> {
    return this.ended;
  }

  /** Games being played here now. */
  playing(): string[] {
    return this.sessions.openSessions().map((s) => s.profileId);
  }

  /** The helper stops: what is being played ends now and is kept. */
  close(): void {
    for (const rec of this.sessions.endAll(this.now())) this.record(rec);
  }

  private record(rec: GameSessionRecord): void {
    this.ended.set(rec.profileId, (this.ended.get(rec.profileId) ?? 0) + 1);
    try {
      const stored = this.o.repo.add(rec);
      this.o.log.info('game session recorded', { game: rec.profileId, seconds: Math.round((rec.endMs - rec.startMs) / 1000), players: rec.players.length });
      this.o.onRecorded(stored);
    } catch (err) {
      this.o.log.warn('storing a game session failed; it is not kept', { game: rec.profileId, err: String(err) });
    }
  }
}
