import { flag, type ParsedArgs } from '../core/args.js';
import type { Logger } from '../core/log.js';
import { CLIENT_ID_RE } from '../discord/config.js';
import { PresenceAgent } from '../presence/agent.js';
import { DEFAULT_GRPC_PORT } from '../core/ports.js';

// `lanrage presence [--grpc HOST:PORT] [--client-id ID]`: the per-user Rich Presence agent.
export function startPresenceRole(args: ParsedArgs, log: Logger): PresenceAgent {
  const clientId = flag(args, 'client-id');
  if (clientId !== undefined && !CLIENT_ID_RE.test(clientId)) throw new Error('--client-id must be a Discord application id (17-20 digits)');
  if (process.getuid?.() === 0) log.warn('the presence agent runs as root: Discord runs in your user session, so start it as your user (the autostart files in installers/ do)');
  const retry = flag(args, 'retry-ms');
  const agent = new PresenceAgent({
    target: flag(args, 'grpc') ?? `127.0.0.1:${DEFAULT_GRPC_PORT}`,
    log,
    ...(clientId !== undefined && { clientId }),
    ...(retry !== undefined && { discordRetryMs: Math.max(100, Number(retry) || 5000), helperRetryMs: Math.max(100, Number(retry) || 2000) }),
  });
  agent.start();
  return agent;
}
