// The tab's one Watch stream (browsers allow six HTTP/1.1 connections per host; every live view
// shares this one). It feeds liveStore and keeps itself alive across rotations and outages.
import { serversStore } from './servers.js';
import { WatchRequest, WatchServiceDefinition, WatchTopic, type WatchResponse } from '../gen/lanrage/v1/watch.js';
import { serverStream } from '../api/transport.js';
import type { ApiError } from '../api/errors.js';
import { liveStore, type LiveStore } from './store.js';
import { gamesStore } from './games.js';

const BACKOFF_MIN_MS = 1_000;
const BACKOFF_MAX_MS = 10_000;
// Metrics arrive about every second; this much silence means a stalled connection (a sleeping
// laptop, a proxy holding the socket) that will never report an error by itself.
const SILENCE_LIMIT_MS = 15_000;

export interface LiveOptions {
  /** Stream length before the server rotates it; 0 = server default. */
  maxDurationSeconds?: number;
}

export class LiveConnection {
  private cancel: (() => void) | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private silenceTimer: ReturnType<typeof setTimeout> | undefined;
  private backoffMs = BACKOFF_MIN_MS;
  private running = false;

  constructor(
    private readonly store: LiveStore,
    private readonly opts: LiveOptions = {},
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.open();
  }

  stop(): void {
    this.running = false;
    this.cancel?.();
    this.cancel = undefined;
    clearTimeout(this.retryTimer);
    clearTimeout(this.silenceTimer);
  }

  /** Skips the wait of the current backoff (e.g. the tab became visible again). */
  retryNow(): void {
    if (!this.running || this.cancel) return;
    clearTimeout(this.retryTimer);
    this.open();
  }

  private open(): void {
    this.retryTimer = undefined;
    let rotated = false;
    const request = WatchRequest.fromPartial({
      topics: [
        WatchTopic.WATCH_TOPIC_HELPER_STATUS,
        WatchTopic.WATCH_TOPIC_PARTY,
        WatchTopic.WATCH_TOPIC_PEERS,
        WatchTopic.WATCH_TOPIC_METRICS,
        WatchTopic.WATCH_TOPIC_LAN,
        WatchTopic.WATCH_TOPIC_NAT_REPORT,
        WatchTopic.WATCH_TOPIC_SERVERS,
        WatchTopic.WATCH_TOPIC_GAMES,
      ],
      maxDurationSeconds: this.opts.maxDurationSeconds ?? 0,
    });
    this.store.streamOpened();
    this.armSilenceTimer();
    this.cancel = serverStream(WatchServiceDefinition, WatchServiceDefinition.methods.watch, request, {
      onMessage: (msg) => {
        this.armSilenceTimer();
        this.backoffMs = BACKOFF_MIN_MS;
        this.store.setConnection('live');
        if (msg.rotation) rotated = true;
        this.apply(msg);
      },
      onEnd: () => {
        this.cancel = undefined;
        // A rotation is the server's plan: come straight back. Any other clean end (a helper
        // shutting down, say) gets the backoff so a dying helper is not hammered.
        if (rotated) this.open();
        else this.scheduleRetry();
      },
      onError: (err: ApiError) => {
        this.cancel = undefined;
        this.store.setConnection('helper-down', describeOutage(err));
        this.scheduleRetry();
      },
    });
  }

  private apply(msg: WatchResponse): void {
    if (msg.helperStatus) this.store.setStatus(msg.helperStatus);
    if (msg.peerMetrics) this.store.setPeerMetrics(msg.peerMetrics.peers);
    if (msg.metrics) this.store.addSample(msg.metrics);
    if (msg.party) this.store.setParty(msg.party.party);
    if (msg.lan) this.store.setLan(msg.lan);
    if (msg.natReport) this.store.setNatReport(msg.natReport);
    if (msg.server) serversStore.apply(msg.server);
    if (msg.gameDetection) gamesStore.applyDetection(msg.gameDetection);
    if (msg.gameSession) gamesStore.applySession(msg.gameSession);
    if (msg.peer?.peer) {
      if (msg.peer.removed) this.store.removePeer(msg.peer.peer.deviceId);
      else this.store.setPeer(msg.peer.peer);
    }
  }

  private armSilenceTimer(): void {
    clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => {
      if (!this.cancel) return;
      this.cancel();
      this.cancel = undefined;
      this.store.setConnection('helper-down', 'The live stream went silent.');
      this.scheduleRetry();
    }, SILENCE_LIMIT_MS);
  }

  private scheduleRetry(): void {
    clearTimeout(this.silenceTimer);
    if (!this.running) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }
}

/** grpc-web words a refused connection as an HTTP failure with status 0; say it plainly. */
function describeOutage(err: ApiError): string {
  if (err.helperDown && /status code: 0\b/.test(err.message)) return `No answer from ${window.location.host}.`;
  return err.message;
}

/** `?watchSeconds=N` shortens rotation, so rotation can be watched (and tested) without waiting. */
function optionsFromUrl(): LiveOptions {
  const raw = new URLSearchParams(window.location.search).get('watchSeconds');
  const n = raw === null ? NaN : Number(raw);
  return Number.isInteger(n) && n >= 10 && n <= 3600 ? { maxDurationSeconds: n } : {};
}

let connection: LiveConnection | undefined;

/** Starts the tab's live stream once; later calls return the same connection. */
export function startLive(): LiveConnection {
  if (!connection) {
    connection = new LiveConnection(liveStore, optionsFromUrl());
    connection.start();
    // Background tabs get their timers throttled; reconnect at once when the user looks again.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') connection?.retryNow();
    });
  }
  return connection;
}
