import { EventEmitter } from 'node:events';
import type { Logger } from '../core/log.js';
import { Status } from '../core/api-error.js';
import type { AnnouncedServer, Announcement, MemberAnnouncement } from '../gen/lanrage/control/v1/control.js';
import { checkAnnouncement, isEmptyAnnouncement, MAX_ANNOUNCED_GAMES, MAX_ANNOUNCED_GROUPS, MAX_ANNOUNCED_PORTS } from '../control/announcements.js';

// The party-wide picture of games: what this helper announces (discovery ports and groups of the
// games running here and of the user's broadcast_ports, the servers it hosts) and what every
// member announced. Sends only changes, at most one announcement per ANNOUNCE_GAP_MS (the last
// one wins), and again whenever a snapshot shows the control server lost ours (reconnect, new
// control server, joining a party).

export const ANNOUNCE_GAP_MS = 1000;

/** What the control client offers this module (narrow, so tests can drive it). */
export interface AnnounceChannel {
  readonly deviceId: string;
  announce(a: Announcement): Promise<void>;
  party(): { members: Array<{ deviceId: string }> } | null;
  on(event: 'announcements', fn: (list: MemberAnnouncement[], replace: boolean) => void): unknown;
  on(event: 'memberLeft', fn: (left: { deviceId: string }) => void): unknown;
  on(event: 'snapshot', fn: (party: unknown) => void): unknown;
  off(event: string, fn: (...args: never[]) => void): unknown;
}

export interface CarriedTarget {
  /** "8303" (a broadcast port) or "224.0.2.60:4445" (a multicast group). */
  target: string;
  /** Who wants it carried, for a person: "Teeworlds at alice", "broadcast_ports at bob". */
  why: string;
}

export interface PartyGamesEvents {
  /** Ports, groups or servers of some member changed. */
  changed: [];
}

export interface LocalGames {
  udpPorts: number[];
  groups: string[];
  servers: AnnouncedServer[];
  /** Game profile ids running here (who plays what: game sessions at the other members). */
  games?: string[];
  /** Why each port or group is wanted here (for the UI). */
  reasons: Map<string, string>;
}

const EMPTY: Announcement = { udpPorts: [], multicastGroups: [], servers: [], gameProfileIds: [] };
const key = (a: Announcement): string => JSON.stringify(a);

/** Fits the local wish into the announcement limits (ports and groups beyond them stay local). */
export function toAnnouncement(l: Pick<LocalGames, 'udpPorts' | 'groups' | 'servers' | 'games'>): Announcement {
  return checkAnnouncement({
    udpPorts: [...new Set(l.udpPorts)].sort((a, b) => a - b).slice(0, MAX_ANNOUNCED_PORTS),
    multicastGroups: [...new Set(l.groups)].sort().slice(0, MAX_ANNOUNCED_GROUPS),
    servers: l.servers,
    gameProfileIds: [...new Set(l.games ?? [])].sort().slice(0, MAX_ANNOUNCED_GAMES),
  });
}

/** Union of the local wish and every member's announcement: what the LAN relay carries. Pure. */
export function partyTargets(local: LocalGames, members: ReadonlyMap<string, Announcement>, nameOf: (deviceId: string) => string): { ports: number[]; groups: string[]; carried: CarriedTarget[] } {
  const why = new Map<string, string[]>();
  const add = (t: string, w: string): void => {
    const l = why.get(t) ?? [];
    if (!l.includes(w)) l.push(w);
    why.set(t, l);
  };
  for (const p of local.udpPorts) add(String(p), local.reasons.get(String(p)) ?? 'here');
  for (const g of local.groups) add(g, local.reasons.get(g) ?? 'here');
  for (const [id, a] of members) {
    const who = nameOf(id);
    for (const p of a.udpPorts) add(String(p), `announced by ${who}`);
    for (const g of a.multicastGroups) add(g, `announced by ${who}`);
  }
  const ports: number[] = [];
  const groups: string[] = [];
  for (const t of why.keys()) {
    if (t.includes(':')) groups.push(t);
    else ports.push(Number(t));
  }
  ports.sort((a, b) => a - b);
  groups.sort();
  const carried = [...why].map(([target, w]) => ({ target, why: w.join('; ') })).sort((a, b) => a.target.localeCompare(b.target, 'en', { numeric: true }));
  return { ports, groups, carried };
}

export class PartyGames extends EventEmitter<PartyGamesEvents> {
  private readonly log: Logger;
  private channel: AnnounceChannel | undefined;
  private detach: (() => void) | undefined;
  private local: LocalGames = { udpPorts: [], groups: [], servers: [], reasons: new Map() };
  private readonly members = new Map<string, Announcement>();
  /** What the control server holds for us, as far as we know. */
  private sent = key(EMPTY);
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastSendAt = 0;
  private sending = false;

  constructor(o: { log: Logger }) {
    super();
    this.log = o.log.child({ part: 'party-games' });
  }

  /** The control client of the current party connection (undefined: none). */
  setChannel(c: AnnounceChannel | undefined): void {
    this.detach?.();
    this.detach = undefined;
    this.channel = c;
    this.members.clear();
    this.sent = key(EMPTY);
    this.emit('changed');
    if (!c) return;
    const onAnn = (list: MemberAnnouncement[], replace: boolean): void => {
      if (replace) {
        this.members.clear();
        // Our own entry in a snapshot is what the server holds: anything else is re-sent.
        this.sent = key(list.find((x) => x.deviceId === c.deviceId)?.announcement ?? EMPTY);
      }
      for (const x of list) {
        if (x.deviceId === c.deviceId) continue;
        const a = x.announcement ?? EMPTY;
        if (isEmptyAnnouncement(a)) this.members.delete(x.deviceId);
        else this.members.set(x.deviceId, a);
      }
      this.emit('changed');
      this.schedule();
    };
    const onLeft = ({ deviceId }: { deviceId: string }): void => {
      if (this.members.delete(deviceId)) this.emit('changed');
    };
    const onSnap = (p: unknown): void => {
      if (p === null) {
        this.members.clear();
        this.sent = key(EMPTY);
        this.emit('changed');
      }
    };
    c.on('announcements', onAnn);
    c.on('memberLeft', onLeft);
    c.on('snapshot', onSnap);
    this.detach = () => {
      c.off('announcements', onAnn as never);
      c.off('memberLeft', onLeft as never);
      c.off('snapshot', onSnap as never);
    };
  }

  /** What runs here changed (games, settings, servers). */
  setLocal(l: LocalGames): void {
    this.local = l;
    this.emit('changed');
    this.schedule();
  }

  localGames(): LocalGames {
    return this.local;
  }

  /** Other members' announcements, by device id. */
  announced(): ReadonlyMap<string, Announcement> {
    return this.members;
  }

  close(): void {
    clearTimeout(this.timer);
    this.detach?.();
  }

  private schedule(): void {
    if (this.timer || this.sending) return;
    const c = this.channel;
    if (!c || !c.party()) return;
    const wait = Math.max(0, this.lastSendAt + ANNOUNCE_GAP_MS - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, wait);
    this.timer.unref();
  }

  private async flush(): Promise<void> {
    const c = this.channel;
    if (!c || !c.party()) return;
    let a: Announcement;
    try {
      a = toAnnouncement(this.local);
    } catch (err) {
      this.log.warn('local games not announced: they do not pass the announcement checks', { err: String(err) });
      return;
    }
    const k = key(a);
    if (k === this.sent) return;
    this.sending = true;
    this.lastSendAt = Date.now();
    try {
      await c.announce(a);
      if (this.channel === c) this.sent = k;
      this.log.debug('announced to the party', { ports: a.udpPorts.length, groups: a.multicastGroups.length, servers: a.servers.length });
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === Status.FAILED_PRECONDITION) return; // left the party meanwhile
      this.log.warn('announcing games to the party failed; retrying', { err: err instanceof Error ? err.message : String(err) });
      this.lastSendAt = Date.now() + 4000;
    } finally {
      this.sending = false;
    }
    this.schedule();
  }
}
