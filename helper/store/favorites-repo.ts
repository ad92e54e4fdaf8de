import type { Db } from './db.js';

// Favourite servers of the server browser, by the browser's server id.
export class FavoritesRepo {
  private readonly listStmt;
  private readonly addStmt;
  private readonly delStmt;

  constructor(db: Db) {
    this.listStmt = db.prepare<[], { server_id: string }>('SELECT server_id FROM favorite_servers ORDER BY added_at');
    this.addStmt = db.prepare<[string, number]>('INSERT INTO favorite_servers(server_id, added_at) VALUES (?, ?) ON CONFLICT(server_id) DO NOTHING');
    this.delStmt = db.prepare<[string]>('DELETE FROM favorite_servers WHERE server_id = ?');
  }

  list(): Set<string> {
    return new Set(this.listStmt.all().map((r) => r.server_id));
  }

  add(id: string, now = Date.now()): void {
    this.addStmt.run(id, now);
  }

  remove(id: string): boolean {
    return this.delStmt.run(id).changes > 0;
  }
}
