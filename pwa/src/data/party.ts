// Parties and peers: the RPCs, the rules the forms check before sending (mirrors of the helper's,
// which stay the authority), and how paths, pings and errors read to a player.
// The party and the peers themselves live in liveStore, fed by the Watch stream; the calls here
// also write their answers there so the page moves at once instead of on the next event.
import {
  InviteReach,
  CreatePartyRequest,
  GetPartyRequest,
  JoinPartyRequest,
  KickPartyMemberRequest,
  LeavePartyRequest,
  MemberPresence,
  PartyServiceDefinition,
  type Party,
  type PartyMember,
} from '../gen/lanrage/v1/party.js';
import { PathKind, PeerServiceDefinition, PingPeerRequest, type Peer, type PingResult } from '../gen/lanrage/v1/peer.js';
import { unary } from '../api/transport.js';
import { ApiError, Code } from '../api/errors.js';
import { liveStore } from './store.js';

export { MemberPresence, PathKind };
export type { Party, PartyMember, Peer, PingResult };

/** A helper's HTTP port when nobody chose another (helper/roles/helper.ts). */
export const DEFAULT_HELPER_HTTP_PORT = 8666;
export const DEFAULT_PING_COUNT = 4;
/** Joining talks to the control server and waits for a virtual IP: give it longer than a read. */
const JOIN_TIMEOUT_MS = 20_000;

// ---- calls ----------------------------------------------------------------------------------

export async function getParty(): Promise<Party | undefined> {
  const res = await unary(PartyServiceDefinition, PartyServiceDefinition.methods.getParty, GetPartyRequest.fromPartial({}));
  return res.party;
}

export async function createParty(name: string): Promise<Party> {
  const res = await unary(
    PartyServiceDefinition,
    PartyServiceDefinition.methods.createParty,
    CreatePartyRequest.fromPartial({ name }),
    { auth: true, timeoutMs: JOIN_TIMEOUT_MS },
  );
  return adopt(res.party);
}

export async function joinParty(inviteLink: string): Promise<Party> {
  const res = await unary(
    PartyServiceDefinition,
    PartyServiceDefinition.methods.joinParty,
    JoinPartyRequest.fromPartial({ inviteLink: inviteText(inviteLink) }),
    { auth: true, timeoutMs: JOIN_TIMEOUT_MS },
  );
  return adopt(res.party);
}

export async function leaveParty(): Promise<void> {
  await unary(PartyServiceDefinition, PartyServiceDefinition.methods.leaveParty, LeavePartyRequest.fromPartial({}), {
    auth: true,
  });
  liveStore.setParty(undefined);
}

export async function kickMember(deviceId: string): Promise<void> {
  await unary(
    PartyServiceDefinition,
    PartyServiceDefinition.methods.kickPartyMember,
    KickPartyMemberRequest.fromPartial({ deviceId }),
    { auth: true },
  );
  // The party event that follows carries the new member list; nothing to guess here.
}

/** `peer` is a device id (or a name or virtual IP, as the API allows). */
export async function pingPeer(peer: string, count = DEFAULT_PING_COUNT): Promise<PingResult[]> {
  const res = await unary(PeerServiceDefinition, PeerServiceDefinition.methods.pingPeer, PingPeerRequest.fromPartial({ peer, count }), {
    auth: true,
    // The helper waits for each ping's answer or its timeout; the CLI allows the same.
    timeoutMs: 5_000 + count * 2_000,
  });
  return res.results;
}

/** Fills the store before the stream's snapshot, like primeStatus; the stream reports failures. */
export async function primeParty(): Promise<void> {
  try {
    const party = await getParty();
    if (!liveStore.state.partyKnown) liveStore.setParty(party);
  } catch {
    // The Watch stream owns the connection state.
  }
}

function adopt(party: Party | undefined): Party {
  if (!party) throw new ApiError(Code.INTERNAL, 'The helper answered without the party.');
  liveStore.setParty(party);
  return party;
}

// ---- what the forms check -------------------------------------------------------------------

const PARTY_NAME_MAX = 48;
// helper/control/validate.ts NAME_RE: a letter or digit first, no space last.
const PARTY_NAME_CHARS = /^[\p{L}\p{N} ._'!-]+$/u;
const STARTS_WITH_LETTER_OR_DIGIT = /^[\p{L}\p{N}]/u;

/** Why the control server would refuse `name`, in words; undefined when it is fine. */
export function partyNameError(name: string): string | undefined {
  const length = [...name].length;
  if (length === 0) return 'Give the party a name.';
  if (length > PARTY_NAME_MAX) return `At most ${PARTY_NAME_MAX} characters (this one has ${length}).`;
  if (!PARTY_NAME_CHARS.test(name)) return "Use letters, digits, spaces and . _ ' ! - only.";
  if (!STARTS_WITH_LETTER_OR_DIGIT.test(name)) return 'Start with a letter or a digit.';
  if (name.endsWith(' ')) return 'Do not end the name with a space.';
  if (name !== name.normalize('NFC')) return 'The name contains unusual accent encoding; retype it.';
  return undefined;
}

const INVITE_PREFIX = 'lanrage://join?';
const INVITE_MAX = 1024;
const PARTY_ID_RE = /^[a-z2-7]{16}$/;
const INVITE_SECRET_RE = /^[A-Za-z0-9_-]{43}$/;

export interface InviteLink {
  readonly controlUrl: string;
  readonly partyId: string;
  readonly secret: string;
}

/**
 * Reads a `lanrage://join?c=…&p=…&s=…[&a=…]` link as helper/controlclient/invite.ts does, so an
 * obvious typo is caught before the round trip (`a`, other control instances, is checked there). Returns the parts, or why the text is not such a link.
 */
export function parseInviteLink(text: string): InviteLink | string {
  const link = text.trim();
  if (link === '') return 'Paste the invite link the host shared.';
  if (link.length > INVITE_MAX) return 'That is too long to be an invite link.';
  if (/^https?:\/\//i.test(link)) {
    const inner = inviteFromPageUrl(link);
    return inner === undefined ? 'That web address holds no invite link.' : parseInviteLink(inner);
  }
  if (!link.startsWith(INVITE_PREFIX)) return `An invite link starts with ${INVITE_PREFIX}`;
  const query = link.slice(INVITE_PREFIX.length);
  if (!/^[A-Za-z0-9%._~&=-]*$/.test(query)) return 'The link contains characters an invite link never has; copy it again.';
  const values = new Map<string, string>();
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq);
    if (eq <= 0 || !['c', 'p', 's', 'a'].includes(name) || values.has(name)) {
      return 'The link is damaged; copy it again from the host.';
    }
    try {
      values.set(name, decodeURIComponent(part.slice(eq + 1)));
    } catch {
      return 'The link is damaged; copy it again from the host.';
    }
  }
  const c = values.get('c');
  const p = values.get('p');
  const s = values.get('s');
  if (c === undefined || p === undefined || s === undefined) return 'The link is incomplete; copy all of it.';
  if (!PARTY_ID_RE.test(p) || !INVITE_SECRET_RE.test(s)) return 'The link is incomplete or damaged; copy all of it again.';
  let url: URL;
  try {
    url = new URL(c);
  } catch {
    return 'The party server address in the link is damaged.';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'The party server address in the link is damaged.';
  return { controlUrl: url.origin, partyId: p, secret: s };
}

/**
 * The web link that opens a friend's OWN helper's page with the join form filled in: a browser
 * cannot open lanrage:// by itself, but every player runs a helper on this well-known port.
 */
export function friendsBrowserLink(inviteLink: string, port = DEFAULT_HELPER_HTTP_PORT): string {
  return `http://localhost:${port}/#/join?invite=${encodeURIComponent(inviteLink)}`;
}

/** The lanrage:// link in what was pasted: a friend may paste the browser link instead. */
export function inviteText(text: string): string {
  const t = text.trim();
  return /^https?:\/\//i.test(t) ? (inviteFromPageUrl(t) ?? t) : t;
}

/** The invite carried by a page URL or hash like `…#/join?invite=…`; undefined if none. */
export function inviteFromPageUrl(urlOrHash: string): string | undefined {
  const hash = urlOrHash.includes('#') ? urlOrHash.slice(urlOrHash.indexOf('#') + 1) : urlOrHash;
  const m = /^\/?join\?(.*)$/.exec(hash);
  if (!m) return undefined;
  const invite = new URLSearchParams(m[1]).get('invite');
  return invite === null || invite.length > INVITE_MAX ? undefined : invite;
}

// ---- how things read ------------------------------------------------------------------------

export const PATH_LABEL: Record<PathKind, string> = {
  [PathKind.PATH_KIND_UNSPECIFIED]: 'Connecting',
  [PathKind.PATH_KIND_CONNECTING]: 'Connecting',
  [PathKind.PATH_KIND_DIRECT]: 'Direct',
  [PathKind.PATH_KIND_RELAYED]: 'Relayed',
  [PathKind.PATH_KIND_UNREACHABLE]: 'Unreachable',
  [PathKind.UNRECOGNIZED]: 'Unknown',
};

/** A CSS-friendly name for the path, used for its colour and by tests. */
export function pathState(kind: PathKind): 'connecting' | 'direct' | 'relayed' | 'unreachable' | 'unknown' {
  switch (kind) {
    case PathKind.PATH_KIND_DIRECT:
      return 'direct';
    case PathKind.PATH_KIND_RELAYED:
      return 'relayed';
    case PathKind.PATH_KIND_UNREACHABLE:
      return 'unreachable';
    case PathKind.PATH_KIND_CONNECTING:
    case PathKind.PATH_KIND_UNSPECIFIED:
      return 'connecting';
    default:
      return 'unknown';
  }
}

/** Round trips as precise as they are measured: 0.42 ms on a LAN, 3.1 ms, 42 ms. */
export function formatRtt(ms: number): string {
  if (!(ms > 0)) return '—';
  // Bounds at the rounding points, so that 0.998 reads "1.0 ms", not "1.00 ms", and 9.97 "10 ms".
  if (ms < 0.995) return `${ms.toFixed(2)} ms`;
  return ms < 9.95 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

/** "4/4 answered, 0.4 ms via 203.0.113.6:41641 (direct)"; the average of the answers. */
export function summarizePing(results: readonly PingResult[]): string {
  const answered = results.filter((r) => r.answered);
  const head = `${answered.length}/${results.length} answered`;
  const last = answered[answered.length - 1];
  if (!last) return `${head}: no reply. The player's LANrage may be closed, or no path works yet.`;
  const avg = answered.reduce((sum, r) => sum + r.rttMs, 0) / answered.length;
  const via = last.via ? ` via ${last.via}` : '';
  return `${head}, ${formatRtt(avg)}${via} (${PATH_LABEL[last.path].toLowerCase()})`;
}

export type PartyAction = 'create' | 'join' | 'leave' | 'kick' | 'ping' | 'load';

/** A failed call, told to a player: what happened and what to do. */
export function describePartyError(err: unknown, action: PartyAction): string {
  if (!(err instanceof ApiError)) return err instanceof Error ? err.message : String(err);
  const detail = err.message ? ` (${err.message})` : '';
  switch (err.code) {
    case Code.PERMISSION_DENIED:
      if (action === 'join') {
        return 'The party did not accept this invite: its secret is wrong or out of date. Ask the host to send you the link again.';
      }
      if (action === 'kick') return 'Only the party host can remove players.';
      return `Your helper refused this${detail}.`;
    case Code.INVALID_ARGUMENT:
      if (action === 'join') return `That is not a working invite link${detail}. Copy the whole link again.`;
      if (action === 'create') return `The party server did not accept that name${detail}.`;
      return `The helper did not accept the request${detail}.`;
    case Code.UNAVAILABLE:
      return `The party server cannot be reached right now, so nothing changed. Check your internet connection; if it persists, the party server may be down${detail}.`;
    case Code.NOT_FOUND:
      if (action === 'join') return 'That party no longer exists. Ask the host for a new invite.';
      if (action === 'ping' || action === 'kick') return 'That player is no longer in the party.';
      return `Not found${detail}.`;
    case Code.FAILED_PRECONDITION:
    case Code.ALREADY_EXISTS:
      if (action === 'create' || action === 'join') return `You are already in a party; leave it first${detail}.`;
      return `Not possible right now${detail}.`;
    case Code.RESOURCE_EXHAUSTED:
      return `The party is full or the party server is busy${detail}.`;
    case Code.DEADLINE_EXCEEDED:
      return 'No answer in time. The party server may be slow or unreachable; try again.';
    case Code.UNAUTHENTICATED:
      return 'Your helper did not accept this page’s session. Reload the page and try again.';
    case Code.UNIMPLEMENTED:
      return 'This helper cannot host or join parties yet. Update LANrage.';
    case Code.UNKNOWN:
      if (/status code: 0\b/.test(err.message)) return 'Your LANrage helper did not answer. Is it still running?';
      return `Something went wrong${detail}.`;
    default:
      return `Something went wrong${detail}.`;
  }
}

/** The members in the order a player scans them: you, the host, then by name. */
export function sortedMembers(party: Party): PartyMember[] {
  const rank = (m: PartyMember): number => (m.isSelf ? 0 : m.isHost ? 1 : 2);
  return [...party.members].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

export const isAway = (m: PartyMember): boolean => m.presence === MemberPresence.MEMBER_PRESENCE_AWAY;

/** True when this helper hosts `party` (only the host may kick). */
export const selfIsHost = (party: Party): boolean => party.members.some((m) => m.isSelf && m.isHost);

/**
 * What the invite card must say about who the link reaches: a warning when it works only on this
 * LAN (the router did not forward the embedded control server's port), a note for partial mappings.
 */
export function inviteReachNotice(party: Pick<Party, 'inviteReach' | 'inviteNote'>): { warn: boolean; text: string } | null {
  if (party.inviteReach === InviteReach.INVITE_REACH_LAN_ONLY) return { warn: true, text: party.inviteNote || 'This invite works only on your LAN.' };
  return party.inviteNote ? { warn: false, text: party.inviteNote } : null;
}
