import { Metadata } from '@grpc/grpc-js';
import {
  PartyServiceClient,
  InviteReach,
  MemberPresence,
  type CreatePartyRequest,
  type CreatePartyResponse,
  type JoinPartyRequest,
  type GetPartyResponse,
  type JoinPartyResponse,
  type LeavePartyResponse,
  type Party,
} from '../gen/lanrage/v1/party.js';
import { PeerServiceClient, PathKind, type ListPeersResponse, type Peer, type PingPeerRequest, type PingPeerResponse } from '../gen/lanrage/v1/peer.js';
import { flag } from '../core/args.js';
import { unary, withClient } from './call.js';
import { CliError, type CliContext } from './context.js';
import type { Command } from './commands.js';

export function pathLabel(p: PathKind): string {
  switch (p) {
    case PathKind.PATH_KIND_DIRECT:
      return 'direct';
    case PathKind.PATH_KIND_RELAYED:
      return 'relayed';
    case PathKind.PATH_KIND_UNREACHABLE:
      return 'unreachable';
    case PathKind.PATH_KIND_CONNECTING:
      return 'connecting';
    default:
      return 'unknown';
  }
}

export function formatParty(party: Party | undefined, peers: Peer[]): string[] {
  if (!party) return ['not in a party: `lanrage create NAME` or `lanrage join LINK`'];
  const lines = [`party "${party.name}" (${party.networkCidr})`, `  invite  ${party.inviteLink}`];
  if (party.inviteReach === InviteReach.INVITE_REACH_LAN_ONLY) lines.push(`  !!      ${party.inviteNote}`);
  else if (party.inviteNote) lines.push(`  note    ${party.inviteNote}`);
  for (const m of party.members) {
    const peer = peers.find((p) => p.deviceId === m.deviceId);
    const who = `${m.name}${m.isSelf ? ' (you)' : ''}${m.isHost ? ' [host]' : ''}`;
    const away = m.presence === MemberPresence.MEMBER_PRESENCE_AWAY ? ' away' : '';
    const path = m.isSelf ? '' : peer ? `  ${pathLabel(peer.path)}${peer.endpoint ? ` via ${peer.endpoint}` : ''}${peer.rttMs > 0 ? ` ${peer.rttMs.toFixed(1)} ms` : ''}${peer.pathReason ? ` — ${peer.pathReason}` : ''}` : '  connecting';
    lines.push(`  ${m.virtualIp.padEnd(12)} ${who}${away}${path}`);
  }
  return lines;
}

async function show(ctx: CliContext, party: Party | undefined): Promise<void> {
  await withClient(PeerServiceClient, ctx, async (peers) => {
    const res = party ? await unary<object, ListPeersResponse>(peers, peers.listPeers, {}, new Metadata(), ctx.deadline()) : { peers: [] };
    if (ctx.json) ctx.out(JSON.stringify({ party: party ?? null, peers: res.peers }));
    else formatParty(party, res.peers).forEach((l) => ctx.out(l));
  });
}

export const createCommand: Command = {
  name: 'create',
  usage: 'create NAME',
  summary: 'create a party and print its invite link',
  async run(args, ctx) {
    const name = args.positional.slice(1).join(' ');
    if (!name) throw new CliError('usage: lanrage create NAME');
    await withClient(PartyServiceClient, ctx, async (c) => {
      const res = await unary<CreatePartyRequest, CreatePartyResponse>(c, c.createParty, { name }, ctx.authMetadata(), ctx.deadline());
      await show(ctx, res.party);
    });
  },
};

export const joinCommand: Command = {
  name: 'join',
  usage: 'join LINK',
  summary: 'join a party by its invite link',
  async run(args, ctx) {
    const link = args.positional[1];
    if (!link) throw new CliError('usage: lanrage join LINK (the lanrage://join?... link the host shared)');
    await withClient(PartyServiceClient, ctx, async (c) => {
      const res = await unary<JoinPartyRequest, JoinPartyResponse>(c, c.joinParty, { inviteLink: link }, ctx.authMetadata(), new Date(Date.now() + 15_000));
      await show(ctx, res.party);
    });
  },
};

export const leaveCommand: Command = {
  name: 'leave',
  usage: 'leave',
  summary: 'leave the party',
  async run(_args, ctx) {
    await withClient(PartyServiceClient, ctx, async (c) => {
      await unary<object, LeavePartyResponse>(c, c.leaveParty, {}, ctx.authMetadata(), ctx.deadline());
      ctx.out(ctx.json ? '{}' : 'left the party');
    });
  },
};

export const pingCommand: Command = {
  name: 'ping',
  usage: 'ping PEER [--count N]',
  summary: 'ping a peer (name, device id or virtual IP) and say which path answered',
  async run(args, ctx) {
    const peer = args.positional[1];
    if (!peer) throw new CliError('usage: lanrage ping PEER [--count N]');
    const count = Number(flag(args, 'count') ?? 4);
    await withClient(PeerServiceClient, ctx, async (c) => {
      const res = await unary<PingPeerRequest, PingPeerResponse>(c, c.pingPeer, { peer, count }, ctx.authMetadata(), new Date(Date.now() + 5000 + count * 2000));
      if (ctx.json) return ctx.out(JSON.stringify(res));
      for (const r of res.results) {
        ctx.out(r.answered ? `seq ${r.sequence}: ${r.rttMs.toFixed(2)} ms via ${r.via} (${pathLabel(r.path)})` : `seq ${r.sequence}: no answer`);
      }
      if (!res.results.some((r) => r.answered)) throw new CliError(`${peer} did not answer`);
    });
  },
};

export const partyCommand: Command = {
  name: 'party',
  usage: 'party',
  summary: 'show the party: members, virtual IPs, paths and round-trip times',
  async run(_args, ctx) {
    await withClient(PartyServiceClient, ctx, async (c) => {
      const res = await unary<object, GetPartyResponse>(c, c.getParty, {}, new Metadata(), ctx.deadline());
      await show(ctx, res.party);
    });
  },
};

export { show as showParty };
