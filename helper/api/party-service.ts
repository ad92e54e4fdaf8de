import {
  PartyServiceService,
  type CreatePartyRequest,
  type CreatePartyResponse,
  type GetPartyResponse,
  type JoinPartyRequest,
  type JoinPartyResponse,
  type KickPartyMemberRequest,
} from '../gen/lanrage/v1/party.js';
import { PeerServiceService, type ListPeersResponse, type PingPeerRequest, type PingPeerResponse } from '../gen/lanrage/v1/peer.js';
import { invalidArgument } from '../core/api-error.js';
import type { PartyEngine } from '../party/engine.js';
import type { CallContext, Handler } from './wrap.js';
import { redactForViewer } from './redact.js';

export const partyDefinition = PartyServiceService;
export const partyMutating = new Set(['createParty', 'joinParty', 'leaveParty', 'kickPartyMember']);
export const peerDefinition = PeerServiceService;
export const peerMutating = new Set(['pingPeer']);

export const PARTY_NAME_RE = /^[\p{L}\p{N}][\p{L}\p{N} ._'!-]{0,47}$/u;
const MAX_LINK = 1024;

export function partyHandlers(engine: PartyEngine): Record<string, Handler> {
  return {
    createParty: async (req: CreatePartyRequest): Promise<CreatePartyResponse> => {
      if (!PARTY_NAME_RE.test(req.name)) throw invalidArgument("name must be 1-48 characters: letters, digits, space and . _ ' ! -");
      return { party: await engine.create(req.name) };
    },
    joinParty: async (req: JoinPartyRequest): Promise<JoinPartyResponse> => {
      if (req.inviteLink.length === 0 || req.inviteLink.length > MAX_LINK) throw invalidArgument('invite_link must be the lanrage:// link the host shared');
      return { party: await engine.join(req.inviteLink) };
    },
    leaveParty: async () => {
      await engine.leave();
      return {};
    },
    getParty: (_req: unknown, ctx: CallContext): GetPartyResponse => {
      const party = engine.current();
      return { party: party && ctx.redactSecrets ? redactForViewer(party) : party };
    },
    kickPartyMember: async (req: KickPartyMemberRequest) => {
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(req.deviceId)) throw invalidArgument('device_id is not a device id');
      await engine.kick(req.deviceId);
      return {};
    },
  };
}

export function peerHandlers(engine: PartyEngine): Record<string, Handler> {
  return {
    listPeers: (): ListPeersResponse => ({ peers: engine.peers() }),
    pingPeer: async (req: PingPeerRequest): Promise<PingPeerResponse> => {
      const count = req.count === 0 ? 4 : req.count;
      if (count < 1 || count > 20) throw invalidArgument('count must be 1-20');
      if (req.peer.length === 0 || req.peer.length > 64) throw invalidArgument('peer must be a device id, name or virtual IP');
      return { results: await engine.ping(req.peer, count) };
    },
  };
}
