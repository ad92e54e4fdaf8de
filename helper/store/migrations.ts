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
  {
    version: 6,
    name: 'peer metrics history',
    // Per-peer samples in three resolutions (step = 1, 10 or 60 seconds; kept 10 min, 24 h and
    // 30 days), ts = the step's start in unix seconds; and every path change with its reason.
    sql: `CREATE TABLE peer_metrics (
      step        INTEGER NOT NULL,
      device_id   TEXT NOT NULL,
      ts          INTEGER NOT NULL,
      name        TEXT NOT NULL,
      path        INTEGER NOT NULL,
      fast_path   INTEGER NOT NULL,
      rtt         REAL NOT NULL,
      jitter      REAL NOT NULL,
      loss        REAL NOT NULL,
      rx_bps      REAL NOT NULL,
      tx_bps      REAL NOT NULL,
      rx_pps      REAL NOT NULL,
      tx_pps      REAL NOT NULL,
      quality     REAL NOT NULL,
      rx_bytes    INTEGER NOT NULL,
      tx_bytes    INTEGER NOT NULL,
      rx_packets  INTEGER NOT NULL,
      tx_packets  INTEGER NOT NULL,
      PRIMARY KEY (step, device_id, ts)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE path_changes (
      ts_ms       INTEGER NOT NULL,
      device_id   TEXT NOT NULL,
      name        TEXT NOT NULL,
      from_kind   INTEGER NOT NULL,
      to_kind     INTEGER NOT NULL,
      reason      TEXT NOT NULL,
      endpoint    TEXT NOT NULL
    ) STRICT;
    CREATE INDEX path_changes_ts ON path_changes(ts_ms);`,
  },
  {
    version: 7,
    name: 'paired devices',
    // Phones paired for remote access; token_hash = SHA-256 of the bearer token (hex), never the
    // token itself, so a copy of the database grants nothing.
    sql: `CREATE TABLE paired_devices (
      device_id   TEXT PRIMARY KEY,
      name        TEXT NOT NULL,
      scope       TEXT NOT NULL CHECK (scope IN ('view', 'control')),
      token_hash  TEXT NOT NULL UNIQUE,
      created_ms  INTEGER NOT NULL,
      last_seen_ms INTEGER NOT NULL
    ) STRICT;`,
  },
  {
    version: 8,
    name: 'game sessions',
    // One row per game played here (helper/games/sessions.ts); players is the JSON array of who
    // played along with their overlap and mean RTT. Kept 90 days, at most 10000 rows.
    sql: `CREATE TABLE game_sessions (
      id          INTEGER PRIMARY KEY AUTOINCREMENT,
      profile_id  TEXT NOT NULL,
      game_name   TEXT NOT NULL,
      started_ms  INTEGER NOT NULL,
      ended_ms    INTEGER NOT NULL,
      players     TEXT NOT NULL
    ) STRICT;
    CREATE INDEX game_sessions_ended ON game_sessions(ended_ms);`,
  },
];
