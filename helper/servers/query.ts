import { GameDig, games } from 'gamedig';

// Asks a game server on this machine for its status with gamedig (maintained, MIT; 357 games over
// 78 protocols). Only protocols that ask the server itself: some gamedig protocols read an
// internet master list or a vendor's web service instead, which on a LAN is useless and would
// make the helper contact an address nobody configured.

export interface ServerStatus {
  name: string;
  map: string;
  players: number;
  maxPlayers: number;
  password: boolean;
  /** Query round trip on this machine, ms. */
  pingMs: number;
}

/** Protocols that never ask the server itself (master lists, HTTPS services, voice servers). */
const NOT_LOCAL = /master|^minetest$|^discord$|^epic$|^eco$|^palworld$|^satisfactory$|^hytale$|^teamspeak|^ventrilo$|^mumble/;

/** The gamedig protocol of a gamedig game id, or undefined when unknown or not a local query. */
export function localProtocol(gameId: string): string | undefined {
  const g = Object.hasOwn(games, gameId) ? games[gameId] : undefined;
  const p = g?.options.protocol;
  return p && !NOT_LOCAL.test(p) ? p : undefined;
}

// Protocols hand numbers over as they came (quake2/3: sv_maxclients is the rule's string).
const clamp = (v: unknown, max: number): number => {
  const n = typeof v === 'string' && /^\d{1,7}$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) ? Math.max(0, Math.min(max, Math.floor(n))) : 0;
};
// Servers name themselves with colour codes and any bytes; keep printable text, bounded.
// eslint-disable-next-line no-control-regex
const text = (s: unknown, max: number): string => [...(typeof s === 'string' ? s : '').replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '')].slice(0, max).join('').trim();

export type QueryFn = (gameId: string, host: string, port: number) => Promise<ServerStatus>;

/** One query, at most ~2 s. Rejects when the server does not answer or the game is not queryable. */
export const queryServer: QueryFn = async (gameId, host, port) => {
  if (!localProtocol(gameId)) throw new Error(`game type ${JSON.stringify(gameId)} has no local query protocol in gamedig`);
  const r = await GameDig.query({ type: gameId, host, port, givenPortOnly: true, maxRetries: 1, socketTimeout: 1000, attemptTimeout: 2000 });
  const maxPlayers = clamp(r.maxplayers, 1024);
  let players = clamp(r.numplayers ?? r.players?.length, 1024);
  if (maxPlayers > 0 && players > maxPlayers) players = maxPlayers;
  return { name: text(r.name, 128), map: text(r.map, 64), players, maxPlayers, password: r.password === true, pingMs: clamp(r.ping, 60_000) };
};
