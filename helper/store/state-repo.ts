import type { Db } from './db.js';

// JSON records by name, for state that is not a setting (the party to resume, for one).
export class StateRepo {
  private readonly getStmt;
  private readonly putStmt;
  private readonly delStmt;

  constructor(db: Db) {
    this.getStmt = db.prepare<[string], { value: string }>('SELECT value FROM state WHERE key = ?');
    this.putStmt = db.prepare<[string, string]>('INSERT INTO state(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
    this.delStmt = db.prepare<[string]>('DELETE FROM state WHERE key = ?');
  }

  get<T>(key: string, check: (v: unknown) => v is T): T | undefined {
    const row = this.getStmt.get(key);
    if (!row) return undefined;
    try {
      const v: unknown = JSON.parse(row.value);
      return check(v) ? v : undefined;
    } catch {
      return undefined;
    }
  }

  put(key: string, value: unknown): void {
    this.putStmt.run(key, JSON.stringify(value));
  }

  delete(key: string): void {
    this.delStmt.run(key);
  }
}
