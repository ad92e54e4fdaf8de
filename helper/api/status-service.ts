import { HelperServiceService, type GetStatusResponse } from '../gen/lanrage/v1/helper.js';
import type { HelperState } from '../core/helper-state.js';
import type { LanStats } from '../gen/lanrage/v1/network.js';
import type { Handler } from './wrap.js';

export const statusDefinition = HelperServiceService;

export function statusHandlers(state: HelperState, lan?: () => LanStats): Record<string, Handler> {
  return { getStatus: (): GetStatusResponse => ({ status: state.status(), ...(lan ? { lan: lan() } : {}) }) };
}
