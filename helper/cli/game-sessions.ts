import { Metadata } from '@grpc/grpc-js';
import type { GameServiceClient, GameSession, ListGameSessionsRequest, ListGameSessionsResponse } from '../gen/lanrage/v1/games.js';
import { flag, type ParsedArgs } from '../core/args.js';
import { unary } from './call.js';
import { CliError, type CliContext } from './context.js';

// `lanrage games sessions [--game ID] [--limit N]`: the games played here, newest first, with who
// played along and the mean round trip to them.

function durationText(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min ${s % 60} s` : `${s} s`;
}

export function sessionLine(s: GameSession): string {
  const who = s.players.length === 0
    ? 'played alone'
    : 'with ' + s.players.map((p) => `${p.name} (${p.averageRttMs > 0 ? `${p.averageRttMs.toFixed(1)} ms` : 'RTT unknown'}${p.directShare < 1 && p.averageRttMs > 0 ? `, ${Math.round(p.directShare * 100)}% direct` : ''})`).join(', ');
  return `${s.startedAt?.toISOString() ?? '?'}  ${s.gameName}  ${durationText(Number(s.durationSeconds))}  ${who}`;
}

export async function listSessions(client: GameServiceClient, args: ParsedArgs, ctx: CliContext): Promise<void> {
  const limitRaw = flag(args, 'limit') ?? '20';
  const limit = Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new CliError(`--limit must be 1-500, got ${limitRaw}`);
  const req: ListGameSessionsRequest = { pageSize: limit, pageToken: '', profileId: flag(args, 'game') ?? '' };
  const res = await unary<ListGameSessionsRequest, ListGameSessionsResponse>(client, client.listGameSessions, req, new Metadata(), ctx.deadline());
  if (ctx.json) {
    return ctx.out(JSON.stringify({ sessions: res.sessions.map((s) => ({ ...s, startedAt: s.startedAt?.toISOString(), endedAt: s.endedAt?.toISOString() })), nextPageToken: res.nextPageToken }));
  }
  if (res.sessions.length === 0) return ctx.out('no game sessions recorded yet (a session is recorded when a detected game stops)');
  for (const s of res.sessions) ctx.out(sessionLine(s));
}
