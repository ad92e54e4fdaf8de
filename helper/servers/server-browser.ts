import type { Logger } from '../core/log.js';
import { OnDemandInterval } from '../core/on-demand-interval.js';
import { ApiError, Status, invalidArgument } from '../core/api-error.js';
import type { Detection } from '../games/detector.js';
import { activeDiscovery } from '../games/discovery.js';
import type { GameProfile } from '../games/profile.js';
import type { Party } from '../gen/lanrage/v1/party.js';
import type { Peer } from '../gen/lanrage/v1/peer.js';
import {
  ServerBrowserServiceService,
  type AddFavoriteServerRequest,
  type GameServer,
  type ListServersRequest,
  type ListServersResponse,
  type RemoveFavoriteServerRequest,
} from '../gen/lanrage/v1/servers.js';
import type { Handler } from '../api/wrap.js';
import type { FavoritesRepo } from '../store/favorites-repo.js';
import { BROWSER_ID_RE, browse, diffServers, hasServers } from './browser.js';
import { LocalServers } from './local-servers.js';
import { PartyGames, partyTargets, type AnnounceChannel } from './party-games.js';
import { listeningPorts, sameNetns } from './proc-sockets.js';
import { queryServer, type QueryFn } from './query.js';

// The games' party-wide side, wired: games detected here (and broadcast_ports) become ports and
// groups the whole party carries; servers found here are queried and announced; every member's
// announcements feed the LAN relay and the server browser (ListServers, Watch SERVERS).

export const serverBrowserDefinition = ServerBrowserServiceService;
export const serverBrowserMutating = new Set(['addFavoriteServer', 'removeFavoriteServer']);
const PROFILE_FILTER_RE = /^[a-z0-9._-]{0,64}$/;
/** RTTs move: the list is re-checked this often for Watch (only real changes are published). */
const REFRESH_MS = 5000;

export interface ServerBrowserDeps {
  log: Logger;
  games: { detector: { running(): Detection[]; on(e: 'started' | 'stopped', fn: (d: Detection) => void): unknown }; catalog: { get(id: string): GameProfile | undefined } };
  settings(): { broadcastPorts: readonly number[] };
  party(): Party | undefined;
  peers(): Peer[];
  favorites: FavoritesRepo;
  /** Watch SERVERS. */
  publish(e: { server: GameServer; removed: boolean }): void;
  /** The LAN relay: carried targets changed. */
  targetsChanged(): void;
  query?: QueryFn;
  now?: () => number;
  /** Tests: whether a process shares our network namespace (default: /proc). */
  sameNetns?: (pid: number) => boolean;
}

export class ServerBrowser {
  readonly partyGames: PartyGames;
  private readonly local: LocalServers;
  private readonly seen = new Map<string, number>();
  private last: GameServer[] = [];
  private lastTargets = '';
  private readonly timer = new OnDemandInterval(REFRESH_MS, () => this.refresh());
  private started = false;
  private readonly now: () => number;

  constructor(private readonly d: ServerBrowserDeps) {
    this.now = d.now ?? Date.now;
    this.partyGames = new PartyGames({ log: d.log });
    this.local = new LocalServers({
      running: () => this.running(),
      profile: (id) => d.games.catalog.get(id),
      listening: (pid) => listeningPorts(pid),
      query: d.query ?? queryServer,
      log: d.log.child({ part: 'servers' }),
      onChange: () => this.localChanged(),
    });
    this.partyGames.on('changed', () => this.refresh());
    const gameChange = (): void => {
      this.localChanged();
      void this.local.scan();
    };
    d.games.detector.on('started', gameChange);
    d.games.detector.on('stopped', gameChange);
  }

  start(): void {
    this.started = true;
    this.localChanged();
    this.local.start();
    this.refresh();
  }

  stop(): void {
    this.started = false;
    this.timer.set(false);
    this.local.stop();
    this.partyGames.close();
  }

  /** The control client of the party connection (the party manager hands it over). */
  setChannel(c: AnnounceChannel | undefined): void {
    this.partyGames.setChannel(c);
  }

  /** Settings changed: broadcast_ports are announced to the party too. */
  settingsChanged(): void {
    this.localChanged();
  }

  /** For the LAN relay: everything the party's games want carried, with who wants it. */
  targets(): ReturnType<typeof partyTargets> {
    // Names only for announcements (a protobuf Party is built for them): read every 5 s at rest.
    let names: Map<string, string> | undefined;
    const nameOf = (id: string): string => {
      names ??= new Map((this.d.party()?.members ?? []).map((m) => [m.deviceId, m.name]));
      return names.get(id) ?? id.slice(0, 8);
    };
    return partyTargets(this.partyGames.localGames(), this.partyGames.announced(), nameOf);
  }

  list(profileFilter = ''): GameServer[] {
    const localServers = this.local.list();
    const announced = this.partyGames.announced();
    // No server here or announced: the list is empty whatever the party, its peers (a protobuf
    // Peer each) and the favorites (an SQLite query) say, and it is re-checked every 5 s at rest.
    if (!hasServers(localServers, announced)) return [];
    const all = browse({
      party: this.d.party(),
      peers: this.d.peers(),
      localServers,
      announced,
      favorites: this.d.favorites.list(),
      seen: this.seen,
      now: this.now(),
    });
    return profileFilter ? all.filter((s) => s.gameProfileId === profileFilter) : all;
  }

  /** For the start of a Watch stream. */
  snapshotEvents(): Array<{ server: { server: GameServer; removed: boolean } }> {
    return this.list().map((server) => ({ server: { server, removed: false } }));
  }

  handlers(): Record<string, Handler> {
    const checkId = (id: string): string => {
      if (!BROWSER_ID_RE.test(id)) throw invalidArgument('server_id must be a server id from ListServers ("<device id>/<server id>")');
      return id;
    };
    return {
      listServers: (req: ListServersRequest): ListServersResponse => {
        if (!PROFILE_FILTER_RE.test(req.gameProfileId)) throw invalidArgument('game_profile_id must be a game profile id (a-z 0-9 . _ -, at most 64) or empty');
        return { servers: this.list(req.gameProfileId) };
      },
      addFavoriteServer: (req: AddFavoriteServerRequest) => {
        const id = checkId(req.serverId);
        if (!this.list().some((s) => s.id === id)) throw new ApiError(Status.NOT_FOUND, `no server ${id} in the party right now: pick one from ListServers`);
        this.d.favorites.add(id, this.now());
        this.refresh();
        return {};
      },
      removeFavoriteServer: (req: RemoveFavoriteServerRequest) => {
        this.d.favorites.remove(checkId(req.serverId));
        this.refresh();
        return {};
      },
    };
  }

  /**
   * Games running in our network namespace: a game in a container or another namespace cannot
   * broadcast on our LAN nor be reached at our virtual IP, so it is not announced.
   */
  private running(): Detection[] {
    return this.d.games.detector.running().filter((r) => (this.d.sameNetns ?? sameNetns)(r.pid));
  }

  /** What runs here changed: announce it (rate-limited in PartyGames). */
  private localChanged(): void {
    const running = this.running();
    const profiles = running.map((r) => this.d.games.catalog.get(r.profileId)).filter((p): p is GameProfile => p !== undefined);
    const disc = activeDiscovery(running, profiles);
    const reasons = new Map<string, string>();
    const because = (t: string, why: string): void => void reasons.set(t, reasons.has(t) ? `${reasons.get(t)}, ${why}` : why);
    for (const p of profiles) {
      for (const port of p.discovery.udpBroadcastPorts) because(String(port), `${p.name} running here`);
      for (const g of p.discovery.multicastGroups) because(`${g.group}:${g.port}`, `${p.name} running here`);
    }
    const settingsPorts = [...this.d.settings().broadcastPorts];
    for (const port of settingsPorts) because(String(port), 'broadcast_ports here');
    this.partyGames.setLocal({
      udpPorts: [...new Set([...disc.udpPorts, ...settingsPorts])],
      groups: disc.groups.map((g) => `${g.group}:${g.port}`),
      servers: this.local.list(),
      // Who plays what (game sessions at the other members): the games in our namespace, as above.
      games: running.map((r) => r.profileId),
      reasons,
    });
  }

  /** No timer runs: no server here or announced, no game detected here. */
  idle(): boolean {
    return !this.timer.running && this.local.idle();
  }

  /**
   * The 5 s re-list (servers' ages, members' RTTs) only while a server exists here or in the
   * announcements: without one the list is empty, and what the LAN targets depend on (local
   * games, announcements, settings) calls refresh() itself when it changes.
   */
  private updateTimer(needed: boolean): void {
    this.timer.set(needed && this.started);
  }

  private refresh(): void {
    this.updateTimer(hasServers(this.local.list(), this.partyGames.announced()));
    const t = this.targets();
    const tk = JSON.stringify(t);
    if (tk !== this.lastTargets) {
      this.lastTargets = tk;
      this.d.targetsChanged();
    }
    const next = this.list();
    const changes = diffServers(this.last, next);
    if (changes.length === 0) return;
    const now = this.now();
    for (const c of changes) {
      if (c.removed) this.seen.delete(c.server.id);
      else this.seen.set(c.server.id, now);
    }
    this.last = this.list();
    const byId = new Map(this.last.map((x) => [x.id, x]));
    for (const c of changes) this.d.publish(c.removed ? c : { server: byId.get(c.server.id) ?? c.server, removed: false });
  }
}
