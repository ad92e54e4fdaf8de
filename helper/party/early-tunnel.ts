// A tunnel started while the party is still being joined. Creating the WireGuard device (spawning
// wireguard-go, its UAPI socket, the link) took 1.6-2.6 s per joiner in a 16-player join storm on
// 2 cores, and it waited for the control server's answers (challenge, register, session, join)
// which took as long again: JoinParty answered after the sum. Only bringing the link up needs the
// virtual address, so the device starts at once and waits for the address there (device.ts); a
// join that fails removes it again before it is answered.

export interface EarlyTunnelOptions<D> {
  /** Starts the device; `address` resolves once the party gave us one, or rejects (then it must clean up). */
  create(address: Promise<string>): Promise<D>;
}

export class EarlyTunnel<D> {
  private readonly device: Promise<D>;
  private giveAddress!: (address: string) => void;
  private refuse!: (why: Error) => void;
  private used = false;

  constructor(opts: EarlyTunnelOptions<D>) {
    const address = new Promise<string>((resolve, reject) => {
      this.giveAddress = resolve;
      this.refuse = reject;
    });
    // Nobody may ever ask (the join failed first): a failed start is reported by take(), if at all.
    address.catch(() => undefined);
    this.device = opts.create(address);
    this.device.catch(() => undefined);
  }

  /** Whether take() or cancel() was called. */
  get spent(): boolean {
    return this.used;
  }

  /** The device, brought up with `address`; rejects if it could not be started. Once. */
  take(address: string): Promise<D> {
    if (this.used) return Promise.reject(new Error('this early tunnel was already taken or cancelled'));
    this.used = true;
    this.giveAddress(address);
    return this.device;
  }

  /** The join failed: the device is removed (create's own clean-up); settles once it is gone. */
  async cancel(why: Error): Promise<void> {
    if (this.used) return;
    this.used = true;
    this.refuse(why);
    await this.device.then(
      () => undefined,
      () => undefined,
    );
  }
}
