import { credentials, Metadata, type ClientReadableStream } from '@grpc/grpc-js';
import { DiscordServiceClient, type DiscordStatus } from '../gen/lanrage/v1/discord.js';
import { WatchServiceClient, WatchTopic, type WatchResponse } from '../gen/lanrage/v1/watch.js';
import type { Logger } from '../core/log.js';

// The agent's view of the local helper: the Watch stream (party and game events) and the Discord
// settings, read-only, as the user (no install token: nothing here changes the helper). The
// stream is re-opened when the helper rotates it, restarts or is not running yet; the settings
// are re-read each time, so a change of client id or of the rich-presence switch applies within
// one stream rotation (120 s) or at once after a helper restart.

export interface FeedHandlers {
  onSettings(s: DiscordStatus): void;
  onEvent(e: WatchResponse): void;
  /** The helper stopped answering: whatever it said before is stale. */
  onLost(): void;
}

export class HelperFeed {
  private readonly watch: WatchServiceClient;
  private readonly discord: DiscordServiceClient;
  private stream: ClientReadableStream<WatchResponse> | undefined;
  private closed = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(target: string, private readonly h: FeedHandlers, private readonly log: Logger, private readonly retryMs = 2000) {
    this.watch = new WatchServiceClient(target, credentials.createInsecure());
    this.discord = new DiscordServiceClient(target, credentials.createInsecure());
  }

  start(): void {
    void this.open();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.stream?.cancel();
    this.watch.close();
    this.discord.close();
  }

  private retry(why: string): void {
    if (this.closed) return;
    this.stream = undefined;
    this.failures++;
    // Quiet while the helper is away: one line when it goes, then debug.
    if (this.failures === 1) this.log.info('the LANrage helper is not answering; waiting for it', { why });
    else this.log.debug('helper still not answering', { why });
    this.h.onLost();
    this.timer = setTimeout(() => void this.open(), Math.min(30_000, this.retryMs * Math.min(this.failures, 8)));
  }

  private async open(): Promise<void> {
    if (this.closed) return;
    const status = await new Promise<DiscordStatus | Error>((resolve) =>
      this.discord.getDiscordStatus({}, new Metadata(), { deadline: Date.now() + 5000 }, (err, res) => resolve(err ?? res.status ?? new Error('no status'))),
    );
    if (status instanceof Error) return this.retry(status.message);
    this.h.onSettings(status);
    const s = this.watch.watch({ topics: [WatchTopic.WATCH_TOPIC_PARTY, WatchTopic.WATCH_TOPIC_GAMES], maxDurationSeconds: 0 });
    this.stream = s;
    let rotated = false;
    s.on('data', (e: WatchResponse) => {
      if (this.failures > 0) this.log.info('connected to the LANrage helper');
      this.failures = 0;
      if (e.rotation) rotated = true;
      else this.h.onEvent(e);
    });
    s.on('error', (err: Error) => {
      if (this.stream === s && !this.closed) this.retry(err.message);
    });
    s.on('end', () => {
      if (this.stream !== s || this.closed) return;
      if (rotated) void this.open();
      else this.retry('the stream ended');
    });
  }
}
