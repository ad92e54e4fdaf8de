// Holds what the LAN relay's nftables table must contain and applies it, one transaction at a
// time (the table is replaced whole, atomically). Capture and injection each own their part.

import { runNft, type NftRunner } from '../net/fastpath.js';
import { DEFAULT_LAN_TABLE, renderLanRuleset, renderRemoval, type BroadcastCapture, type GroupCapture, type InjectorSource, type RelayGuard } from './nft.js';

export class LanTable {
  readonly name: string;
  private broadcast: BroadcastCapture[] = [];
  private groups: GroupCapture[] = [];
  private injectors: InjectorSource[] = [];
  private relayGuard: RelayGuard | null = null;
  private chain: Promise<void> = Promise.resolve();
  /** A commit that is queued but has not rendered yet: later changes ride along with it. */
  private queued: Promise<void> | null = null;
  private readonly run: NftRunner;

  constructor(opts: { table?: string; run?: NftRunner } = {}) {
    this.name = opts.table ?? DEFAULT_LAN_TABLE;
    this.run = opts.run ?? runNft;
    renderRemoval(this.name); // validates the name now rather than at the first commit
  }

  setCapture(broadcast: readonly BroadcastCapture[], groups: readonly GroupCapture[]): Promise<void> {
    this.broadcast = [...broadcast];
    this.groups = [...groups];
    return this.commit();
  }

  setInjectors(injectors: readonly InjectorSource[]): Promise<void> {
    this.injectors = [...injectors];
    return this.commit();
  }

  setRelayGuard(guard: RelayGuard | null): Promise<void> {
    this.relayGuard = guard;
    return this.commit();
  }

  /** Removes the table (also one a crashed run left behind); errors are the caller's to judge. */
  remove(): Promise<void> {
    this.broadcast = [];
    this.groups = [];
    this.injectors = [];
    this.relayGuard = null;
    const next = this.chain.then(() => this.run(renderRemoval(this.name)));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private commit(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.chain.then(() => {
      this.queued = null;
      return this.run(
        renderLanRuleset({ table: this.name, broadcast: this.broadcast, groups: this.groups, injectors: this.injectors, relayGuard: this.relayGuard }),
      );
    });
    this.queued = next;
    this.chain = next.catch(() => undefined);
    return next;
  }
}
