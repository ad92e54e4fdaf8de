import { Metadata } from '@grpc/grpc-js';
import {
  ServerBrowserServiceClient,
  type AddFavoriteServerRequest,
  type GameServer,
  type ListServersRequest,
  type ListServersResponse,
  type RemoveFavoriteServerRequest,
} from '../gen/lanrage/v1/servers.js';
import { unary, withClient } from './call.js';
import { CliError } from './context.js';
import type { Command } from './commands.js';

/** One line per server, favourites first, then by ping. Pure. */
export function formatServers(servers: readonly GameServer[]): string[] {
  if (servers.length === 0) return ['no game servers in the party right now (servers are found on each player\'s machine while the game runs)'];
  const sorted = [...servers].sort((a, b) => Number(b.favorite) - Number(a.favorite) || a.rttMs - b.rttMs || a.name.localeCompare(b.name));
  return sorted.map((s) => {
    const players = s.maxPlayers > 0 ? `${s.players}/${s.maxPlayers}` : '?';
    const ping = s.local ? 'here' : s.rttMs > 0 ? `${s.rttMs.toFixed(0)} ms` : '? ms';
    const flags = `${s.favorite ? '★ ' : ''}${s.password ? '🔒 ' : ''}`;
    return `${flags}${s.address.padEnd(20)} ${s.gameName} — "${s.name}"${s.map ? ` on ${s.map}` : ''}  ${players} players  ${ping}  host ${s.hostName}  [${s.id}]${s.connectUrl ? `  ${s.connectUrl}` : ''}`;
  });
}

export const serversCommand: Command = {
  name: 'servers',
  usage: 'servers [GAME_PROFILE_ID] | servers fav|unfav SERVER_ID',
  summary: "list the party's game servers (address to connect to, players, ping); mark favourites",
  async run(args, ctx) {
    const [, first, second] = args.positional;
    await withClient(ServerBrowserServiceClient, ctx, async (c) => {
      if (first === 'fav' || first === 'unfav') {
        if (!second) throw new CliError(`usage: lanrage servers ${first} SERVER_ID (the id in brackets in \`lanrage servers\`)`);
        if (first === 'fav') await unary<AddFavoriteServerRequest, object>(c, c.addFavoriteServer, { serverId: second }, ctx.authMetadata(), ctx.deadline());
        else await unary<RemoveFavoriteServerRequest, object>(c, c.removeFavoriteServer, { serverId: second }, ctx.authMetadata(), ctx.deadline());
        ctx.out(ctx.json ? JSON.stringify({ ok: true }) : `${first === 'fav' ? 'added to' : 'removed from'} favourites: ${second}`);
        return;
      }
      const res = await unary<ListServersRequest, ListServersResponse>(c, c.listServers, { gameProfileId: first ?? '' }, new Metadata(), ctx.deadline());
      if (ctx.json) ctx.out(JSON.stringify({ servers: res.servers }));
      else for (const l of formatServers(res.servers)) ctx.out(l);
    });
  },
};
