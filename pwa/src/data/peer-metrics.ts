// Per-player metrics: live samples arrive on the Watch stream (store.peerSeries); history comes
// from MetricsService.GetMetricsHistory with a peer's device id.
import { GetMetricsHistoryRequest, MetricsServiceDefinition, type PathChange, type PeerMetricsSample } from '../gen/lanrage/v1/metrics.js';
import { unary } from '../api/transport.js';

export type { PathChange, PeerMetricsSample };

export interface PeerHistory {
  readonly samples: readonly PeerMetricsSample[];
  readonly stepSeconds: number;
  readonly changes: readonly PathChange[];
}

export const HISTORY_RANGES = [
  { label: '10 min', seconds: 600 },
  { label: '24 h', seconds: 86_400 },
  { label: '30 days', seconds: 30 * 86_400 },
] as const;

export async function getPeerHistory(deviceId: string, sinceMs: number): Promise<PeerHistory> {
  const res = await unary(
    MetricsServiceDefinition,
    MetricsServiceDefinition.methods.getMetricsHistory,
    GetMetricsHistoryRequest.fromPartial({ since: new Date(sinceMs), peerDeviceId: deviceId }),
  );
  return { samples: res.peerSamples, stepSeconds: res.peerStepSeconds, changes: res.pathChanges };
}

export const formatLoss = (ratio: number): string => `${(100 * Math.max(0, ratio)).toFixed(ratio > 0 && ratio < 0.1 ? 1 : 0)} %`;
export const formatJitter = (ms: number): string => (ms < 1 ? `${ms.toFixed(2)} ms` : ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`);
export const formatPps = (pps: number): string => (pps < 10 ? `${pps.toFixed(1)} pkt/s` : `${Math.round(pps)} pkt/s`);
export const qualityWord = (q: number): string => (q >= 90 ? 'great' : q >= 70 ? 'good' : q >= 40 ? 'poor' : q > 0 ? 'bad' : '—');
