import { ApiError, Status } from '../core/api-error.js';
import type { Hub } from '../core/hub.js';
import type { Logger } from '../core/log.js';
import type { WatchEvent } from '../core/helper-state.js';
import { DiscordWebhookState, type DiscordStatus } from '../gen/lanrage/v1/discord.js';
import type { Party } from '../gen/lanrage/v1/party.js';
import type { StateRepo } from '../store/state-repo.js';
import { realClock, type Clock } from './clock.js';
import { CLIENT_ID_RE, DISCORD_KEY, EMPTY_CONFIG, isDiscordConfig, type DiscordConfig } from './config.js';
import type { DiscordEvent } from './events.js';
import { gameEvent, serverEvent } from './game-events.js';
import { httpWebhookTransport } from './http-transport.js';
import { diffParty } from './party-diff.js';
import { WebhookQueue, type QueueState, type WebhookTransport } from './webhook-queue.js';
import { parseWebhookUrl } from './webhook-url.js';

// The helper's Discord side: keeps the configuration, follows the live events (party, games,
// servers) and feeds one webhook queue. Everything Discord-specific lives in this folder; the
// helper wires it with a subscription to its event hub and the leave reasons of the party engine.

const STATE: Record<QueueState, DiscordWebhookState> = {
  ok: DiscordWebhookState.DISCORD_WEBHOOK_STATE_OK,
  'rate-limited': DiscordWebhookState.DISCORD_WEBHOOK_STATE_RATE_LIMITED,
  retrying: DiscordWebhookState.DISCORD_WEBHOOK_STATE_RETRYING,
  disabled: DiscordWebhookState.DISCORD_WEBHOOK_STATE_DISABLED,
};

export interface DiscordNotifierOptions {
  events: Hub<WatchEvent>;
  store: StateRepo;
  log: Logger;
  deviceName(): string;
  /** --discord-test-loopback: also accept http://127.0.0.1 webhooks (tests only). */
  allowLoopback?: boolean;
  clock?: Clock;
  transportFor?: (url: string) => WebhookTransport;
  mergeWindowMs?: number;
}

export interface ConnectRequest {
  webhookUrl: string;
  clientId: string;
  richPresence: boolean;
}

export class DiscordNotifier {
  private cfg: DiscordConfig;
  private queue: WebhookQueue | undefined;
  private party: Party | undefined;
  private readonly reasons = new Map<string, 'left' | 'kicked' | 'timed-out' | 'unknown'>();
  private readonly games = new Map<number, boolean>();
  private readonly servers = new Set<string>();
  private readonly unsubscribe: () => void;
  private readonly log: Logger;

  constructor(private readonly o: DiscordNotifierOptions) {
    this.log = o.log.child({ part: 'discord' });
    this.cfg = o.store.get(DISCORD_KEY, isDiscordConfig) ?? { ...EMPTY_CONFIG };
    if (this.cfg.webhookUrl) {
      const w = parseWebhookUrl(this.cfg.webhookUrl, { allowLoopback: o.allowLoopback === true });
      if (typeof w === 'string') {
        this.log.warn('the stored Discord webhook is not accepted any more; connect it again', { why: w });
      } else this.queue = this.newQueue(w.url, w.id);
    }
    this.unsubscribe = o.events.subscribe((e) => this.onEvent(e));
  }

  /** The party engine's reason for a member leaving; it comes just before the party event. */
  memberLeft(deviceId: string, reason: 'left' | 'kicked' | 'timed-out' | 'unknown'): void {
    this.reasons.set(deviceId, reason);
  }

  config(): Readonly<Omit<DiscordConfig, 'webhookUrl'>> {
    return { clientId: this.cfg.clientId, richPresence: this.cfg.richPresence };
  }

  connect(req: ConnectRequest): DiscordStatus {
    const clientId = req.clientId.trim();
    if (clientId !== '' && !CLIENT_ID_RE.test(clientId)) {
      throw new ApiError(Status.INVALID_ARGUMENT, 'client_id must be a Discord application id (17-20 digits, from the Discord developer portal), or empty');
    }
    if (req.richPresence && clientId === '' && this.cfg.clientId === '') {
      throw new ApiError(Status.INVALID_ARGUMENT, 'rich_presence needs a client_id: the id of a Discord application (Discord developer portal → Applications)');
    }
    let webhook: { url: string; id: string } | undefined;
    if (req.webhookUrl.trim() !== '') {
      const w = parseWebhookUrl(req.webhookUrl, { allowLoopback: this.o.allowLoopback === true });
      if (typeof w === 'string') throw new ApiError(Status.INVALID_ARGUMENT, `webhook_url: ${w}`);
      webhook = w;
    }
    const next: DiscordConfig = {
      webhookUrl: webhook?.url ?? this.cfg.webhookUrl,
      clientId: clientId || this.cfg.clientId,
      richPresence: req.richPresence,
    };
    this.o.store.put(DISCORD_KEY, next);
    this.cfg = next;
    // A new webhook (or the same one again after Discord disabled it) starts a fresh queue and
    // says hello, so the user sees at once in Discord that it works.
    if (webhook) {
      this.queue?.close();
      this.queue = this.newQueue(webhook.url, webhook.id);
      this.queue.push({ kind: 'connected', device: this.o.deviceName() });
      this.log.info('Discord webhook connected', { webhook: webhook.id });
    }
    return this.status();
  }

  disconnect(): void {
    this.queue?.close();
    this.queue = undefined;
    this.cfg = { ...EMPTY_CONFIG };
    this.o.store.delete(DISCORD_KEY);
    this.log.info('Discord disconnected');
  }

  status(): DiscordStatus {
    const q = this.queue?.status();
    return {
      connected: q !== undefined && q.state !== 'disabled',
      userName: '',
      richPresence: this.cfg.richPresence,
      webhookConfigured: this.cfg.webhookUrl !== '',
      webhookState: q ? STATE[q.state] : DiscordWebhookState.DISCORD_WEBHOOK_STATE_NONE,
      webhookProblem: q?.problem ?? '',
      clientId: this.cfg.clientId,
      pendingEvents: q?.pending ?? 0,
      sentMessages: q?.sent ?? 0,
    };
  }

  close(): void {
    this.unsubscribe();
    this.queue?.close();
  }

  private newQueue(url: string, id: string): WebhookQueue {
    const log = this.log.child({ webhook: id });
    return new WebhookQueue({
      transport: (this.o.transportFor ?? ((u) => httpWebhookTransport(u)))(url),
      clock: this.o.clock ?? realClock,
      ...(this.o.mergeWindowMs !== undefined && { mergeWindowMs: this.o.mergeWindowMs }),
      onSent: () => log.debug('Discord message sent'),
      onProblem: (why) => log.info('Discord webhook problem', { why }),
      onDisabled: (why) => log.warn('Discord webhook disabled', { why }),
    });
  }

  private post(e: DiscordEvent): void {
    this.queue?.push(e);
  }

  private selfName(): string {
    return this.party?.members.find((m) => m.isSelf)?.name ?? this.o.deviceName();
  }

  private onEvent(e: WatchEvent): void {
    if (e.party) {
      const after = e.party.party;
      for (const ev of diffParty(this.party, after, this.reasons)) this.post(ev);
      this.party = after;
      this.reasons.clear();
    } else if (e.gameDetection) {
      const d = e.gameDetection;
      const ev = gameEvent(d, this.selfName(), this.games.get(d.pid) === true);
      if (d.running) this.games.set(d.pid, true);
      else this.games.delete(d.pid);
      if (ev) this.post(ev);
    } else if (e.server?.server) {
      const s = e.server.server;
      const selfId = this.party?.members.find((m) => m.isSelf)?.deviceId;
      if (!selfId || s.hostDeviceId !== selfId) return;
      const ev = serverEvent(s, e.server.removed, this.servers.has(s.id), () => s.gameName);
      if (e.server.removed) this.servers.delete(s.id);
      else this.servers.add(s.id);
      if (ev) this.post(ev);
    }
  }
}
