import { readFileSync } from 'node:fs';
import { Metadata } from '@grpc/grpc-js';
import { flag } from '../core/args.js';
import { DiscordServiceClient, DiscordWebhookState, type ConnectDiscordRequest, type ConnectDiscordResponse, type DiscordStatus, type GetDiscordStatusResponse } from '../gen/lanrage/v1/discord.js';
import { unary, withClient } from './call.js';
import { CliError } from './context.js';
import type { Command } from './commands.js';

const STATE_TEXT: Record<number, string> = {
  [DiscordWebhookState.DISCORD_WEBHOOK_STATE_NONE]: 'not configured',
  [DiscordWebhookState.DISCORD_WEBHOOK_STATE_OK]: 'working',
  [DiscordWebhookState.DISCORD_WEBHOOK_STATE_RATE_LIMITED]: 'waiting for Discord’s rate limit (nothing is lost)',
  [DiscordWebhookState.DISCORD_WEBHOOK_STATE_RETRYING]: 'retrying',
  [DiscordWebhookState.DISCORD_WEBHOOK_STATE_DISABLED]: 'disabled',
};

function print(s: DiscordStatus, out: (l: string) => void, json: boolean): void {
  if (json) {
    const state = (DiscordWebhookState[s.webhookState] ?? 'DISCORD_WEBHOOK_STATE_UNSPECIFIED').replace('DISCORD_WEBHOOK_STATE_', '').toLowerCase();
    return out(JSON.stringify({ ...s, webhookState: state }));
  }
  out(`webhook        ${s.webhookConfigured ? STATE_TEXT[s.webhookState] ?? 'unknown' : 'not configured'}`);
  if (s.webhookProblem) out(`problem        ${s.webhookProblem}`);
  if (s.webhookConfigured) out(`messages       ${s.sentMessages} sent, ${s.pendingEvents} events waiting`);
  out(`rich presence  ${s.richPresence ? `on (application ${s.clientId}; run \`lanrage presence\` in your session)` : 'off'}`);
}

const onOff = (v: string | undefined): boolean | undefined => {
  if (v === undefined) return undefined;
  if (['on', 'true', 'yes', '1'].includes(v.toLowerCase())) return true;
  if (['off', 'false', 'no', '0'].includes(v.toLowerCase())) return false;
  throw new CliError('--rich-presence takes on or off');
};

export const discordCommand: Command = {
  name: 'discord',
  usage: 'discord [connect WEBHOOK_URL|- [--client-id ID] [--rich-presence on|off] | disconnect]',
  summary: 'Discord: webhook notifications and Rich Presence (- reads the URL from stdin)',
  async run(args, ctx) {
    await withClient(DiscordServiceClient, ctx, async (client) => {
      const [, verb, url] = args.positional;
      if (verb === undefined || verb === 'status') {
        const res = await unary<object, GetDiscordStatusResponse>(client, client.getDiscordStatus, {}, new Metadata(), ctx.deadline());
        if (res.status) print(res.status, ctx.out, ctx.json);
        return;
      }
      if (verb === 'disconnect') {
        await unary(client, client.disconnectDiscord, {}, ctx.authMetadata(), ctx.deadline());
        if (!ctx.json) ctx.out('Discord disconnected: the webhook is forgotten and Rich Presence is off.');
        else ctx.out(JSON.stringify({ disconnected: true }));
        return;
      }
      if (verb !== 'connect') throw new CliError('usage: lanrage discord [connect WEBHOOK_URL|- [--client-id ID] [--rich-presence on|off] | disconnect]');
      // A URL typed on the command line lands in the shell history; `-` reads it from stdin.
      const webhookUrl = url === '-' ? readFileSync(0, 'utf8').trim() : (url ?? '');
      const current = await unary<object, GetDiscordStatusResponse>(client, client.getDiscordStatus, {}, new Metadata(), ctx.deadline());
      const richPresence = onOff(flag(args, 'rich-presence')) ?? current.status?.richPresence ?? false;
      const res = await unary<ConnectDiscordRequest, ConnectDiscordResponse>(
        client,
        client.connectDiscord,
        { webhookUrl, clientId: flag(args, 'client-id') ?? '', richPresence },
        ctx.authMetadata(),
        ctx.deadline(),
      );
      if (res.status) print(res.status, ctx.out, ctx.json);
    });
  },
};
