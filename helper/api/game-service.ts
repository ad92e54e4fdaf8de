import {
  GameServiceService,
  type CreateCustomGameProfileRequest,
  type CreateCustomGameProfileResponse,
  type DeleteCustomGameProfileRequest,
  type ListGameDetectionsResponse,
  type ListGameProfilesResponse,
} from '../gen/lanrage/v1/games.js';
import { ApiError, invalidArgument, Status } from '../core/api-error.js';
import { CatalogError, type GameCatalog } from '../games/catalog.js';
import type { GameDetector } from '../games/detector.js';
import { fromProtoProfile, toProtoDetection, toProtoProfile } from '../games/proto.js';
import type { Handler } from './wrap.js';

export const gameDefinition = GameServiceService;
export const gameMutating = new Set(['createCustomGameProfile', 'deleteCustomGameProfile']);

function toApiError(err: unknown): unknown {
  if (!(err instanceof CatalogError)) return err;
  const code = { invalid: Status.INVALID_ARGUMENT, exists: Status.ALREADY_EXISTS, 'not-found': Status.NOT_FOUND, full: Status.RESOURCE_EXHAUSTED }[err.kind];
  return new ApiError(code, err.message);
}

export function gameHandlers(catalog: GameCatalog, detector: GameDetector): Record<string, Handler> {
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
  };
}
