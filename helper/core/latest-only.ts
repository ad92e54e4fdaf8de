// One change at a time, towards the newest wish only. A join storm delivers a membership event
// per joiner to every helper; applying each snapshot in turn (a WireGuard change, path set-up,
// events for every peer) made the 15th joiner's peers wait behind 14 stale snapshots on a busy
// machine. Wishes that arrive while a run is under way replace each other: the next run takes
// the newest, and everyone who asked in between is answered by that run.

export class LatestOnly<T> {
  private running = false;
  private next: { value: T; waiters: Array<{ resolve(): void; reject(err: unknown): void }> } | null = null;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => {};

  constructor(private readonly run: (value: T) => Promise<void>) {}

  /** Settles when a run with this value, or a newer one, has finished; rejects with that run's error. */
  push(value: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.next) {
        this.next.value = value;
        this.next.waiters.push({ resolve, reject });
      } else {
        this.next = { value, waiters: [{ resolve, reject }] };
      }
      if (!this.running) void this.drain();
    });
  }

  /** Settles (never rejects) once nothing is running or waiting. */
  settled(): Promise<void> {
    return this.running ? this.idle : Promise.resolve();
  }

  private async drain(): Promise<void> {
    this.running = true;
    this.idle = new Promise((r) => (this.markIdle = r));
    while (this.next) {
      const { value, waiters } = this.next;
      this.next = null;
      try {
        await this.run(value);
        for (const w of waiters) w.resolve();
      } catch (err) {
        for (const w of waiters) w.reject(err);
      }
    }
    this.running = false;
    this.markIdle();
  }
}
