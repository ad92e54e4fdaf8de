import { DiscordServiceService, type ConnectDiscordRequest, type ConnectDiscordResponse, type GetDiscordStatusResponse } from '../gen/lanrage/v1/discord.js';
import type { DiscordNotifier } from '../discord/notifier.js';
import type { Handler } from './wrap.js';

export const discordDefinition = DiscordServiceService;
export const discordMutating = new Set(['connectDiscord', 'disconnectDiscord']);

export function discordHandlers(n: DiscordNotifier): Record<string, Handler> {
  return {
    getDiscordStatus: (): GetDiscordStatusResponse => ({ status: n.status() }),
    connectDiscord: (req: ConnectDiscordRequest): ConnectDiscordResponse => ({
      status: n.connect({ webhookUrl: req.webhookUrl, clientId: req.clientId, richPresence: req.richPresence }),
    }),
    disconnectDiscord: () => {
      n.disconnect();
      return {};
    },
  };
}
