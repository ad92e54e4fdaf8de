// Games: profiles, the games running now, and custom profiles. The Watch stream (live.ts) hands
// every GameDetection event to gamesStore; the Games view reads it and calls the RPCs below.
import {
  CreateCustomGameProfileRequest,
  DeleteCustomGameProfileRequest,
  GameProfile,
  GameServiceDefinition,
  ListGameDetectionsRequest,
  ListGameProfilesRequest,
  ListGameSessionsRequest,
  ProfileSourceKind,
  TransportProtocol,
  type GameDetection,
  type GameSession,
} from '../gen/lanrage/v1/games.js';
import { unary } from '../api/transport.js';

export type { GameDetection, GameProfile, GameSession };
export { ProfileSourceKind, TransportProtocol };

export interface GamesState {
  /** undefined until the first ListGameProfiles answer. */
  readonly profiles: readonly GameProfile[] | undefined;
  /** Running games by pid. */
  readonly running: ReadonlyMap<number, GameDetection>;
  /** Sessions played here, newest first (undefined until the first ListGameSessions answer). */
  readonly sessions: readonly GameSession[] | undefined;
}

/** How many sessions the Games page shows. */
export const SESSIONS_SHOWN = 20;

type Listener = (s: GamesState) => void;

class GamesStore {
  private current: GamesState = { profiles: undefined, running: new Map(), sessions: undefined };
  private readonly listeners = new Set<Listener>();

  get state(): GamesState {
    return this.current;
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    l(this.current);
    return () => this.listeners.delete(l);
  }

  /** A started/stopped event from the Watch stream. */
  applyDetection(d: GameDetection): void {
    const running = new Map(this.current.running);
    if (d.running) running.set(d.pid, d);
    else running.delete(d.pid);
    this.set({ running });
  }

  /** A session ended (Watch GAMES): newest first, without duplicates. */
  applySession(s: GameSession): void {
    const rest = (this.current.sessions ?? []).filter((x) => x.id !== s.id);
    this.set({ sessions: [s, ...rest].slice(0, SESSIONS_SHOWN) });
  }

  setSessions(list: readonly GameSession[]): void {
    this.set({ sessions: list });
  }

  setRunning(list: readonly GameDetection[]): void {
    this.set({ running: new Map(list.map((d) => [d.pid, d])) });
  }

  setProfiles(profiles: readonly GameProfile[]): void {
    this.set({ profiles });
  }

  private set(patch: Partial<GamesState>): void {
    this.current = { ...this.current, ...patch };
    for (const l of [...this.listeners]) l(this.current);
  }
}

export const gamesStore = new GamesStore();

export async function loadProfiles(): Promise<void> {
  const res = await unary(GameServiceDefinition, GameServiceDefinition.methods.listGameProfiles, ListGameProfilesRequest.fromPartial({}));
  gamesStore.setProfiles(res.profiles);
}

/** The list of running games, for when the stream may have missed a stop (reconnects). */
export async function loadDetections(): Promise<void> {
  const res = await unary(GameServiceDefinition, GameServiceDefinition.methods.listGameDetections, ListGameDetectionsRequest.fromPartial({}));
  gamesStore.setRunning(res.detections);
}

export async function loadSessions(): Promise<void> {
  const res = await unary(GameServiceDefinition, GameServiceDefinition.methods.listGameSessions, ListGameSessionsRequest.fromPartial({ pageSize: SESSIONS_SHOWN }));
  gamesStore.setSessions(res.sessions);
}

export async function createCustomProfile(profile: GameProfile): Promise<GameProfile | undefined> {
  const res = await unary(GameServiceDefinition, GameServiceDefinition.methods.createCustomGameProfile, CreateCustomGameProfileRequest.fromPartial({ profile }), { auth: true });
  await loadProfiles();
  return res.profile;
}

export async function deleteCustomProfile(id: string): Promise<void> {
  await unary(GameServiceDefinition, GameServiceDefinition.methods.deleteCustomGameProfile, DeleteCustomGameProfileRequest.fromPartial({ id }), { auth: true });
  await loadProfiles();
}

// ---- the custom-profile form: text fields → a GameProfile (the helper validates again)

export interface ProfileForm {
  name: string;
  /** "27015-27020, 4445" */
  broadcastPorts: string;
  /** "224.0.2.60:4445, 239.1.2.3:5000" */
  multicastGroups: string;
  /** "27015/udp, 27015-27020/tcp" */
  gamePorts: string;
  /** Space- or comma-separated: names ending in .exe are Windows (and Wine) names, others Linux. */
  executables: string;
}

export type FormResult = { ok: true; profile: GameProfile } | { ok: false; errors: string[] };

const splitList = (s: string): string[] =>
  s
    .split(/[,\s]+/)
    .map((x) => x.trim())
    .filter(Boolean);

function port(s: string, errors: string[], what: string): number | undefined {
  if (!/^\d{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535) {
    errors.push(`${what}: "${s}" is not a port (1-65535)`);
    return undefined;
  }
  return Number(s);
}

export function parseProfileForm(f: ProfileForm): FormResult {
  const errors: string[] = [];
  const name = f.name.trim();
  if (name === '') errors.push('Name: required');
  const broadcastPorts: number[] = [];
  for (const item of splitList(f.broadcastPorts)) {
    const m = /^(\d+)-(\d+)$/.exec(item);
    if (m) {
      const a = port(m[1]!, errors, 'Broadcast ports');
      const b = port(m[2]!, errors, 'Broadcast ports');
      if (a !== undefined && b !== undefined) {
        if (b < a || b - a >= 32) errors.push(`Broadcast ports: range ${item} must go upwards and hold at most 32 ports`);
        else for (let p = a; p <= b; p++) broadcastPorts.push(p);
      }
    } else {
      const p = port(item, errors, 'Broadcast ports');
      if (p !== undefined) broadcastPorts.push(p);
    }
  }
  const discoveryGroups = splitList(f.multicastGroups).flatMap((item) => {
    const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d+)$/.exec(item);
    if (!m) {
      errors.push(`Multicast groups: "${item}" must look like 224.0.2.60:4445`);
      return [];
    }
    const p = port(m[2]!, errors, 'Multicast groups');
    return p === undefined ? [] : [{ group: m[1]!, port: p }];
  });
  const ports = splitList(f.gamePorts).flatMap((item) => {
    const m = /^(\d+)(?:-(\d+))?\/(udp|tcp)$/i.exec(item);
    if (!m) {
      errors.push(`Game ports: "${item}" must look like 27015/udp or 2300-2400/tcp`);
      return [];
    }
    const first = port(m[1]!, errors, 'Game ports');
    const last = m[2] === undefined ? first : port(m[2], errors, 'Game ports');
    if (first === undefined || last === undefined) return [];
    const protocol = m[3]!.toLowerCase() === 'udp' ? TransportProtocol.TRANSPORT_PROTOCOL_UDP : TransportProtocol.TRANSPORT_PROTOCOL_TCP;
    return [{ protocol, first, last }];
  });
  const exes = splitList(f.executables);
  if (exes.length === 0) errors.push('Executables: at least one, or the game is never detected');
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    profile: GameProfile.fromPartial({
      name,
      broadcastPorts,
      discoveryGroups,
      ports,
      windowsExecutables: exes.filter((e) => /\.exe$/i.test(e)),
      linuxExecutables: exes.filter((e) => !/\.exe$/i.test(e)),
    }),
  };
}

/** "8303-8310, 224.0.2.60:4445" — what a profile turns on while the game runs. */
export function discoverySummary(p: GameProfile): string {
  const out: string[] = [];
  const s = [...p.broadcastPorts].sort((a, b) => a - b);
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    out.push(j > i ? `${s[i]}-${s[j]}` : String(s[i]));
    i = j + 1;
  }
  for (const g of p.discoveryGroups) out.push(`${g.group}:${g.port}`);
  return out.join(', ');
}

export function sourceKinds(p: GameProfile): string[] {
  const name: Record<number, string> = {
    [ProfileSourceKind.PROFILE_SOURCE_KIND_SOURCE]: 'source code',
    [ProfileSourceKind.PROFILE_SOURCE_KIND_DOCS]: 'docs',
    [ProfileSourceKind.PROFILE_SOURCE_KIND_MEASUREMENT]: 'measured',
    [ProfileSourceKind.PROFILE_SOURCE_KIND_USER]: 'yours',
  };
  return [...new Set(p.sources.map((s) => name[s.kind] ?? 'unknown'))];
}
