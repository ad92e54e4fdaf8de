// The party's server browser: its RPCs, a small store fed by ListServers and by the Watch topic
// SERVERS (live.ts), and the pure list logic the view renders (filter, sort, favourites first).
import {
  AddFavoriteServerRequest,
  ListServersRequest,
  RemoveFavoriteServerRequest,
  ServerBrowserServiceDefinition,
  type GameServer,
} from '../gen/lanrage/v1/servers.js';
import type { ServerChanged } from '../gen/lanrage/v1/watch.js';
import { unary } from '../api/transport.js';

export type { GameServer };
export type ServerSort = 'ping' | 'name' | 'players';

type Listener = (servers: readonly GameServer[]) => void;

class ServersStore {
  private byId = new Map<string, GameServer>();
  private readonly listeners = new Set<Listener>();

  get list(): GameServer[] {
    return [...this.byId.values()];
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    l(this.list);
    return () => this.listeners.delete(l);
  }

  replace(servers: readonly GameServer[]): void {
    this.byId = new Map(servers.map((s) => [s.id, s]));
    this.emit();
  }

  apply(c: ServerChanged): void {
    if (!c.server) return;
    if (c.removed) this.byId.delete(c.server.id);
    else this.byId.set(c.server.id, c.server);
    this.emit();
  }

  private emit(): void {
    const l = this.list;
    for (const f of this.listeners) f(l);
  }
}

export const serversStore = new ServersStore();

export async function refreshServers(): Promise<GameServer[]> {
  const res = await unary(ServerBrowserServiceDefinition, ServerBrowserServiceDefinition.methods.listServers, ListServersRequest.fromPartial({}));
  serversStore.replace(res.servers);
  return res.servers;
}

export async function setFavorite(id: string, favorite: boolean): Promise<void> {
  if (favorite) await unary(ServerBrowserServiceDefinition, ServerBrowserServiceDefinition.methods.addFavoriteServer, AddFavoriteServerRequest.fromPartial({ serverId: id }), { auth: true });
  else await unary(ServerBrowserServiceDefinition, ServerBrowserServiceDefinition.methods.removeFavoriteServer, RemoveFavoriteServerRequest.fromPartial({ serverId: id }), { auth: true });
  await refreshServers();
}

/** Servers matching `filter` (name, game, map, host, address), favourites first, then by `sort`. Pure. */
export function visibleServers(all: readonly GameServer[], filter: string, sort: ServerSort): GameServer[] {
  const f = filter.trim().toLowerCase();
  const hit = (s: GameServer): boolean => !f || [s.name, s.gameName, s.map, s.hostName, s.address].some((x) => x.toLowerCase().includes(f));
  // A local server has no path to measure: it sorts first by ping.
  const ping = (s: GameServer): number => (s.local ? -1 : s.rttMs > 0 ? s.rttMs : Number.POSITIVE_INFINITY);
  const by: Record<ServerSort, (a: GameServer, b: GameServer) => number> = {
    ping: (a, b) => ping(a) - ping(b),
    name: (a, b) => a.name.localeCompare(b.name),
    players: (a, b) => b.players - a.players,
  };
  return all.filter(hit).sort((a, b) => Number(b.favorite) - Number(a.favorite) || by[sort](a, b) || a.id.localeCompare(b.id));
}

export function pingLabel(s: GameServer): string {
  if (s.local) return 'this machine';
  return s.rttMs > 0 ? `${s.rttMs.toFixed(s.rttMs < 10 ? 1 : 0)} ms` : '—';
}

export function playersLabel(s: GameServer): string {
  return s.maxPlayers > 0 ? `${s.players}/${s.maxPlayers}` : s.players > 0 ? String(s.players) : '—';
}
