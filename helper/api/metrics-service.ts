import { MetricsServiceService, type GetMetricsHistoryRequest, type GetMetricsHistoryResponse, type GetMetricsResponse, type MetricsSample, type PathChange, type PeerMetricsSample } from '../gen/lanrage/v1/metrics.js';
import type { PeerHistory } from '../metrics/peer-history.js';
import type { PathChangeRecord, PeerSample } from '../metrics/peer-metrics.js';
import { ApiError, Status, invalidArgument } from '../core/api-error.js';
import type { MetricsHistory } from '../metrics/history.js';
import type { Sample } from '../metrics/sample.js';
import type { Handler } from './wrap.js';

export const metricsDefinition = MetricsServiceService;

export function toProtoSample(s: Sample): MetricsSample {
  return {
    time: new Date(s.atMs),
    cpuPercent: s.cpuPercent,
    memoryUsedBytes: s.memUsed,
    memoryTotalBytes: s.memTotal,
    netRxBytesPerSecond: s.rxPerSec,
    netTxBytesPerSecond: s.txPerSec,
    helperCpuPercent: s.helperCpuPercent,
    helperRssBytes: s.helperRss,
  };
}

export function toProtoPeerSample(s: PeerSample): PeerMetricsSample {
  return {
    time: new Date(s.atMs),
    deviceId: s.deviceId,
    name: s.name,
    path: s.path,
    fastPath: s.fastPath,
    rttMs: s.rttMs,
    jitterMs: s.jitterMs,
    lossRatio: s.lossRatio,
    rxBytesPerSecond: s.rxBps,
    txBytesPerSecond: s.txBps,
    rxPacketsPerSecond: s.rxPps,
    txPacketsPerSecond: s.txPps,
    quality: s.quality,
    rxBytes: s.rxBytes,
    txBytes: s.txBytes,
    rxPackets: s.rxPackets,
    txPackets: s.txPackets,
  };
}

export function toProtoPathChange(c: PathChangeRecord): PathChange {
  return { time: new Date(c.atMs), deviceId: c.deviceId, name: c.name, from: c.from, to: c.to, reason: c.reason, endpoint: c.endpoint };
}

const PEER_ID_RE = /^(\*|[A-Za-z0-9_-]{1,64})$/;

export interface MetricsDeps {
  current(): Sample | null;
  history: MetricsHistory;
  peerHistory?: PeerHistory;
  retentionHours(): number;
}

export function metricsHandlers(deps: MetricsDeps): Record<string, Handler> {
  return {
    getMetrics: (): GetMetricsResponse => {
      const s = deps.current();
      if (!s) throw new ApiError(Status.UNAVAILABLE, 'the first metrics sample is still being taken; retry in a second');
      return { sample: toProtoSample(s) };
    },
    getMetricsHistory: (req: GetMetricsHistoryRequest): GetMetricsHistoryResponse => {
      const now = Date.now();
      const oldest = now - deps.retentionHours() * 3600_000;
      const since = req.since ? req.since.getTime() : oldest;
      const until = req.until ? req.until.getTime() : now;
      if (!Number.isFinite(since) || !Number.isFinite(until)) throw invalidArgument('since and until must be valid timestamps');
      if (since > until) throw invalidArgument('since must not be after until');
      if (req.peerDeviceId !== '' && !PEER_ID_RE.test(req.peerDeviceId)) throw invalidArgument('peer_device_id must be a device id, "*" for every peer, or empty');
      const { samples, stepSeconds } = deps.history.query(Math.max(since, oldest), until);
      if (req.peerDeviceId === '' || !deps.peerHistory) return { samples: samples.map(toProtoSample), stepSeconds, peerSamples: [], peerStepSeconds: 0, pathChanges: [] };
      const ph = deps.peerHistory.query(req.peerDeviceId, since, until);
      return {
        samples: samples.map(toProtoSample),
        stepSeconds,
        peerSamples: ph.samples.map(toProtoPeerSample),
        peerStepSeconds: ph.stepSeconds,
        pathChanges: ph.changes.map(toProtoPathChange),
      };
    },
  };
}
