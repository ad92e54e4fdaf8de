// LAN discovery (broadcasts and multicasts carried across the party): how its stats read.
// The stats themselves arrive on the Watch stream (`lan`) and live in liveStore.
import type { LanStats } from '../gen/lanrage/v1/network.js';

export type { LanStats };

export function lanDropped(l: LanStats): number {
  return l.droppedDuplicate + l.droppedRateLimited + l.droppedInvalid + l.droppedLoop + l.droppedPolicy + l.droppedNoListener;
}

/** "on · 12 captured · 24 forwarded · 9 injected · 3 dropped", or "off" with the reason if any. */
export function lanSummary(l: LanStats | undefined): string {
  if (!l) return 'unknown';
  const counts = `${l.captured} captured · ${l.forwarded} forwarded · ${l.injected} injected · ${lanDropped(l)} dropped`;
  if (l.enabled) return `on · ${counts}`;
  return l.problem ? `off: ${l.problem}` : 'off';
}
