// Numbered schema migrations. Append only: a released migration is never edited, because
// existing installs have already run it (PRAGMA user_version records how far each got).
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const HELPER_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'settings',
    sql: `CREATE TABLE settings (
      key   TEXT PRIMARY KEY,
      value TEXT NOT NULL
    ) STRICT;`,
  },
  {
    version: 2,
    name: 'metrics history',
    // One row per step (10 s) of averaged samples; ts is the step start in unix seconds.
    sql: `CREATE TABLE metrics_history (
      ts          INTEGER PRIMARY KEY,
      cpu         REAL NOT NULL,
      mem_used    INTEGER NOT NULL,
      mem_total   INTEGER NOT NULL,
      rx          REAL NOT NULL,
      tx          REAL NOT NULL,
      helper_cpu  REAL NOT NULL,
      helper_rss  INTEGER NOT NULL
    ) STRICT;`,
  },
  {
    version: 3,
    name: 'helper state',
    // Small named records the helper must find again after a restart (e.g. the party it is in).
    sql: `CREATE TABLE state (
      key   TEXT PRIMARY KEY,
      value TEXT NOT NULL
    ) STRICT;`,
  },
  {
    version: 4,
    name: 'custom game profiles',
    // The profile as the JSON of helper/games/profile.ts, checked again when read back.
    sql: `CREATE TABLE custom_game_profiles (
      id          TEXT PRIMARY KEY,
      profile     TEXT NOT NULL,
      created_at  INTEGER NOT NULL
    ) STRICT;`,
  },
  {
    version: 5,
    name: 'favourite servers',
    // server_id is the browser's "<host device id>/<server id>"; kept while the server is away.
    sql: `CREATE TABLE favorite_servers (
      server_id  TEXT PRIMARY KEY,
      added_at   INTEGER NOT NULL
    ) STRICT;`,
  },
];
