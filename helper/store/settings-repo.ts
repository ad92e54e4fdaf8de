import type { Settings } from '../gen/lanrage/v1/settings.js';
import { defaultSettings, validateSettings, SETTINGS_FIELDS } from '../core/settings.js';
import type { Db } from './db.js';

// Settings as one row per field (JSON values), so adding a field later needs no migration:
// a missing row means the default.
export class SettingsRepo {
  private readonly getAll;
  private readonly upsert;

  constructor(private readonly db: Db, private readonly defaults: Settings = defaultSettings()) {
    this.getAll = db.prepare<[], { key: string; value: string }>('SELECT key, value FROM settings');
    this.upsert = db.prepare<[string, string]>('INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
  }

  load(): Settings {
    const s: Settings = { ...this.defaults, broadcastPorts: [...this.defaults.broadcastPorts] };
    const rec = s as unknown as Record<string, unknown>;
    for (const row of this.getAll.all()) {
      if (!SETTINGS_FIELDS.includes(row.key as keyof Settings)) continue;
      const value: unknown = JSON.parse(row.value);
      if (typeof value === typeof rec[row.key] || (Array.isArray(value) && Array.isArray(rec[row.key]))) rec[row.key] = value;
    }
    // A row edited by hand into an invalid value must not take the helper down: fall back.
    return validateSettings(s).length === 0 ? s : this.defaults;
  }

  save(s: Settings): void {
    const errors = validateSettings(s);
    if (errors.length > 0) throw new Error(`refusing to store invalid settings: ${errors.join('; ')}`);
    this.db.transaction(() => {
      for (const f of SETTINGS_FIELDS) this.upsert.run(f, JSON.stringify(s[f]));
    })();
  }
}
