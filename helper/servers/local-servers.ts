import type { Logger } from '../core/log.js';
import { OnDemandInterval } from '../core/on-demand-interval.js';
import type { AnnouncedServer } from '../gen/lanrage/control/v1/control.js';
import type { Detection } from '../games/detector.js';
import type { GameProfile } from '../games/profile.js';
import type { ListeningPort } from './proc-sockets.js';
import { localProtocol, type QueryFn } from './query.js';

// Game servers on this machine: a detected game process that listens on one of its profile's
// game or query ports is a server (a game client does not listen there). Its status comes from a
// local query (gamedig, on 127.0.0.1) when the profile names a query protocol; a server whose game
// has none is still listed, with the game's name and no player counts.

export const SCAN_INTERVAL_MS = 5000;
/** A server that stops answering queries loses its last status after this many misses in a row. */
export const MISSES_TO_DROP = 2;

export interface LocalServersDeps {
  running(): Detection[];
  profile(id: string): GameProfile | undefined;
  listening(pid: number): Promise<ListeningPort[]>;
  query: QueryFn;
  log: Logger;
  /** The list changed (servers came, went, or their status changed). */
  onChange(servers: AnnouncedServer[]): void;
}

const inRange = (p: number, g: { port: number; last?: number }): boolean => p >= g.port && p <= (g.last ?? g.port);

/** The ports of a process that make it a server of `profile`, and the port to query. Pure. */
export function serverPorts(profile: GameProfile, listening: readonly ListeningPort[]): Array<{ port: number; queryPort: number | undefined }> {
  const out: Array<{ port: number; queryPort: number | undefined }> = [];
  const q = profile.query;
  for (const l of listening) {
    // A port the game's clients broadcast their LAN search to is where a server listens to be found.
    const game = profile.gamePorts.some((g) => g.proto === l.proto && inRange(l.port, g)) || (l.proto === 'udp' && profile.discovery.udpBroadcastPorts.includes(l.port));
    const isQuery = q !== undefined && l.port === q.port;
    if (!game && !isQuery) continue;
    if (out.some((o) => o.port === l.port)) continue;
    // A server moved off its default port answers queries on its game port (Quake III, OpenTTD);
    // otherwise the profile's query port, when the process listens on it.
    const queryPort = q && localProtocol(q.protocol) ? (listening.some((x) => x.port === q.port) && !game ? q.port : l.port) : undefined;
    out.push({ port: l.port, queryPort });
  }
  return out;
}

export class LocalServers {
  private readonly timer = new OnDemandInterval(SCAN_INTERVAL_MS, () => void this.scan());
  private started = false;
  private scanning: Promise<void> | undefined;
  private again = false;
  private current = new Map<string, { server: AnnouncedServer; misses: number }>();
  private lastKey = '[]';

  constructor(private readonly d: LocalServersDeps) {}

  start(): void {
    this.started = true;
    void this.scan();
  }

  stop(): void {
    this.started = false;
    this.timer.set(false);
  }

  /** No periodic scan runs (no game detected here, no server listed). */
  idle(): boolean {
    return !this.timer.running;
  }

  /**
   * The periodic re-scan (a server that opens its port late, its status) only while a game runs
   * here or a server is listed: a server is a detected game's process, and every game start or
   * stop scans at once (ServerBrowser), which starts the timer again.
   */
  private updateTimer(): void {
    this.timer.set(this.started && (this.current.size > 0 || this.d.running().length > 0));
  }

  list(): AnnouncedServer[] {
    return [...this.current.values()].map((x) => x.server).sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Scans now (a game started or stopped); one scan at a time, a request during one runs after it. */
  scan(): Promise<void> {
    if (this.scanning) {
      this.again = true;
      return this.scanning;
    }
    this.scanning = this.scanOnce()
      .catch((err: unknown) => this.d.log.warn('server scan failed', { err: String(err) }))
      .finally(() => {
        this.scanning = undefined;
        this.updateTimer();
        if (this.again) {
          this.again = false;
          void this.scan();
        }
      });
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    const next = new Map<string, { server: AnnouncedServer; misses: number }>();
    const jobs: Array<Promise<void>> = [];
    for (const det of this.d.running()) {
      const profile = this.d.profile(det.profileId);
      if (!profile) continue;
      const ports = serverPorts(profile, await this.d.listening(det.pid));
      for (const { port, queryPort } of ports) {
        const id = `${profile.id}-${port}`;
        const base: AnnouncedServer = {
          id, gameProfileId: profile.id, gameName: profile.name.slice(0, 64), port, name: '', map: '', players: 0, maxPlayers: 0, password: false, steamAppId: profile.steamAppId ?? 0,
        };
        if (queryPort === undefined || !profile.query) {
          next.set(id, { server: base, misses: 0 });
          continue;
        }
        const proto = profile.query.protocol;
        jobs.push(
          this.d.query(proto, '127.0.0.1', queryPort).then(
            (s) => void next.set(id, { server: { ...base, name: s.name, map: s.map, players: s.players, maxPlayers: s.maxPlayers, password: s.password }, misses: 0 }),
            (err: unknown) => {
              // Still a server (it listens on the game's port); a busy one may miss a query: its
              // last status stands for a miss, then only what detection knows.
              const prev = this.current.get(id);
              const misses = (prev?.misses ?? 0) + 1;
              next.set(id, { server: prev && misses < MISSES_TO_DROP ? prev.server : base, misses });
              this.d.log.debug('server query failed', { id, err: String(err) });
            },
          ),
        );
      }
    }
    await Promise.all(jobs);
    this.current = next;
    const list = this.list();
    const key = JSON.stringify(list);
    if (key === this.lastKey) return;
    this.lastKey = key;
    this.d.onChange(list);
  }
}
