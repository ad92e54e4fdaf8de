import {
  ServerBrowserServiceClient,
  type AddFavoriteServerRequest,
  type GameServer,
  type ListServersRequest,
  type ListServersResponse,
  type RemoveFavoriteServerRequest,
} from '../gen/lanrage/v1/servers.js';
import { serviceCommand } from './call.js';
import { CliError } from './context.js';

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

export const serversCommand = serviceCommand({
  name: 'servers',
  usage: 'servers [GAME_PROFILE_ID] | servers fav|unfav SERVER_ID',
  summary: "list the party's game servers (address to connect to, players, ping); mark favourites",
  service: ServerBrowserServiceClient,
  async run(c, call, args, ctx) {
    const [, first, second] = args.positional;
    if (first === 'fav' || first === 'unfav') {
      if (!second) throw new CliError(`usage: lanrage servers ${first} SERVER_ID (the id in brackets in \`lanrage servers\`)`);
      if (first === 'fav') await call.write<AddFavoriteServerRequest, object>(c.addFavoriteServer, { serverId: second });
      else await call.write<RemoveFavoriteServerRequest, object>(c.removeFavoriteServer, { serverId: second });
      ctx.out(ctx.json ? JSON.stringify({ ok: true }) : `${first === 'fav' ? 'added to' : 'removed from'} favourites: ${second}`);
      return;
    }
    const res = await call.read<ListServersRequest, ListServersResponse>(c.listServers, { gameProfileId: first ?? '' });
    if (ctx.json) ctx.out(JSON.stringify({ servers: res.servers }));
    else for (const l of formatServers(res.servers)) ctx.out(l);
  },
});
