import {
  GameServiceService,
  type CreateCustomGameProfileRequest,
  type CreateCustomGameProfileResponse,
  type DeleteCustomGameProfileRequest,
  type ListGameDetectionsResponse,
  type ListGameProfilesResponse,
  type ListGameSessionsRequest,
  type ListGameSessionsResponse,
} from '../gen/lanrage/v1/games.js';
import { ApiError, invalidArgument, Status } from '../core/api-error.js';
import { CatalogError, type GameCatalog } from '../games/catalog.js';
import type { GameDetector } from '../games/detector.js';
import { fromProtoProfile, toProtoDetection, toProtoProfile, toProtoSession } from '../games/proto.js';
import type { GameSessionsRepo } from '../store/game-sessions-repo.js';
import type { Handler } from './wrap.js';

export const gameDefinition = GameServiceService;
export const gameMutating = new Set(['createCustomGameProfile', 'deleteCustomGameProfile']);

function toApiError(err: unknown): unknown {
  if (!(err instanceof CatalogError)) return err;
  const code = { invalid: Status.INVALID_ARGUMENT, exists: Status.ALREADY_EXISTS, 'not-found': Status.NOT_FOUND, full: Status.RESOURCE_EXHAUSTED }[err.kind];
  return new ApiError(code, err.message);
}

const DEFAULT_PAGE = 50;
const MAX_PAGE = 500;
const PAGE_TOKEN_RE = /^[1-9][0-9]{0,15}$/;
const PROFILE_FILTER_RE = /^[a-z0-9._-]{0,64}$/;

export function gameHandlers(catalog: GameCatalog, detector: GameDetector, sessions?: GameSessionsRepo): Record<string, Handler> {
  const nameOf = (id: string): string => catalog.get(id)?.name ?? id;
  return {
    listGameProfiles: (): ListGameProfilesResponse => ({ profiles: catalog.all().map(toProtoProfile) }),
    listGameDetections: (): ListGameDetectionsResponse => ({
      detections: detector.running().map((d) => toProtoDetection(d, nameOf(d.profileId), true)),
    }),
    createCustomGameProfile: (req: CreateCustomGameProfileRequest): CreateCustomGameProfileResponse => {
      if (!req.profile) throw invalidArgument('profile is required');
      try {
        return { profile: toProtoProfile(catalog.addCustom(fromProtoProfile(req.profile))) };
      } catch (err) {
        throw toApiError(err);
      }
    },
    deleteCustomGameProfile: (req: DeleteCustomGameProfileRequest) => {
      if (req.id === '' || req.id.length > 64) throw invalidArgument('id must be the id of a custom game profile (custom-...)');
      try {
        catalog.deleteCustom(req.id);
      } catch (err) {
        throw toApiError(err);
      }
      return {};
    },
    listGameSessions: (req: ListGameSessionsRequest): ListGameSessionsResponse => {
      if (req.pageSize > MAX_PAGE) throw invalidArgument(`page_size must be 1-${MAX_PAGE} (0 means ${DEFAULT_PAGE}), got ${req.pageSize}`);
      if (req.pageToken !== '' && !PAGE_TOKEN_RE.test(req.pageToken)) throw invalidArgument('page_token must be a next_page_token from a previous ListGameSessions response, or empty');
      if (!PROFILE_FILTER_RE.test(req.profileId)) throw invalidArgument('profile_id must be a game profile id (a-z 0-9 . _ -, at most 64) or empty');
      if (!sessions) return { sessions: [], nextPageToken: '' };
      const limit = req.pageSize || DEFAULT_PAGE;
      // One more than asked tells whether an older page exists.
      const rows = sessions.list(limit + 1, req.pageToken === '' ? 0 : Number(req.pageToken), req.profileId);
      const page = rows.slice(0, limit);
      return { sessions: page.map(toProtoSession), nextPageToken: rows.length > limit ? String(page[page.length - 1]!.id) : '' };
    },
  };
}
