import { MetricsServiceService, type GetMetricsHistoryRequest, type GetMetricsHistoryResponse, type GetMetricsResponse, type MetricsSample } from '../gen/lanrage/v1/metrics.js';
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

export interface MetricsDeps {
  current(): Sample | null;
  history: MetricsHistory;
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
      const { samples, stepSeconds } = deps.history.query(Math.max(since, oldest), until);
      return { samples: samples.map(toProtoSample), stepSeconds };
    },
  };
}
