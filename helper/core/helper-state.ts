import { hostname } from 'node:os';
import type { Settings } from '../gen/lanrage/v1/settings.js';
import { ControlPlaneMode, type HelperStatus } from '../gen/lanrage/v1/helper.js';
import type { WatchResponse } from '../gen/lanrage/v1/watch.js';
import type { SettingsRepo } from '../store/settings-repo.js';
import { Hub } from './hub.js';

/** One live event: a WatchResponse without the per-stream sequence and time. */
export type WatchEvent = Omit<WatchResponse, 'sequence' | 'time'>;

// The helper's in-memory state shared by the API services. Settings are cached here and written
// through the repo, so every reader sees the persisted value.
export class HelperState {
  readonly events = new Hub<WatchEvent>();
  /** Every saved settings change, for the parts that apply settings live (e.g. the LAN relay). */
  readonly settingsSaved = new Hub<Settings>();
  readonly startedAt = new Date();
  grpcPort = 0;
  httpPort = 0;
  /** Set by the party engine once it exists. */
  inParty: () => boolean = () => false;
  private settingsCache: Settings;

  constructor(readonly version: string, private readonly repo: SettingsRepo) {
    this.settingsCache = repo.load();
  }

  get settings(): Settings {
    return { ...this.settingsCache, broadcastPorts: [...this.settingsCache.broadcastPorts] };
  }

  saveSettings(next: Settings): void {
    const before = this.settingsCache;
    this.repo.save(next);
    this.settingsCache = { ...next, broadcastPorts: [...next.broadcastPorts] };
    if (before.deviceName !== next.deviceName || before.controlServerUrl !== next.controlServerUrl) {
      this.events.publish({ helperStatus: this.status() });
    }
    this.settingsSaved.publish(this.settings);
  }

  status(now: Date = new Date()): HelperStatus {
    const s = this.settingsCache;
    return {
      version: this.version,
      startedAt: this.startedAt,
      uptimeSeconds: Math.floor((now.getTime() - this.startedAt.getTime()) / 1000),
      deviceName: s.deviceName,
      os: process.platform,
      arch: process.arch,
      hostname: hostname(),
      grpcPort: this.grpcPort,
      httpPort: this.httpPort,
      controlPlane: s.controlServerUrl === '' ? ControlPlaneMode.CONTROL_PLANE_MODE_EMBEDDED : ControlPlaneMode.CONTROL_PLANE_MODE_REMOTE,
      inParty: this.inParty(),
    };
  }
}
