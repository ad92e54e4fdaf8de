// Discord: the RPCs and a mirror of the helper's checks (helper/discord/webhook-url.ts and
// config.ts stay the authority). The webhook URL only ever goes in: the helper never returns it.
import {
  ConnectDiscordRequest,
  DisconnectDiscordRequest,
  DiscordServiceDefinition,
  DiscordWebhookState,
  GetDiscordStatusRequest,
  type DiscordStatus,
} from '../gen/lanrage/v1/discord.js';
import { unary } from '../api/transport.js';

export type { DiscordStatus };
export { DiscordWebhookState };

export async function getDiscordStatus(): Promise<DiscordStatus> {
  const res = await unary(DiscordServiceDefinition, DiscordServiceDefinition.methods.getDiscordStatus, GetDiscordStatusRequest.fromPartial({}));
  if (!res.status) throw new Error('The helper answered without a Discord status.');
  return res.status;
}

/** webhookUrl '' keeps the stored webhook. Needs the install token. */
export async function connectDiscord(webhookUrl: string, clientId: string, richPresence: boolean): Promise<DiscordStatus> {
  const res = await unary(
    DiscordServiceDefinition,
    DiscordServiceDefinition.methods.connectDiscord,
    ConnectDiscordRequest.fromPartial({ webhookUrl, clientId, richPresence }),
    { auth: true },
  );
  if (!res.status) throw new Error('The helper answered without a Discord status.');
  return res.status;
}

export async function disconnectDiscord(): Promise<void> {
  await unary(DiscordServiceDefinition, DiscordServiceDefinition.methods.disconnectDiscord, DisconnectDiscordRequest.fromPartial({}), { auth: true });
}

const HOSTS = ['discord.com', 'discordapp.com', 'canary.discord.com', 'ptb.discord.com', 'canary.discordapp.com', 'ptb.discordapp.com'];

/** A message for the form, or undefined when the URL looks like a Discord webhook (or is empty). */
export function webhookUrlProblem(text: string): string | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  let u: URL;
  try {
    u = new URL(t);
  } catch {
    return 'Paste the URL from Discord: channel settings → Integrations → Webhooks → Copy Webhook URL.';
  }
  if (u.protocol !== 'https:' || !HOSTS.includes(u.hostname)) return 'Only Discord webhook URLs (https://discord.com/api/webhooks/…) are accepted.';
  if (!/^\/api(\/v\d{1,2})?\/webhooks\/\d{17,20}\/[A-Za-z0-9_-]{20,100}\/?$/.test(u.pathname)) return 'The URL should end in /api/webhooks/ID/TOKEN.';
  return undefined;
}

export function clientIdProblem(text: string): string | undefined {
  const t = text.trim();
  return t === '' || /^\d{17,20}$/.test(t) ? undefined : 'A Discord application id is 17–20 digits.';
}

export function webhookStateText(s: DiscordStatus): string {
  if (!s.webhookConfigured) return 'No webhook: party news is not posted.';
  switch (s.webhookState) {
    case DiscordWebhookState.DISCORD_WEBHOOK_STATE_OK:
      return `Working: ${s.sentMessages} message${s.sentMessages === 1 ? '' : 's'} sent since the helper started.`;
    case DiscordWebhookState.DISCORD_WEBHOOK_STATE_RATE_LIMITED:
      return `Waiting for Discord's rate limit; ${s.pendingEvents} event${s.pendingEvents === 1 ? '' : 's'} will follow in one message.`;
    case DiscordWebhookState.DISCORD_WEBHOOK_STATE_RETRYING:
      return `Retrying: ${s.webhookProblem}`;
    case DiscordWebhookState.DISCORD_WEBHOOK_STATE_DISABLED:
      return `Stopped: ${s.webhookProblem}`;
    default:
      return 'Configured.';
  }
}
