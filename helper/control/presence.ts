import type { Clock } from '../core/clock.js';

// Presence from Session streams: online while one is open; AWAY once none has been open for
// awayAfterMs; dropped after dropAfterMs more of being away. Pure timers: the control plane
// decides what "away" and "dropped" do to parties.

export const AWAY_AFTER_MS = 15_000;
export const DROP_AFTER_MS = 120_000;

export interface PresenceHooks {
  onAway(deviceId: string): void;
  onOnline(deviceId: string): void;
  onDrop(deviceId: string): void;
}

interface Entry {
  sessions: number;
  away: boolean;
  cancel?: () => void;
}

export class PresenceTracker {
  private readonly entries = new Map<string, Entry>();
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly hooks: PresenceHooks,
    private readonly awayAfterMs = AWAY_AFTER_MS,
    private readonly dropAfterMs = DROP_AFTER_MS,
  ) {}

  sessionOpened(deviceId: string): void {
    if (this.stopped) return;
    const e = this.entry(deviceId);
    e.sessions++;
    e.cancel?.();
    delete e.cancel;
    if (e.away) {
      e.away = false;
      this.hooks.onOnline(deviceId);
    }
  }

  sessionClosed(deviceId: string): void {
    if (this.stopped) return;
    const e = this.entries.get(deviceId);
    if (!e || e.sessions === 0) return;
    e.sessions--;
    if (e.sessions === 0) this.startGrace(deviceId, e);
  }

  /** A party member with no open session (after a restart, or joined without one): start its clock. */
  track(deviceId: string): void {
    if (this.stopped) return;
    const e = this.entry(deviceId);
    if (e.sessions === 0 && !e.cancel && !e.away) this.startGrace(deviceId, e);
  }

  /** The device is no longer in a party: nothing to time out. */
  forget(deviceId: string): void {
    const e = this.entries.get(deviceId);
    if (!e) return;
    e.cancel?.();
    if (e.sessions === 0) this.entries.delete(deviceId);
    else {
      delete e.cancel;
      e.away = false;
    }
  }

  isAway(deviceId: string): boolean {
    return this.entries.get(deviceId)?.away ?? false;
  }

  isConnected(deviceId: string): boolean {
    return (this.entries.get(deviceId)?.sessions ?? 0) > 0;
  }

  close(): void {
    this.stopped = true;
    for (const e of this.entries.values()) e.cancel?.();
    this.entries.clear();
  }

  private entry(deviceId: string): Entry {
    let e = this.entries.get(deviceId);
    if (!e) {
      e = { sessions: 0, away: false };
      this.entries.set(deviceId, e);
    }
    return e;
  }

  private startGrace(deviceId: string, e: Entry): void {
    e.cancel?.();
    e.cancel = this.clock.setTimeout(() => {
      e.away = true;
      e.cancel = this.clock.setTimeout(() => {
        delete e.cancel;
        this.entries.delete(deviceId);
        this.hooks.onDrop(deviceId);
      }, this.dropAfterMs);
      this.hooks.onAway(deviceId);
    }, this.awayAfterMs);
  }
}
