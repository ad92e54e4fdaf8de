import { ApiError, Status, invalidArgument } from '../core/api-error.js';
import type { AnnouncedServer, Announcement, MemberAnnouncement } from '../gen/lanrage/control/v1/control.js';

// What members tell their party about the games on their machines (discovery ports and groups to
// carry party-wide, the servers they host): the rules, one book per control server (instances on
// one database keep theirs in step through the bus: control-plane.ts), and a budget per device. Pure and in memory on purpose: an announcement describes processes running now, so
// it must not outlive the control server's view of the member (a restart makes every helper
// announce again when its Session comes back).
//
// The same checks run in the helper on what it sends and on what the control server hands it.

export const MAX_ANNOUNCED_PORTS = 64;
export const MAX_ANNOUNCED_GROUPS = 16;
export const MAX_ANNOUNCED_SERVERS = 32;
export const MAX_SERVER_PLAYERS = 1024;
export const MAX_ANNOUNCED_GAMES = 16;
const ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;
const PROFILE_RE = /^[a-z0-9._-]{1,64}$/;
// Printable text without control characters (C0, DEL, C1) or unpaired surrogates.
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const GROUP_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3}):(\d{1,5})$/;

/** Announcement burst and steady rate per device (a game starting and stopping, servers' player counts). */
export const ANNOUNCE_BURST = 20;
export const ANNOUNCE_PER_SECOND = 1;

function checkText(what: string, s: string, min: number, max: number): string {
  if (typeof s !== 'string' || s.length < min || [...s].length > max || CONTROL_RE.test(s) || LONE_SURROGATE_RE.test(s)) {
    throw invalidArgument(`${what} must be ${min}-${max} characters without control characters`);
  }
  return s;
}

function checkUint(what: string, n: number, min: number, max: number): number {
  if (!Number.isInteger(n) || n < min || n > max) throw invalidArgument(`${what} must be ${min}-${max}, got ${n}`);
  return n;
}

/** "224.0.2.60:4445": a multicast group (224.0.0.0/4) and a port; normalised (no leading zeros). */
export function checkGroup(what: string, s: string): string {
  const m = GROUP_RE.exec(s);
  const o = m ? m.slice(1, 5).map(Number) : [];
  const port = m ? Number(m[5]) : 0;
  if (!m || o.some((x) => x > 255) || o[0]! < 224 || o[0]! > 239 || port < 1 || port > 65535) {
    throw invalidArgument(`${what} must be "multicast-group:port" with a group in 224.0.0.0/4, got ${JSON.stringify(s.slice(0, 40))}`);
  }
  return `${o.join('.')}:${port}`;
}

export function checkServer(i: number, s: AnnouncedServer): AnnouncedServer {
  const at = `servers[${i}]`;
  if (!ID_RE.test(s.id)) throw invalidArgument(`${at}.id must be 1-64 characters A-Z a-z 0-9 . _ : -`);
  if (!PROFILE_RE.test(s.gameProfileId)) throw invalidArgument(`${at}.game_profile_id must be 1-64 characters a-z 0-9 . _ -`);
  const players = checkUint(`${at}.players`, s.players, 0, MAX_SERVER_PLAYERS);
  const maxPlayers = checkUint(`${at}.max_players`, s.maxPlayers, 0, MAX_SERVER_PLAYERS);
  if (maxPlayers > 0 && players > maxPlayers) throw invalidArgument(`${at}.players (${players}) is more than max_players (${maxPlayers})`);
  return {
    id: s.id,
    gameProfileId: s.gameProfileId,
    gameName: checkText(`${at}.game_name`, s.gameName, 1, 64),
    port: checkUint(`${at}.port`, s.port, 1, 65535),
    name: checkText(`${at}.name`, s.name, 0, 128),
    map: checkText(`${at}.map`, s.map, 0, 64),
    players,
    maxPlayers,
    password: s.password === true,
    steamAppId: checkUint(`${at}.steam_app_id`, s.steamAppId, 0, 0xffffffff),
  };
}

/** Checks and normalises an announcement (sorted, without duplicates). Throws INVALID_ARGUMENT. */
export function checkAnnouncement(a: Announcement | undefined): Announcement {
  if (!a) return { udpPorts: [], multicastGroups: [], servers: [], gameProfileIds: [] };
  if (a.udpPorts.length > MAX_ANNOUNCED_PORTS) throw invalidArgument(`at most ${MAX_ANNOUNCED_PORTS} udp_ports, got ${a.udpPorts.length}`);
  if (a.multicastGroups.length > MAX_ANNOUNCED_GROUPS) throw invalidArgument(`at most ${MAX_ANNOUNCED_GROUPS} multicast_groups, got ${a.multicastGroups.length}`);
  if (a.servers.length > MAX_ANNOUNCED_SERVERS) throw invalidArgument(`at most ${MAX_ANNOUNCED_SERVERS} servers, got ${a.servers.length}`);
  const gameIds = a.gameProfileIds ?? [];
  if (gameIds.length > MAX_ANNOUNCED_GAMES) throw invalidArgument(`at most ${MAX_ANNOUNCED_GAMES} game_profile_ids, got ${gameIds.length}`);
  for (const [i, g] of gameIds.entries()) if (!PROFILE_RE.test(g)) throw invalidArgument(`game_profile_ids[${i}] must be 1-64 characters a-z 0-9 . _ -`);
  const ports = [...new Set(a.udpPorts.map((p, i) => checkUint(`udp_ports[${i}]`, p, 1, 65535)))].sort((x, y) => x - y);
  const groups = [...new Set(a.multicastGroups.map((g, i) => checkGroup(`multicast_groups[${i}]`, g)))].sort();
  const servers = a.servers.map((s, i) => checkServer(i, s));
  const ids = new Set<string>();
  for (const s of servers) {
    if (ids.has(s.id)) throw invalidArgument(`server id ${JSON.stringify(s.id)} appears twice`);
    ids.add(s.id);
  }
  servers.sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  return { udpPorts: ports, multicastGroups: groups, servers, gameProfileIds: [...new Set(gameIds)].sort() };
}

/** Nothing announced: the member's entry goes away. */
export function isEmptyAnnouncement(a: Announcement): boolean {
  return a.udpPorts.length + a.multicastGroups.length + a.servers.length + (a.gameProfileIds?.length ?? 0) === 0;
}

const same = (a: Announcement, b: Announcement): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Announcements of every device, with a token bucket per device. */
export class AnnouncementBook {
  private readonly byDevice = new Map<string, Announcement>();
  private readonly budget = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly now: () => number) {}

  /**
   * Records a checked announcement; true when it differs from the last one (the party must be
   * told). Throws RESOURCE_EXHAUSTED past the budget, before anything is stored.
   */
  set(deviceId: string, a: Announcement): boolean {
    this.spend(deviceId);
    const old = this.byDevice.get(deviceId);
    const empty = isEmptyAnnouncement(a);
    if (empty) this.byDevice.delete(deviceId);
    else this.byDevice.set(deviceId, a);
    return old ? !same(old, a) : !empty;
  }

  /**
   * What another control instance on the same database accepted (it checked and budgeted it):
   * kept so that snapshots built here carry it too.
   */
  record(deviceId: string, a: Announcement): void {
    if (isEmptyAnnouncement(a)) this.byDevice.delete(deviceId);
    else this.byDevice.set(deviceId, a);
  }

  /** The member left or was dropped: what it announced goes with it. */
  forget(deviceId: string): boolean {
    this.budget.delete(deviceId);
    return this.byDevice.delete(deviceId);
  }

  get(deviceId: string): Announcement | undefined {
    return this.byDevice.get(deviceId);
  }

  /** For a snapshot: the announcements of these devices. */
  of(deviceIds: readonly string[]): MemberAnnouncement[] {
    const out: MemberAnnouncement[] = [];
    for (const id of deviceIds) {
      const a = this.byDevice.get(id);
      if (a) out.push({ deviceId: id, announcement: a });
    }
    return out;
  }

  private spend(deviceId: string): void {
    const now = this.now();
    const b = this.budget.get(deviceId) ?? { tokens: ANNOUNCE_BURST, at: now };
    b.tokens = Math.min(ANNOUNCE_BURST, b.tokens + ((now - b.at) / 1000) * ANNOUNCE_PER_SECOND);
    b.at = now;
    if (b.tokens < 1) throw new ApiError(Status.RESOURCE_EXHAUSTED, `too many announcements: at most ${ANNOUNCE_PER_SECOND} per second after a burst of ${ANNOUNCE_BURST}; send only changes`);
    b.tokens -= 1;
    this.budget.set(deviceId, b);
  }
}
