import type { SessionResponse } from '../gen/lanrage/control/v1/control.js';

// How control instances that share one database tell each other what their own members must
// hear. The control plane delivers events to the sessions it holds and hands the same events to
// the bus; every other instance delivers them to the sessions it holds. Presence is shared the
// same way (session opened/closed), so every instance knows who is online anywhere, and one
// instance (the leader) acts on presence timers so that "away" and "dropped" happen once.

/** An event for one device's sessions; `snapshot` is rebuilt by the receiving instance. */
export type BusEvent = { to: string; event: SessionResponse } | { to: string; snapshot: true };

export interface BusHandlers {
  /** Events another instance produced (its data changes are already applied locally). */
  events(events: readonly BusEvent[]): void;
  /** A session opened or closed on another instance (or closed because that instance died). */
  remoteSessionOpened(deviceId: string): void;
  remoteSessionClosed(deviceId: string): void;
  /** Local state was reloaded from the database: send every local session a fresh snapshot. */
  resync(): void;
  /**
   * Another instance came up (or lost track): publish what lives only in this instance's memory
   * and is not in the database — the announcements of the members connected here.
   */
  peerAsked(): void;
}

export interface ControlBus {
  attach(handlers: BusHandlers): void;
  /** Events of the transaction that just committed, for other instances' sessions. */
  publish(events: readonly BusEvent[]): void;
  sessionOpened(deviceId: string): void;
  sessionClosed(deviceId: string): void;
  /** Whether another instance holds a session of this device. */
  connectedElsewhere(deviceId: string): boolean;
  /** Whether this instance acts on presence timers (away, back online, dropped). */
  isLeader(): boolean;
  close(): void;
}

/** One instance on its own (the embedded SQLite default): nobody else to tell. */
export class LocalBus implements ControlBus {
  attach(): void {}
  publish(): void {}
  sessionOpened(): void {}
  sessionClosed(): void {}
  connectedElsewhere(): boolean {
    return false;
  }
  isLeader(): boolean {
    return true;
  }
  close(): void {}
}
