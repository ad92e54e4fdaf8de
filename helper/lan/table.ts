// Holds what the LAN relay's nftables table must contain and applies it, one transaction at a
// time (the table is replaced whole, atomically). Capture and injection each own their part.

import { NftCommitter, type NftRunner } from '../net/nft-committer.js';
import { DEFAULT_LAN_TABLE, renderLanRuleset, renderRemoval, type BroadcastCapture, type GroupCapture, type InjectorSource, type RelayGuard } from './nft.js';

export class LanTable {
  readonly name: string;
  private broadcast: BroadcastCapture[] = [];
  private groups: GroupCapture[] = [];
  private injectors: InjectorSource[] = [];
  private relayGuard: RelayGuard | null = null;
  /** Members come and go in a storm: commits coalesce, and one that changes nothing runs no nft. */
  private readonly nft: NftCommitter;

  constructor(opts: { table?: string; run?: NftRunner } = {}) {
    this.name = opts.table ?? DEFAULT_LAN_TABLE;
    this.nft = new NftCommitter({
      render: () => renderLanRuleset({ table: this.name, broadcast: this.broadcast, groups: this.groups, injectors: this.injectors, relayGuard: this.relayGuard }),
      ...(opts.run ? { run: opts.run } : {}),
    });
    renderRemoval(this.name); // validates the name now rather than at the first commit
  }

  setCapture(broadcast: readonly BroadcastCapture[], groups: readonly GroupCapture[]): Promise<void> {
    this.broadcast = [...broadcast];
    this.groups = [...groups];
    return this.nft.commit();
  }

  setInjectors(injectors: readonly InjectorSource[]): Promise<void> {
    this.injectors = [...injectors];
    return this.nft.commit();
  }

  setRelayGuard(guard: RelayGuard | null): Promise<void> {
    this.relayGuard = guard;
    return this.nft.commit();
  }

  /** Removes the table (also one a crashed run left behind); errors are the caller's to judge. */
  remove(): Promise<void> {
    this.broadcast = [];
    this.groups = [];
    this.injectors = [];
    this.relayGuard = null;
    return this.nft.replace(renderRemoval(this.name));
  }
}
