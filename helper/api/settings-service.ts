import { SettingsServiceService, type GetSettingsResponse, type UpdateSettingsRequest, type UpdateSettingsResponse } from '../gen/lanrage/v1/settings.js';
import { invalidArgument } from '../core/api-error.js';
import { mergeSettings } from '../core/settings.js';
import type { HelperState } from '../core/helper-state.js';
import type { Handler } from './wrap.js';

export const settingsDefinition = SettingsServiceService;
export const settingsMutating = new Set(['updateSettings']);

export function settingsHandlers(state: HelperState): Record<string, Handler> {
  return {
    getSettings: (): GetSettingsResponse => ({ settings: state.settings }),
    updateSettings: (req: UpdateSettingsRequest): UpdateSettingsResponse => {
      if (!req.settings) throw invalidArgument('settings is required: send the new values in "settings" and their names in "update_mask"');
      const { merged, errors } = mergeSettings(state.settings, req.settings, req.updateMask ?? []);
      if (errors.length > 0) throw invalidArgument(errors.join('; '));
      state.saveSettings(merged);
      return { settings: state.settings };
    },
  };
}
