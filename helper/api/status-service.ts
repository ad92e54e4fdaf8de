import { HelperServiceService, type GetStatusResponse } from '../gen/lanrage/v1/helper.js';
import type { HelperState } from '../core/helper-state.js';
import type { Handler } from './wrap.js';

export const statusDefinition = HelperServiceService;

export function statusHandlers(state: HelperState): Record<string, Handler> {
  return { getStatus: (): GetStatusResponse => ({ status: state.status() }) };
}
