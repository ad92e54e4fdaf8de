import {
  ProfileSourceKind,
  TransportProtocol,
  type GameDetection as ProtoDetection,
  type GameProfile as ProtoProfile,
  type GameSession as ProtoSession,
} from '../gen/lanrage/v1/games.js';
import type { Detection } from './detector.js';
import type { GameProfile, SourceKind } from './profile.js';
import { customIdFor } from './catalog.js';
import type { GameSessionRecord } from './sessions.js';

// Conversions between the profile data (helper/games/profile.ts) and the API messages.

const KIND_TO_PROTO: Record<SourceKind, ProfileSourceKind> = {
  source: ProfileSourceKind.PROFILE_SOURCE_KIND_SOURCE,
  docs: ProfileSourceKind.PROFILE_SOURCE_KIND_DOCS,
  measurement: ProfileSourceKind.PROFILE_SOURCE_KIND_MEASUREMENT,
  user: ProfileSourceKind.PROFILE_SOURCE_KIND_USER,
};

export function toProtoProfile(p: GameProfile): ProtoProfile {
  const ex = p.executables;
  return {
    id: p.id,
    name: p.name,
    ports: p.gamePorts.map((g) => ({
      protocol: g.proto === 'udp' ? TransportProtocol.TRANSPORT_PROTOCOL_UDP : TransportProtocol.TRANSPORT_PROTOCOL_TCP,
      first: g.port,
      last: g.last ?? g.port,
    })),
    multicastGroups: [...new Set(p.discovery.multicastGroups.map((g) => g.group))],
    processNames: [...new Set([...ex.windows, ...ex.linux, ...ex.wine])],
    custom: p.custom,
    broadcastPorts: [...p.discovery.udpBroadcastPorts],
    discoveryGroups: p.discovery.multicastGroups.map((g) => ({ group: g.group, port: g.port })),
    queryProtocol: p.query?.protocol ?? '',
    queryPort: p.query?.port ?? 0,
    windowsExecutables: [...ex.windows],
    linuxExecutables: [...ex.linux],
    wineExecutables: [...ex.wine],
    cmdlineContains: [...(ex.cmdlineContains ?? [])],
    steamAppId: p.steamAppId ?? 0,
    sources: p.sources.map((s) => ({ kind: KIND_TO_PROTO[s.kind], ref: s.ref })),
  };
}

/**
 * A create request as plain data for checkProfile, which does all the validation. Older-style
 * clients that fill only process_names get .exe names as Windows names, the rest as Linux names;
 * multicast_groups entries may be "group:port".
 */
export function fromProtoProfile(p: ProtoProfile): unknown {
  const kindFromProto = (k: ProfileSourceKind): unknown => (Object.entries(KIND_TO_PROTO).find(([, v]) => v === k)?.[0] ?? `unknown kind ${k}`);
  const groups: unknown[] = p.discoveryGroups.map((g) => ({ group: g.group, port: g.port }));
  for (const g of p.multicastGroups) {
    const m = /^(.*):(\d{1,5})$/.exec(g);
    groups.push(m ? { group: m[1], port: Number(m[2]) } : { group: g, port: 'missing: write "group:port" or use discovery_groups' });
  }
  const windows = [...p.windowsExecutables, ...p.processNames.filter((n) => /\.exe$/i.test(n))];
  const linux = [...p.linuxExecutables, ...p.processNames.filter((n) => !/\.exe$/i.test(n))];
  return {
    id: p.id === '' ? customIdFor(p.name) : p.id,
    name: p.name,
    discovery: { udpBroadcastPorts: p.broadcastPorts, multicastGroups: groups },
    gamePorts: p.ports.map((r) => ({
      port: r.first,
      ...(r.last !== 0 && r.last !== r.first && { last: r.last }),
      proto: r.protocol === TransportProtocol.TRANSPORT_PROTOCOL_UDP ? 'udp' : r.protocol === TransportProtocol.TRANSPORT_PROTOCOL_TCP ? 'tcp' : 'unspecified',
    })),
    ...((p.queryProtocol !== '' || p.queryPort !== 0) && { query: { protocol: p.queryProtocol, port: p.queryPort } }),
    executables: {
      windows,
      linux,
      ...(p.wineExecutables.length > 0 && { wine: p.wineExecutables }),
      ...(p.cmdlineContains.length > 0 && { cmdlineContains: p.cmdlineContains }),
    },
    ...(p.steamAppId !== 0 && { steamAppId: p.steamAppId }),
    ...(p.sources.length > 0 && { sources: p.sources.map((s) => ({ kind: kindFromProto(s.kind), ref: s.ref })) }),
  };
}

export function toProtoDetection(d: Detection, name: string, running: boolean): ProtoDetection {
  return { profileId: d.profileId, gameName: name, pid: d.pid, detectedAt: new Date(d.detectedAt), running, exe: d.exe };
}

export function toProtoSession(s: GameSessionRecord & { id: number }): ProtoSession {
  return {
    id: s.id,
    profileId: s.profileId,
    gameName: s.gameName,
    startedAt: new Date(s.startMs),
    endedAt: new Date(s.endMs),
    durationSeconds: Math.round((s.endMs - s.startMs) / 1000),
    players: s.players.map((p) => ({
      deviceId: p.deviceId,
      name: p.name,
      overlapSeconds: Math.round(p.overlapMs / 1000),
      averageRttMs: p.avgRttMs,
      directShare: p.directShare,
    })),
  };
}
