import { GameCatalog, MemoryProfileStore } from '../games/catalog.js';
import { PollingGameDetector } from '../games/detector.js';
import { loadProfileFile } from '../games/load-profiles.js';
import { ProfileMatcher } from '../games/match.js';
import { LinuxProcSource } from '../games/proc-source.js';

// Stand-in until the helper's games wiring (branch gamesa: startGames with the SQLite custom
// profiles) is merged: the built-in profiles and the /proc detector, which is all the server
// browser and the party-wide discovery read. Linux only; elsewhere nothing is detected.
export function builtinGameDetection(intervalMs = 2000): { catalog: GameCatalog; detector: PollingGameDetector; stop(): void } {
  const catalog = new GameCatalog(loadProfileFile(), new MemoryProfileStore());
  const detector = new PollingGameDetector(new LinuxProcSource(), new ProfileMatcher(catalog.all(), 'linux'), intervalMs);
  if (process.platform === 'linux') detector.start();
  return { catalog, detector, stop: () => detector.stop() };
}
