// A periodic job that should run only while there is something for it to do: the server scans
// and re-lists stay off in a party with no game, so an idle helper wakes for nothing.

export class OnDemandInterval {
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly everyMs: number,
    private readonly run: () => void,
  ) {}

  /** Starts the interval when needed and not running, stops it when running and not needed. */
  set(needed: boolean): void {
    if (needed && this.timer === undefined) {
      this.timer = setInterval(this.run, this.everyMs);
      // Never what keeps the process alive: the helper's servers and sockets do that.
      this.timer.unref();
    } else if (!needed && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  get running(): boolean {
    return this.timer !== undefined;
  }
}
