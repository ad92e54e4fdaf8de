// The Discord configuration as stored (StateRepo record "discord", in helper.db). The webhook URL
// is a secret: it is read only by the notifier and never leaves the helper through the API.

export const DISCORD_KEY = 'discord';

export interface DiscordConfig {
  webhookUrl: string;
  clientId: string;
  richPresence: boolean;
}

export const EMPTY_CONFIG: DiscordConfig = { webhookUrl: '', clientId: '', richPresence: false };

export const isDiscordConfig = (v: unknown): v is DiscordConfig =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as Record<string, unknown>)['webhookUrl'] === 'string' &&
  typeof (v as Record<string, unknown>)['clientId'] === 'string' &&
  typeof (v as Record<string, unknown>)['richPresence'] === 'boolean';

/** Discord application ids are snowflakes: 17-20 digits. */
export const CLIENT_ID_RE = /^\d{17,20}$/;
