import { InviteReach, MemberPresence, type Party, type PartyMember } from '../gen/lanrage/v1/party.js';
import { PathKind, type Peer, type PingResult } from '../gen/lanrage/v1/peer.js';
import type { MemberState, PartyState } from '../controlclient/state.js';
import type { PathState, PingResult as SockPing } from '../net/magicsock.js';
import type { WgPeerStats } from '../wg/index.js';
import type { Exposure } from '../control/exposure.js';

// Pure translations from the party machinery's own types to the local API's messages.

export function toProtoMember(m: MemberState): PartyMember {
  return {
    deviceId: m.deviceId,
    name: m.name,
    virtualIp: m.virtualIp,
    isHost: m.isHost,
    isSelf: m.isSelf,
    presence: m.presence === 'away' ? MemberPresence.MEMBER_PRESENCE_AWAY : MemberPresence.MEMBER_PRESENCE_ONLINE,
    joinedAt: m.joinedAt,
  };
}

export function toProtoParty(p: PartyState, inviteLink: string, exposure?: Exposure): Party {
  const inviteReach = !exposure ? InviteReach.INVITE_REACH_UNSPECIFIED : exposure.reach === 'internet' ? InviteReach.INVITE_REACH_INTERNET : InviteReach.INVITE_REACH_LAN_ONLY;
  return { id: p.id, name: p.name, inviteLink, members: p.members.map(toProtoMember), networkCidr: p.networkCidr, createdAt: p.createdAt, inviteReach, inviteNote: exposure?.note ?? '' };
}

export function pathKind(k: PathState['kind'] | undefined): PathKind {
  switch (k) {
    case 'direct':
      return PathKind.PATH_KIND_DIRECT;
    case 'relayed':
      return PathKind.PATH_KIND_RELAYED;
    case 'unreachable':
      return PathKind.PATH_KIND_UNREACHABLE;
    default:
      return PathKind.PATH_KIND_CONNECTING;
  }
}

/** The path shown for a member: an away member's last path says nothing about now. */
export function memberPathKind(m: MemberState, path: PathState | undefined): PathKind {
  return m.presence === 'away' ? PathKind.PATH_KIND_UNREACHABLE : pathKind(path?.kind);
}

export function toProtoPeer(m: MemberState, path: PathState | undefined, stats: WgPeerStats | undefined): Peer {
  const away = m.presence === 'away';
  return {
    deviceId: m.deviceId,
    name: m.name,
    virtualIp: m.virtualIp,
    path: memberPathKind(m, path),
    pathReason: away ? `${m.name} has lost contact with the control server` : (path?.reason ?? 'looking for a path'),
    endpoint: path?.endpoint ?? '',
    rttMs: path?.rttMs ?? 0,
    lastHandshake: stats?.lastHandshakeMs ? new Date(stats.lastHandshakeMs) : undefined,
    rxBytes: stats?.rxBytes ?? 0,
    txBytes: stats?.txBytes ?? 0,
    fastPath: path?.fastPath ?? false,
    // Packet totals come from the metrics collector (PartyManager adds them).
    rxPackets: 0,
    txPackets: 0,
  };
}

export function toProtoPing(r: SockPing): PingResult {
  return {
    sequence: r.seq,
    answered: r.answered,
    rttMs: r.rttMs ?? 0,
    path: !r.answered ? PathKind.PATH_KIND_UNSPECIFIED : r.path === 'direct' ? PathKind.PATH_KIND_DIRECT : r.path === 'relayed' ? PathKind.PATH_KIND_RELAYED : PathKind.PATH_KIND_UNSPECIFIED,
    via: r.via ?? '',
  };
}

/** Finds a member by device id, virtual IP or (case-insensitive) name. */
export function findMember(members: readonly MemberState[], key: string): MemberState | undefined {
  const k = key.trim();
  return members.find((m) => m.deviceId === k) ?? members.find((m) => m.virtualIp === k) ?? members.find((m) => m.name.toLowerCase() === k.toLowerCase());
}
