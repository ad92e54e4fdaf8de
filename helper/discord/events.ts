// What the Discord notifier tells a channel about. Plain data, produced from the helper's live
// events (party-diff.ts, game-events.ts) and turned into text by format.ts.

export type DiscordEvent =
  | { kind: 'party-created'; party: string; by: string }
  | { kind: 'party-closed'; party: string; by: string }
  | { kind: 'player-joined'; party: string; player: string }
  | { kind: 'player-left'; party: string; player: string; reason: 'left' | 'kicked' | 'timed-out' | 'unknown' }
  | { kind: 'player-lost'; party: string; player: string }
  | { kind: 'player-back'; party: string; player: string }
  | { kind: 'game-started'; player: string; game: string }
  | { kind: 'game-stopped'; player: string; game: string }
  | { kind: 'server-up'; name: string; game: string; address: string; players: number; maxPlayers: number }
  | { kind: 'server-down'; name: string; game: string; address: string }
  | { kind: 'connected'; device: string };

export type DiscordEventKind = DiscordEvent['kind'];
