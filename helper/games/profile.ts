// Game profiles: what a game does on a LAN, as data. Shared with the gamesb branch (party-wide
// discovery, server browser): these names are a contract. Add fields; never rename or remove.
//
// - discovery: where the game looks for other players on a LAN. udpBroadcastPorts are the
//   destination ports of its broadcasts (255.255.255.255 / subnet broadcast); multicastGroups the
//   groups it sends to. These are what the LAN carriage must capture while the game runs.
// - gamePorts: where a server listens (what a player connects to). Informational for the UI and
//   the server browser; `last` makes a range [port, last].
// - query: how the server browser asks a server for its status: `protocol` is a gamedig game type
//   id (gamedig 5 `lib/games.js`, e.g. "teeworlds", "q3a"...), `port` the port the query goes to.
// - executables: names that identify the running game. windows: the .exe names (Windows and, by
//   default, Wine/Proton); linux: native binary names (basename of /proc/PID/exe or argv[0]);
//   wine: .exe names seen in argv[0] of a Wine/Proton process (defaults to windows when the data
//   file leaves it out). cmdlineContains: when set, a process matching these names belongs to
//   this profile only if its command line contains one of the strings (an engine binary shared
//   by several games, e.g. ioq3ded runs both Quake III and OpenArena); such a match wins over a
//   plain name match.
// - sources: where the discovery facts come from. 'source' = the game's source code, 'docs' =
//   official documentation, 'measurement' = observed here (sockets of the running server).

export type TransportProto = 'udp' | 'tcp';
// 'user': a custom profile's facts come from the person who entered them (never in the data file).
export type SourceKind = 'source' | 'docs' | 'measurement' | 'user';

export interface MulticastGroup {
  group: string;
  port: number;
}

export interface GamePort {
  port: number;
  /** Inclusive end of a range; absent for a single port. */
  last?: number;
  proto: TransportProto;
}

export interface GameQuery {
  /** gamedig game type id. */
  protocol: string;
  port: number;
}

export interface GameExecutables {
  windows: string[];
  linux: string[];
  wine: string[];
  cmdlineContains?: string[];
}

export interface SourceRef {
  kind: SourceKind;
  /** URL, repository path, or a description of the measurement. */
  ref: string;
}

export interface GameProfile {
  /** Lower-case slug, [a-z0-9][a-z0-9-]*. Custom profiles start with "custom-". */
  id: string;
  name: string;
  discovery: {
    udpBroadcastPorts: number[];
    multicastGroups: MulticastGroup[];
  };
  gamePorts: GamePort[];
  query?: GameQuery;
  executables: GameExecutables;
  steamAppId?: number;
  sources: SourceRef[];
  /** True for a profile a user created (stored in SQLite), false for the built-in data file. */
  custom: boolean;
}

/** Limits that keep a hostile custom profile (or a broken data file) from costing anything. */
export const PROFILE_LIMITS = {
  idMax: 64,
  nameMax: 80,
  listMax: 32,
  exeNameMax: 128,
  refMax: 400,
  /** Ports in all gamePorts ranges together. */
  portsInRangesMax: 1024,
} as const;
