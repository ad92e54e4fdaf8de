import type { GameSessionRecord, SessionPlayer } from '../games/sessions.js';
import type { Db } from './db.js';

// Recorded game sessions, newest first; pruned on every insert to 90 days and 10000 rows (a
// session is a few hundred bytes: the table stays under a few MB).

export const SESSION_KEEP_MS = 90 * 24 * 3600_000;
export const SESSION_MAX_ROWS = 10_000;

export interface StoredSession extends GameSessionRecord {
  id: number;
}

interface Row {
  id: number;
  profile_id: string;
  game_name: string;
  started_ms: number;
  ended_ms: number;
  players: string;
}

/** Players as read back: anything that is not the shape written is dropped, not trusted. */
function parsePlayers(json: string): SessionPlayer[] {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return [];
  }
  if (!Array.isArray(v)) return [];
  const num = (x: unknown): number => (typeof x === 'number' && Number.isFinite(x) ? x : 0);
  return v
    .filter((p): p is Record<string, unknown> => typeof p === 'object' && p !== null && typeof (p as { deviceId?: unknown }).deviceId === 'string')
    .map((p) => ({
      deviceId: p.deviceId as string,
      name: typeof p.name === 'string' ? p.name : '',
      overlapMs: num(p.overlapMs),
      avgRttMs: num(p.avgRttMs),
      rttSamples: num(p.rttSamples),
      directShare: num(p.directShare),
    }));
}

export class GameSessionsRepo {
  private readonly insertStmt;
  private readonly pruneAgeStmt;
  private readonly pruneCountStmt;
  private readonly listStmt;

  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {
    this.insertStmt = db.prepare<[string, string, number, number, string]>('INSERT INTO game_sessions(profile_id, game_name, started_ms, ended_ms, players) VALUES (?,?,?,?,?)');
    this.pruneAgeStmt = db.prepare<[number]>('DELETE FROM game_sessions WHERE ended_ms < ?');
    this.pruneCountStmt = db.prepare<[number]>('DELETE FROM game_sessions WHERE id <= (SELECT id FROM game_sessions ORDER BY id DESC LIMIT 1 OFFSET ?)');
    this.listStmt = db.prepare<[number, number, string, string, number], Row>(
      `SELECT id, profile_id, game_name, started_ms, ended_ms, players FROM game_sessions
        WHERE (? = 0 OR id < ?) AND (? = '' OR profile_id = ?) ORDER BY id DESC LIMIT ?`,
    );
  }

  add(s: GameSessionRecord): StoredSession {
    const id = this.db.transaction(() => {
      const r = this.insertStmt.run(s.profileId, s.gameName, s.startMs, s.endMs, JSON.stringify(s.players));
      this.pruneAgeStmt.run(this.now() - SESSION_KEEP_MS);
      this.pruneCountStmt.run(SESSION_MAX_ROWS);
      return Number(r.lastInsertRowid);
    })();
    return { ...s, id };
  }

  /** Newest first; `beforeId` 0 = from the newest; `profileId` '' = every game. */
  list(limit: number, beforeId: number, profileId: string): StoredSession[] {
    const rows = this.listStmt.all(beforeId, beforeId, profileId, profileId, limit);
    return rows.map((r) => ({ id: r.id, profileId: r.profile_id, gameName: r.game_name, startMs: r.started_ms, endMs: r.ended_ms, players: parsePlayers(r.players) }));
  }
}
