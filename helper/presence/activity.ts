import type { GameDetection } from '../gen/lanrage/v1/games.js';
import type { Party } from '../gen/lanrage/v1/party.js';

// What the user's Discord profile shows, from the helper's live events. Pure.
//
// The party size is written into the text ("3 players") rather than Discord's party.size
// [current, max] pair: the API has no party capacity to offer (the control server's only limit is
// 256 members), and "3 of 256" tells friends nothing.

export interface Presence {
  /** First line, e.g. "In a LANrage party (3 players)". */
  details: string;
  /** Second line: the game being played, or the party's name. */
  state: string;
  /** When the party (or the game) started, for Discord's elapsed timer. */
  startTimestamp: number;
}

/** Running games on this machine by pid (from gameDetection events), newest last. */
export class RunningGames {
  private readonly byPid = new Map<number, { name: string; since: number }>();

  apply(d: GameDetection, now = Date.now()): boolean {
    const name = (d.gameName || d.profileId).trim();
    if (d.running && name) {
      if (this.byPid.get(d.pid)?.name === name) return false;
      this.byPid.set(d.pid, { name, since: d.detectedAt?.getTime() ?? now });
      return true;
    }
    return this.byPid.delete(d.pid);
  }

  current(): { name: string; since: number } | undefined {
    return [...this.byPid.values()].at(-1);
  }
}

const clip = (s: string, n = 128): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

export function presenceFor(party: Party | undefined, game: { name: string; since: number } | undefined): Presence | null {
  if (!party) return null;
  const n = party.members.length;
  const details = `In a LANrage party (${n} ${n === 1 ? 'player' : 'players'})`;
  const joined = party.members.find((m) => m.isSelf)?.joinedAt?.getTime() ?? party.createdAt?.getTime() ?? 0;
  if (game) return { details, state: clip(`Playing ${game.name}`), startTimestamp: game.since };
  return { details, state: clip(party.name), startTimestamp: joined };
}

export const samePresence = (a: Presence | null, b: Presence | null): boolean =>
  a === b || (a !== null && b !== null && a.details === b.details && a.state === b.state && a.startTimestamp === b.startTimestamp);
