import { Client } from '@xhayper/discord-rpc';
import type { Logger } from '../core/log.js';
import type { Presence } from './activity.js';

// The user's Discord desktop client, through its local IPC socket (discord-ipc-N under
// XDG_RUNTIME_DIR, or the snap/flatpak paths, which @xhayper/discord-rpc knows). Discord may
// start after us, quit and come back: we try again every retryMs, quietly, and after each
// (re)connection the latest presence is set again. One request at a time; the newest wins.

export class DiscordIpc {
  private client: Client | undefined;
  private clientId = '';
  private connected = false;
  private connecting = false;
  private want: Presence | null = null;
  private shown: Presence | null | undefined;
  private busy = false;
  private timer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private closed = false;
  private waitingLogged = false;
  /** Called after each successful SET_ACTIVITY (for the agent's log and for tests). */
  onShown?: (p: Presence | null) => void;

  constructor(private readonly log: Logger, private readonly retryMs = 5000) {}

  /** The Discord application id; '' stops talking to Discord. */
  setClientId(id: string): void {
    if (id === this.clientId) return;
    this.clientId = id;
    void this.drop();
    if (id) this.schedule(0);
  }

  show(p: Presence | null): void {
    this.want = p;
    void this.flush();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.client && this.connected) await this.client.user?.clearActivity().catch(() => {});
    await this.drop();
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (this.closed || !this.clientId) return;
    this.timer = setTimeout(() => void this.connect(), ms);
  }

  private lost(c: Client): void {
    if (this.client !== c) return;
    this.log.info('Discord closed the connection; waiting for it to come back');
    clearInterval(this.watchdog);
    this.connected = false;
    this.shown = undefined;
    this.client = undefined;
    c.removeAllListeners();
    void c.destroy().catch(() => {});
    this.schedule(this.retryMs);
  }

  private async drop(): Promise<void> {
    clearInterval(this.watchdog);
    const c = this.client;
    this.client = undefined;
    this.connected = false;
    this.shown = undefined;
    if (c) {
      c.removeAllListeners();
      await c.destroy().catch(() => {});
    }
  }

  private async connect(): Promise<void> {
    if (this.closed || this.connecting || this.connected || !this.clientId) return;
    this.connecting = true;
    const c = new Client({ clientId: this.clientId });
    this.client = c;
    c.on('disconnected', () => this.lost(c));
    try {
      await c.connect();
      if (this.client !== c) return;
      this.connected = true;
      this.waitingLogged = false;
      // @xhayper/discord-rpc 1.5.1 misses Discord going away: on the socket's close it calls its
      // own close(), which returns early because the socket is no longer open, so 'disconnected'
      // never fires (and its heartbeat timeout takes the same path). Watch the socket ourselves.
      clearInterval(this.watchdog);
      this.watchdog = setInterval(() => {
        if (!c.transport.isOpen) this.lost(c);
      }, Math.min(this.retryMs, 1000));
      this.log.info('connected to Discord', { user: c.user?.username ?? '' });
      void this.flush();
    } catch (err) {
      if (this.client === c) {
        this.client = undefined;
        c.removeAllListeners();
        await c.destroy().catch(() => {});
      }
      const why = err instanceof Error ? err.message : String(err);
      if (!this.waitingLogged) this.log.info('Discord is not running (or not reachable); waiting for it', { why });
      else this.log.debug('Discord still not reachable', { why });
      this.waitingLogged = true;
      this.schedule(this.retryMs);
    } finally {
      this.connecting = false;
    }
  }

  private async flush(): Promise<void> {
    if (this.busy || !this.connected || !this.client?.user) return;
    const target = this.want;
    if (this.shown !== undefined && this.shown === target) return;
    this.busy = true;
    const c = this.client;
    try {
      if (target) {
        await c.user!.setActivity({ details: target.details, state: target.state, startTimestamp: target.startTimestamp, largeImageKey: 'lanrage', largeImageText: 'LANrage', instance: false });
      } else {
        await c.user!.clearActivity();
      }
      if (this.client === c) {
        this.shown = target;
        this.onShown?.(target);
      }
    } catch (err) {
      this.log.debug('Discord did not take the presence', { err: err instanceof Error ? err.message : String(err) });
    } finally {
      this.busy = false;
    }
    // Only a newer presence is tried at once; a refused one waits for the next change or reconnect.
    if (this.want !== target && this.connected) void this.flush();
  }
}
