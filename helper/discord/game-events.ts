import type { GameDetection } from '../gen/lanrage/v1/games.js';
import type { GameServer } from '../gen/lanrage/v1/servers.js';
import type { DiscordEvent } from './events.js';

// Game and server news from the helper's live events. Game detection publishes `gameDetection`
// (running true, then false when the game exits) and the server browser publishes `server`
// (removed when it stops answering); both flow through the same hub as party events, so the
// notifier needs no other wiring once those features publish them.
//
// Who posts: a helper announces only its own player's games and the servers its own machine
// hosts (host_device_id = ours), so several members sharing a channel do not repeat each other.

export function gameEvent(d: GameDetection, player: string, wasRunning: boolean): DiscordEvent | undefined {
  const game = d.gameName || d.profileId;
  if (!game) return undefined;
  if (d.running && !wasRunning) return { kind: 'game-started', player, game };
  if (!d.running && wasRunning) return { kind: 'game-stopped', player, game };
  return undefined;
}

export function serverEvent(s: GameServer, removed: boolean, known: boolean, gameName: (profileId: string) => string): DiscordEvent | undefined {
  const game = gameName(s.gameProfileId) || s.gameProfileId || 'game';
  const name = s.name || s.address;
  if (removed) return known ? { kind: 'server-down', name, game, address: s.address } : undefined;
  if (known) return undefined;
  return { kind: 'server-up', name, game, address: s.address, players: s.players, maxPlayers: s.maxPlayers };
}
