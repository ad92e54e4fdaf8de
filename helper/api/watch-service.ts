import type { ServerWritableStream } from '@grpc/grpc-js';
import { WatchServiceService, WatchTopic, type WatchRequest, type WatchResponse } from '../gen/lanrage/v1/watch.js';
import { invalidArgument } from '../core/api-error.js';
import type { HelperState, WatchEvent } from '../core/helper-state.js';
import type { Sample } from '../metrics/sample.js';
import { toProtoSample } from './metrics-service.js';
import type { CallContext, Handler } from './wrap.js';
import { redactEventForViewer } from './redact.js';

export const watchDefinition = WatchServiceService;

export const DEFAULT_STREAM_SECONDS = 120;
const KNOWN_TOPICS = new Set(Object.values(WatchTopic).filter((v): v is number => typeof v === 'number' && v > 0));

export function topicOf(e: WatchEvent): WatchTopic {
  if (e.helperStatus) return WatchTopic.WATCH_TOPIC_HELPER_STATUS;
  if (e.party) return WatchTopic.WATCH_TOPIC_PARTY;
  if (e.peer) return WatchTopic.WATCH_TOPIC_PEERS;
  if (e.metrics || e.peerMetrics) return WatchTopic.WATCH_TOPIC_METRICS;
  if (e.pathChange) return WatchTopic.WATCH_TOPIC_PEERS;
  if (e.gameDetection || e.gameSession) return WatchTopic.WATCH_TOPIC_GAMES;
  if (e.server) return WatchTopic.WATCH_TOPIC_SERVERS;
  if (e.natReport) return WatchTopic.WATCH_TOPIC_NAT_REPORT;
  if (e.lan) return WatchTopic.WATCH_TOPIC_LAN;
  return WatchTopic.WATCH_TOPIC_UNSPECIFIED;
}

/** Validates a request and returns the topic filter and the stream's length in ms. */
export function parseWatchRequest(req: WatchRequest): { wants: (t: WatchTopic) => boolean; durationMs: number } {
  for (const t of req.topics) {
    if (!KNOWN_TOPICS.has(t)) throw invalidArgument(`unknown watch topic ${t}; leave topics empty for all`);
  }
  const secs = req.maxDurationSeconds;
  if (secs !== 0 && (secs < 10 || secs > 3600)) throw invalidArgument('max_duration_seconds must be 0 (default) or 10-3600');
  const topics = new Set<number>(req.topics);
  return { wants: (t) => topics.size === 0 || topics.has(t), durationMs: (secs || DEFAULT_STREAM_SECONDS) * 1000 };
}

export interface WatchDeps {
  state: HelperState;
  latestSample(): Sample | null;
  /** Asks the sampler to sample live while the stream is open; returns a release function. */
  holdLiveSampling(): () => void;
  /** The party, every peer and the LAN relay's stats as events, for the start of a stream. */
  partySnapshot(): WatchEvent[];
  /** Aborted when the helper shuts down, so streams end cleanly with a rotation event. */
  shutdown: AbortSignal;
}

export function watchHandlers(deps: WatchDeps): Record<string, Handler> {
  return {
    watch: async (req: WatchRequest, ctx: CallContext, call: ServerWritableStream<WatchRequest, WatchResponse>): Promise<void> => {
      const { wants, durationMs } = parseWatchRequest(req);
      let seq = 0;
      let congested = false;
      const send = (e: WatchEvent): void => {
        // A slow client loses metrics samples (the next one supersedes them), never state changes.
        if (congested && (e.metrics || e.peerMetrics)) return;
        const shown = ctx.redactSecrets ? redactEventForViewer(e) : e;
        if (!call.write({ ...shown, sequence: ++seq, time: new Date() })) congested = true;
      };
      call.on('drain', () => (congested = false));

      if (wants(WatchTopic.WATCH_TOPIC_HELPER_STATUS)) send({ helperStatus: deps.state.status() });
      for (const e of deps.partySnapshot()) if (wants(topicOf(e))) send(e);
      const latest = deps.latestSample();
      if (latest && wants(WatchTopic.WATCH_TOPIC_METRICS)) send({ metrics: toProtoSample(latest) });

      const unsubscribe = deps.state.events.subscribe((e) => {
        if (wants(topicOf(e))) send(e);
      });
      const release = wants(WatchTopic.WATCH_TOPIC_METRICS) ? deps.holdLiveSampling() : () => {};
      try {
        const reason = await new Promise<string>((resolve) => {
          const timer = setTimeout(() => resolve('stream rotation: resubscribe'), durationMs);
          const done = (why: string) => () => {
            clearTimeout(timer);
            resolve(why);
          };
          ctx.signal.addEventListener('abort', done('cancelled'), { once: true });
          deps.shutdown.addEventListener('abort', done('helper is shutting down'), { once: true });
          if (deps.shutdown.aborted) done('helper is shutting down')();
        });
        if (!ctx.signal.aborted) send({ rotation: { reason } });
      } finally {
        unsubscribe();
        release();
      }
    },
  };
}
