import type { Logger } from '../core/log.js';
import type { Party } from '../gen/lanrage/v1/party.js';
import { presenceFor, RunningGames, samePresence, type Presence } from './activity.js';
import { DiscordIpc } from './discord-ipc.js';
import { HelperFeed } from './helper-feed.js';

// `lanrage presence`: a small per-user agent. The root helper must not reach into a user's
// session, and Discord's IPC socket is only reachable from it; so this process, started with the
// user's session, follows the helper's Watch stream and shows the party in Discord.

export interface PresenceAgentOptions {
  /** The helper's gRPC address, "127.0.0.1:8667". */
  target: string;
  log: Logger;
  /** Overrides the client id configured in the helper (ConnectDiscord client_id). */
  clientId?: string;
  discordRetryMs?: number;
  helperRetryMs?: number;
}

export class PresenceAgent {
  readonly ipc: DiscordIpc;
  private readonly feed: HelperFeed;
  private readonly games = new RunningGames();
  private party: Party | undefined;
  private enabled = false;
  private shown: Presence | null = null;

  constructor(private readonly o: PresenceAgentOptions) {
    this.ipc = new DiscordIpc(o.log.child({ part: 'discord-ipc' }), o.discordRetryMs);
    this.feed = new HelperFeed(
      o.target,
      {
        onSettings: (s) => {
          const id = o.clientId ?? s.clientId;
          this.enabled = s.richPresence || o.clientId !== undefined;
          if (!this.enabled || !id) o.log.info('Rich Presence is off in LANrage (lanrage discord connect --rich-presence --client-id ID); waiting');
          this.ipc.setClientId(this.enabled ? id : '');
          this.update();
        },
        onEvent: (e) => {
          if (e.party) {
            this.party = e.party.party;
            this.update();
          } else if (e.gameDetection) {
            if (this.games.apply(e.gameDetection)) this.update();
          }
        },
        onLost: () => {
          this.party = undefined;
          this.update();
        },
      },
      o.log.child({ part: 'helper-feed' }),
      o.helperRetryMs,
    );
  }

  start(): void {
    this.feed.start();
  }

  async close(): Promise<void> {
    this.feed.close();
    await this.ipc.close();
  }

  private update(): void {
    const next = this.enabled ? presenceFor(this.party, this.games.current()) : null;
    if (samePresence(next, this.shown)) return;
    this.shown = next;
    this.ipc.show(next);
  }
}
