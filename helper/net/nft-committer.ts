// Installs one nftables ruleset at a time for an owner that re-renders its whole table on every
// change (the fast path, the LAN relay): each `nft` run is a fork of the helper, 20-180 ms of its
// event loop in a join storm, so commits are serialised, the ones asked for while one waits share
// it, and a ruleset equal to the installed one is not run at all. nft reads the ruleset on stdin:
// no shell, no arguments from outside.

import { spawn } from 'node:child_process';

export type NftRunner = (ruleset: string) => Promise<void>;

/** Runs `nft -f -` with the ruleset on stdin; rejects with nft's message when it fails. */
export const runNft: NftRunner = (ruleset) =>
  new Promise((resolve, reject) => {
    const p = spawn('nft', ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => {
      if (err.length < 4000) err += d.toString();
    });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`nft failed (${code}): ${err.trim()}`))));
    p.stdin.on('error', () => {});
    p.stdin.end(ruleset);
  });

export interface NftCommitterOptions {
  /**
   * The whole ruleset as it should be now, or null when there is nothing to do. Called when a
   * commit starts (not when it is asked for), so it sees every change made while it waited.
   */
  render(): string | null;
  run?: NftRunner;
  /** Called after a commit's ruleset was installed (not for skipped commits, nor for replace()). */
  onApplied?(ruleset: string): void;
}

export class NftCommitter {
  private chain: Promise<void> = Promise.resolve();
  /** The commit that has not started yet: later commits ride on it. */
  private queued: Promise<void> | null = null;
  /** The ruleset the last successful run installed: the same one again is not run. */
  private applied: string | null = null;
  private readonly run: NftRunner;

  constructor(private readonly o: NftCommitterOptions) {
    this.run = o.run ?? runNft;
  }

  /**
   * Installs what render() returns once the runs before it are done; resolves when nft is done
   * (or was not needed). A failed run forgets what was installed, so the same text runs again.
   */
  commit(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.chain.then(async () => {
      this.queued = null;
      const ruleset = this.o.render();
      // A change that changes nothing (a peer set to the endpoint it has, a member gone and back
      // before the run) costs no process, and keeps the table's counters, which a replace restarts.
      if (ruleset === null || ruleset === this.applied) return;
      this.applied = null;
      await this.run(ruleset);
      this.applied = ruleset;
      this.o.onApplied?.(ruleset);
    });
    this.queued = next;
    // The chain never rejects: a failed run must not wedge every later commit.
    this.chain = next.catch(() => undefined);
    return next;
  }

  /**
   * Runs this ruleset (typically the table's removal) after the runs before it, whatever is
   * installed; rejects when nft fails. Commits asked for after this run after it: a commit queued
   * before it would otherwise be joined by later changes and run first, and this run would then
   * undo what they installed.
   */
  replace(ruleset: string): Promise<void> {
    const next = this.chain.then(() => {
      this.applied = null;
      return this.run(ruleset);
    });
    this.queued = null;
    this.chain = next.catch(() => undefined);
    return next;
  }
}
