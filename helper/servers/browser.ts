import type { AnnouncedServer, Announcement } from '../gen/lanrage/control/v1/control.js';
import { MemberPresence, type Party } from '../gen/lanrage/v1/party.js';
import type { Peer } from '../gen/lanrage/v1/peer.js';
import type { GameServer } from '../gen/lanrage/v1/servers.js';

// The party's server browser as a pure function: this machine's servers and the ones every other
// member announced, addressed at the host's virtual IP, with the RTT to the host over the path in
// use now. A member that is away or gone takes its servers with it.

export interface BrowserInput {
  party: Party | undefined;
  peers: readonly Peer[];
  localServers: readonly AnnouncedServer[];
  announced: ReadonlyMap<string, Announcement>;
  favorites: ReadonlySet<string>;
  /** When each entry's data last changed (ms), by browser id. */
  seen: ReadonlyMap<string, number>;
  now: number;
}

/** "<host device id>/<server id>": unique across the party, stable while the server runs. */
export const browserId = (deviceId: string, serverId: string): string => `${deviceId}/${serverId}`;
export const BROWSER_ID_RE = /^[a-z2-7]{24}\/[A-Za-z0-9._:-]{1,64}$/;

function entry(s: AnnouncedServer, host: { deviceId: string; name: string; virtualIp: string }, rttMs: number, local: boolean, i: BrowserInput): GameServer {
  const id = browserId(host.deviceId, s.id);
  const address = `${host.virtualIp}:${s.port}`;
  return {
    id,
    name: s.name || s.gameName,
    gameProfileId: s.gameProfileId,
    hostDeviceId: host.deviceId,
    address,
    players: s.players,
    maxPlayers: s.maxPlayers,
    map: s.map,
    rttMs: Math.round(rttMs * 10) / 10,
    favorite: i.favorites.has(id),
    lastSeen: new Date(i.seen.get(id) ?? i.now),
    hostName: host.name,
    gameName: s.gameName,
    password: s.password,
    connectUrl: s.steamAppId > 0 ? `steam://connect/${address}` : '',
    local,
  };
}

/** Whether browse() can list anything: servers here or announced by a member. */
export function hasServers(localServers: readonly unknown[], announced: BrowserInput['announced']): boolean {
  if (localServers.length > 0) return true;
  for (const a of announced.values()) if (a.servers.length > 0) return true;
  return false;
}

export function browse(i: BrowserInput): GameServer[] {
  const p = i.party;
  if (!p) return [];
  const out: GameServer[] = [];
  const rtt = new Map(i.peers.map((x) => [x.deviceId, x.rttMs]));
  for (const m of p.members) {
    if (m.isSelf) {
      for (const s of i.localServers) out.push(entry(s, m, 0, true, i));
      continue;
    }
    if (m.presence === MemberPresence.MEMBER_PRESENCE_AWAY) continue;
    for (const s of i.announced.get(m.deviceId)?.servers ?? []) out.push(entry(s, m, rtt.get(m.deviceId) ?? 0, false, i));
  }
  return out.sort((a, b) => a.gameName.localeCompare(b.gameName) || a.hostName.localeCompare(b.hostName) || a.id.localeCompare(b.id));
}

/** What a Watch subscriber must be told between two lists: changed or new entries, and removals. */
export function diffServers(before: readonly GameServer[], after: readonly GameServer[]): Array<{ server: GameServer; removed: boolean }> {
  // RTT moves with every ping: only a change of 5 ms or more is news.
  const key = (s: GameServer): string => JSON.stringify({ ...s, lastSeen: undefined, rttMs: Math.round(s.rttMs / 5) });
  const old = new Map(before.map((s) => [s.id, key(s)]));
  const now = new Set(after.map((s) => s.id));
  const out: Array<{ server: GameServer; removed: boolean }> = [];
  for (const s of after) if (old.get(s.id) !== key(s)) out.push({ server: s, removed: false });
  for (const s of before) if (!now.has(s.id)) out.push({ server: s, removed: true });
  return out;
}
