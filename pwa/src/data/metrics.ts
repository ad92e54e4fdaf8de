// Metrics: the downsampled history from MetricsService (live samples come from the Watch stream).
import {
  GetMetricsHistoryRequest,
  MetricsServiceDefinition,
  type MetricsSample,
} from '../gen/lanrage/v1/metrics.js';
import { unary } from '../api/transport.js';

export type { MetricsSample };

export interface MetricsHistory {
  readonly samples: readonly MetricsSample[];
  readonly stepSeconds: number;
}

/** History from `sinceMs` (epoch ms) to now. */
export async function getMetricsHistory(sinceMs: number): Promise<MetricsHistory> {
  const res = await unary(
    MetricsServiceDefinition,
    MetricsServiceDefinition.methods.getMetricsHistory,
    GetMetricsHistoryRequest.fromPartial({ since: new Date(sinceMs) }),
  );
  return { samples: res.samples, stepSeconds: res.stepSeconds };
}

export function memoryPercent(s: MetricsSample): number {
  return s.memoryTotalBytes > 0 ? (100 * s.memoryUsedBytes) / s.memoryTotalBytes : 0;
}
