import { MemberLeftReason, NatMapping, Presence, type Member, type NatHints, type Party } from '../gen/lanrage/control/v1/control.js';
import { DEVICE_ID_RE, PARTY_ID_RE } from '../control/ids.js';
import { isHostAddress, parsePool } from '../control/ip-pool.js';
import { KEY_BYTES, MAX_CANDIDATES, MAX_PORT_DELTA, MAX_RELAYED, NAME_RE, formatCandidate, parseCandidate } from '../control/validate.js';

// What the helper sees of its party, in its own terms (base64 keys as `wg` takes them, string
// unions instead of proto enums), built only from messages that pass the same checks the server
// applies: a broken or hostile control server cannot hand the helper an unusable key or address.

export type PresenceState = 'online' | 'away';
export type NatMappingKind = 'unknown' | 'none' | 'endpoint-independent' | 'endpoint-dependent';
export type LeftReason = 'left' | 'kicked' | 'timed-out' | 'unknown';

export interface NatHintsState {
  mapping: NatMappingKind;
  /** A UPnP / NAT-PMP / PCP mapping is in place. */
  portMapped: boolean;
  /** Observed step between consecutive mapped ports (endpoint-dependent NATs), 0 if unknown. */
  portDelta: number;
}

export interface MemberState {
  deviceId: string;
  name: string;
  virtualIp: string;
  /** WireGuard public key, base64 (as `wg set ... peer` takes it). */
  wgPublicKey: string;
  /** Disco X25519 public key, base64. */
  discoPublicKey: string;
  candidates: string[];
  nat: NatHintsState;
  /** TURN relayed addresses ("ip:port", IPv4) where the member receives relayed traffic; [] when none. */
  relayed: string[];
  presence: PresenceState;
  isHost: boolean;
  isSelf: boolean;
  joinedAt: Date;
}

export interface PartyState {
  id: string;
  name: string;
  hostDeviceId: string;
  /** e.g. "10.66.0.0/16". */
  networkCidr: string;
  createdAt: Date;
  /** Oldest first. */
  members: MemberState[];
  /** Known when this client created or joined the party (or was told with rememberInviteSecret). */
  inviteSecret?: string;
}

const MAPPING_TO_KIND: Record<number, NatMappingKind> = {
  [NatMapping.NAT_MAPPING_NONE]: 'none',
  [NatMapping.NAT_MAPPING_ENDPOINT_INDEPENDENT]: 'endpoint-independent',
  [NatMapping.NAT_MAPPING_ENDPOINT_DEPENDENT]: 'endpoint-dependent',
};
const KIND_TO_MAPPING: Record<NatMappingKind, NatMapping> = {
  unknown: NatMapping.NAT_MAPPING_UNSPECIFIED,
  none: NatMapping.NAT_MAPPING_NONE,
  'endpoint-independent': NatMapping.NAT_MAPPING_ENDPOINT_INDEPENDENT,
  'endpoint-dependent': NatMapping.NAT_MAPPING_ENDPOINT_DEPENDENT,
};

export const natToProto = (n: NatHintsState): NatHints => ({ mapping: KIND_TO_MAPPING[n.mapping], portMapped: n.portMapped, portDelta: n.portDelta });

export function natFromProto(n: NatHints | undefined): NatHintsState {
  const delta = n && Number.isInteger(n.portDelta) && Math.abs(n.portDelta) <= MAX_PORT_DELTA ? n.portDelta : 0;
  return { mapping: (n && MAPPING_TO_KIND[n.mapping]) ?? 'unknown', portMapped: n?.portMapped ?? false, portDelta: delta };
}

export function leftReason(r: MemberLeftReason): LeftReason {
  switch (r) {
    case MemberLeftReason.MEMBER_LEFT_REASON_LEFT:
      return 'left';
    case MemberLeftReason.MEMBER_LEFT_REASON_KICKED:
      return 'kicked';
    case MemberLeftReason.MEMBER_LEFT_REASON_TIMED_OUT:
      return 'timed-out';
    default:
      return 'unknown';
  }
}

/** Valid candidates only, canonical, at most MAX_CANDIDATES. */
export function cleanCandidates(list: readonly string[]): string[] {
  const out = new Set<string>();
  for (const raw of list) {
    const c = parseCandidate(raw);
    if (typeof c !== 'string') out.add(formatCandidate(c));
    if (out.size >= MAX_CANDIDATES) break;
  }
  return [...out];
}

/** Valid IPv4 relayed addresses only, canonical, at most MAX_RELAYED. */
export function cleanRelayed(list: readonly string[] | undefined): string[] {
  const out = new Set<string>();
  for (const raw of list ?? []) {
    const c = parseCandidate(raw);
    if (typeof c !== 'string' && c.family === 4) out.add(formatCandidate(c));
    if (out.size >= MAX_RELAYED) break;
  }
  return [...out];
}

function key(what: string, k: Uint8Array): string {
  if (k.length !== KEY_BYTES || k.every((b) => b === 0)) throw new Error(`${what} is not a ${KEY_BYTES}-byte key`);
  return Buffer.from(k).toString('base64');
}

/** Throws when the member is unusable; the caller drops it. */
export function memberFromProto(m: Member, networkCidr: string, selfId: string): MemberState {
  if (!DEVICE_ID_RE.test(m.deviceId)) throw new Error('bad device id');
  if (!NAME_RE.test(m.name)) throw new Error(`member ${m.deviceId}: bad name`);
  if (!isHostAddress(parsePool(networkCidr), m.virtualIp)) throw new Error(`member ${m.deviceId}: virtual IP ${m.virtualIp} is not a host address of ${networkCidr}`);
  return {
    deviceId: m.deviceId,
    name: m.name,
    virtualIp: m.virtualIp,
    wgPublicKey: key(`member ${m.deviceId}: WireGuard key`, m.wireguardPublicKey),
    discoPublicKey: key(`member ${m.deviceId}: disco key`, m.discoPublicKey),
    candidates: cleanCandidates(m.candidates),
    nat: natFromProto(m.nat),
    relayed: cleanRelayed(m.relayed),
    presence: m.presence === Presence.PRESENCE_AWAY ? 'away' : 'online',
    isHost: m.isHost,
    isSelf: m.deviceId === selfId,
    joinedAt: m.joinedAt ?? new Date(0),
  };
}

/** Throws when the party itself is unusable; bad members are dropped (and reported). */
export function partyFromProto(p: Party, selfId: string, onBadMember: (why: string) => void): PartyState {
  if (!PARTY_ID_RE.test(p.id)) throw new Error('bad party id');
  if (!NAME_RE.test(p.name)) throw new Error('bad party name');
  parsePool(p.networkCidr);
  const members: MemberState[] = [];
  const ips = new Set<string>();
  for (const m of p.members) {
    try {
      const s = memberFromProto(m, p.networkCidr, selfId);
      if (ips.has(s.virtualIp) || members.some((x) => x.deviceId === s.deviceId)) throw new Error(`member ${s.deviceId}: duplicate device or virtual IP`);
      ips.add(s.virtualIp);
      members.push(s);
    } catch (err) {
      onBadMember((err as Error).message);
    }
  }
  return { id: p.id, name: p.name, hostDeviceId: p.hostDeviceId, networkCidr: p.networkCidr, createdAt: p.createdAt ?? new Date(0), members };
}

/** Adds or replaces a member, keeping the host flag consistent; returns a new state. */
export function withMember(state: PartyState, m: MemberState): PartyState {
  const hostDeviceId = m.isHost ? m.deviceId : state.hostDeviceId;
  const others = state.members.filter((x) => x.deviceId !== m.deviceId && x.virtualIp !== m.virtualIp);
  const members = [...others, m]
    .map((x) => (x.isHost !== (x.deviceId === hostDeviceId) ? { ...x, isHost: x.deviceId === hostDeviceId } : x))
    .sort((a, b) => a.joinedAt.getTime() - b.joinedAt.getTime());
  return { ...state, hostDeviceId, members };
}

export const withoutMember = (state: PartyState, deviceId: string): PartyState => ({ ...state, members: state.members.filter((x) => x.deviceId !== deviceId) });
