import type { Logger } from '../core/log.js';
import { GameCatalog, type CustomProfileStore } from './catalog.js';
import { PollingGameDetector, type Detection, type GameDetector, type ProcessSource } from './detector.js';
import { loadProfileFile } from './load-profiles.js';
import { ProfileMatcher } from './match.js';
import { LinuxProcSource } from './proc-source.js';
import { SystemInformationSource } from './si-source.js';

// The helper's games part: the catalog (data file + custom profiles) and the detector kept in
// step with it. Linux polls /proc every 2 s after a game started or stopped, slowing to every 6 s
// while none does (a scan costs a few ms, see test/bench/games.bench, but an idle helper's budget
// is a fraction of a percent of a core); Windows and macOS poll systeminformation every 10 s
// because each call is expensive.

export const LINUX_SCAN_MS = 2000;
export const LINUX_IDLE_SCAN_MS = 6000;
export const OTHER_SCAN_MS = 10_000;

export interface Games {
  catalog: GameCatalog;
  detector: GameDetector;
  stop(): void;
}

export function defaultProcessSource(): { source: ProcessSource; intervalMs: number; maxIntervalMs: number } {
  if (process.platform === 'linux') return { source: new LinuxProcSource(), intervalMs: LINUX_SCAN_MS, maxIntervalMs: LINUX_IDLE_SCAN_MS };
  return { source: new SystemInformationSource(process.platform === 'win32' ? 'windows' : 'darwin'), intervalMs: OTHER_SCAN_MS, maxIntervalMs: OTHER_SCAN_MS };
}

export function startGames(opts: {
  store: CustomProfileStore;
  log: Logger;
  onStarted(d: Detection): void;
  onStopped(d: Detection): void;
  profilesFile?: string;
  source?: ProcessSource;
  intervalMs?: number;
}): Games {
  const catalog = new GameCatalog(loadProfileFile(opts.profilesFile), opts.store);
  const def = opts.source ? { source: opts.source, intervalMs: opts.intervalMs ?? LINUX_SCAN_MS, maxIntervalMs: opts.intervalMs ?? LINUX_SCAN_MS } : defaultProcessSource();
  const matcher = (): ProfileMatcher => new ProfileMatcher(catalog.all(), def.source.platform);
  const intervalMs = opts.intervalMs ?? def.intervalMs;
  const detector = new PollingGameDetector(def.source, matcher(), intervalMs, Date.now, Math.max(intervalMs, opts.intervalMs !== undefined ? intervalMs : def.maxIntervalMs));
  catalog.on('changed', () => detector.setMatcher(matcher()));
  detector.on('started', (d) => {
    opts.log.info('game started', { game: d.profileId, pid: d.pid, exe: d.exe });
    opts.onStarted(d);
  });
  detector.on('stopped', (d) => {
    opts.log.info('game stopped', { game: d.profileId, pid: d.pid });
    opts.onStopped(d);
  });
  let lastError = '';
  detector.on('error', (err) => {
    // Once per distinct failure: a broken /proc would otherwise log every 2 s.
    if (err.message !== lastError) opts.log.warn('listing processes failed; game detection keeps its last state', { err: err.message });
    lastError = err.message;
  });
  detector.start();
  return { catalog, detector, stop: () => detector.stop() };
}
