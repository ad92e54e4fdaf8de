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
  /** The ruleset the last successful commit installed: the same one again is not run. */
  private applied: string | null = null;
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
    const next = this.chain.then(() => {
      this.applied = null;
      return this.run(renderRemoval(this.name));
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  private commit(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.chain.then(async () => {
      this.queued = null;
      const ruleset = renderLanRuleset({ table: this.name, broadcast: this.broadcast, groups: this.groups, injectors: this.injectors, relayGuard: this.relayGuard });
      // Members come and go in a storm; a commit that changes nothing costs no `nft` process.
      if (ruleset === this.applied) return;
      this.applied = null;
      await this.run(ruleset);
      this.applied = ruleset;
    });
    this.queued = next;
    this.chain = next.catch(() => undefined);
    return next;
  }
}
