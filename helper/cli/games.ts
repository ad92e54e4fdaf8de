import { Metadata } from '@grpc/grpc-js';
import {
  GameServiceClient,
  ProfileSourceKind,
  TransportProtocol,
  type GameProfile,
  type ListGameDetectionsResponse,
  type ListGameProfilesResponse,
} from '../gen/lanrage/v1/games.js';
import { unary, withClient } from './call.js';
import { CliError } from './context.js';
import type { Command } from './commands.js';
import { listSessions } from './game-sessions.js';
import { flag } from '../core/args.js';

// `lanrage games`: the games running now; `lanrage games profiles`: every profile the helper
// knows, with its discovery ports and where the facts come from; `lanrage games sessions` (or
// --sessions): the games played here.

const kindName = (k: ProfileSourceKind): string => ProfileSourceKind[k]?.replace('PROFILE_SOURCE_KIND_', '').toLowerCase() ?? String(k);

function discoveryText(p: GameProfile): string {
  const parts: string[] = [];
  if (p.broadcastPorts.length > 0) parts.push(`broadcast ${compactPorts(p.broadcastPorts)}`);
  for (const g of p.discoveryGroups) parts.push(`multicast ${g.group}:${g.port}`);
  return parts.join(', ') || 'none (join by address)';
}

/** [8303, 8304, ..., 8310] → "8303-8310". */
function compactPorts(ports: readonly number[]): string {
  const s = [...ports].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    out.push(j > i ? `${s[i]}-${s[j]}` : String(s[i]));
    i = j + 1;
  }
  return out.join(',');
}

const portsText = (p: GameProfile): string =>
  p.ports.map((r) => `${r.first === r.last ? r.first : `${r.first}-${r.last}`}/${r.protocol === TransportProtocol.TRANSPORT_PROTOCOL_TCP ? 'tcp' : 'udp'}`).join(' ');

export const gamesCommand: Command = {
  name: 'games',
  usage: 'games [profiles|sessions]',
  summary: 'games running now (detected from their processes), every game profile, or the sessions played here',
  async run(args, ctx) {
    const [, positional] = args.positional;
    const sub = flag(args, 'sessions') !== undefined ? 'sessions' : positional;
    if (sub !== undefined && sub !== 'profiles' && sub !== 'sessions') throw new CliError('usage: lanrage games [profiles | sessions [--game ID] [--limit N]]');
    await withClient(GameServiceClient, ctx, async (client) => {
      if (sub === 'sessions') return listSessions(client, args, ctx);
      if (sub === 'profiles') {
        const res = await unary<object, ListGameProfilesResponse>(client, client.listGameProfiles, {}, new Metadata(), ctx.deadline());
        if (ctx.json) return ctx.out(JSON.stringify({ profiles: res.profiles }));
        const w = Math.max(...res.profiles.map((p) => p.id.length), 2);
        for (const p of res.profiles) {
          ctx.out(`${p.id.padEnd(w)}  ${p.name}${p.custom ? ' (custom)' : ''}`);
          ctx.out(`${''.padEnd(w)}  discovery: ${discoveryText(p)}; game ${portsText(p) || '-'}${p.queryProtocol ? `; query ${p.queryProtocol}:${p.queryPort}` : ''}`);
          ctx.out(`${''.padEnd(w)}  sources: ${[...new Set(p.sources.map((s) => kindName(s.kind)))].join(', ')}`);
        }
        const custom = res.profiles.filter((p) => p.custom).length;
        ctx.out(`${res.profiles.length} profiles (${custom} custom)`);
        return;
      }
      const [det, prof] = await Promise.all([
        unary<object, ListGameDetectionsResponse>(client, client.listGameDetections, {}, new Metadata(), ctx.deadline()),
        unary<object, ListGameProfilesResponse>(client, client.listGameProfiles, {}, new Metadata(), ctx.deadline()),
      ]);
      if (ctx.json) {
        return ctx.out(JSON.stringify({ detections: det.detections.map((d) => ({ ...d, detectedAt: d.detectedAt?.toISOString() })) }));
      }
      if (det.detections.length === 0) {
        ctx.out(`no game running (the helper knows ${prof.profiles.length} games: lanrage games profiles)`);
        return;
      }
      const byId = new Map(prof.profiles.map((p) => [p.id, p]));
      for (const d of det.detections) {
        const p = byId.get(d.profileId);
        ctx.out(`${d.gameName}  pid ${d.pid}  ${d.exe}  since ${d.detectedAt?.toISOString() ?? '?'}`);
        if (p) ctx.out(`  LAN discovery: ${discoveryText(p)}`);
      }
    });
  },
};
