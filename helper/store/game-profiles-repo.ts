import type { CustomProfileStore } from '../games/catalog.js';
import type { GameProfile } from '../games/profile.js';
import { checkProfile } from '../games/validate-profile.js';
import type { Db } from './db.js';

// Custom game profiles, one JSON row each. Rows are checked again when read: a row edited by hand
// into something invalid is skipped (and reported) instead of reaching the detector.
export class GameProfilesRepo implements CustomProfileStore {
  private readonly allStmt;
  private readonly insStmt;
  private readonly delStmt;

  constructor(
    db: Db,
    private readonly onBadRow: (id: string, errors: string[]) => void = () => {},
  ) {
    this.allStmt = db.prepare<[], { id: string; profile: string }>('SELECT id, profile FROM custom_game_profiles ORDER BY created_at, id');
    this.insStmt = db.prepare<[string, string, number]>('INSERT INTO custom_game_profiles(id, profile, created_at) VALUES (?, ?, ?)');
    this.delStmt = db.prepare<[string]>('DELETE FROM custom_game_profiles WHERE id = ?');
  }

  list(): GameProfile[] {
    const out: GameProfile[] = [];
    for (const row of this.allStmt.all()) {
      let raw: unknown;
      try {
        raw = JSON.parse(row.profile);
      } catch {
        this.onBadRow(row.id, ['not valid JSON']);
        continue;
      }
      const r = checkProfile(raw, { custom: true });
      if (r.ok && r.profile.id === row.id) out.push(r.profile);
      else this.onBadRow(row.id, r.ok ? ['id does not match its row'] : r.errors);
    }
    return out;
  }

  insert(p: GameProfile): void {
    const { custom: _custom, ...stored } = p;
    this.insStmt.run(p.id, JSON.stringify(stored), Date.now());
  }

  delete(id: string): boolean {
    return this.delStmt.run(id).changes > 0;
  }
}
