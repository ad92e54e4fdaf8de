// Leftovers of crashed runs (SIGKILL, OOM, power loss of the test runner): a lab whose creating
// process is gone is removed — its processes, then its namespaces, then its record. Only
// namespaces named in a valid record, with the record's own lr<id>- prefix, are ever touched:
// an `lr*` namespace nobody recorded is not ours and stays.

import { deleteNamespaces, listNamespaces, pidsInNamespaces, terminate } from './netns.js';
import { ownerAlive, readRecords, removeRecord } from './registry.js';

export interface StaleCleanupResult {
  /** Namespaces deleted. */
  removed: string[];
  /** Lab ids whose records were removed. */
  labs: string[];
  /** Lab ids still owned by a live process, or younger than the threshold. */
  kept: string[];
  /** Namespaces that could not be deleted. */
  failed: string[];
}

/**
 * Removes labs whose creating process is gone and whose record is older than `olderThanMs`
 * (all such labs, or only those in `opts.ids`).
 */
export async function removeStaleLabs(olderThanMs: number, opts: { ids?: readonly string[] } = {}): Promise<StaleCleanupResult> {
  const result: StaleCleanupResult = { removed: [], labs: [], kept: [], failed: [] };
  const now = Date.now();
  for (const f of readRecords()) {
    const rec = f.record;
    if (rec === null) continue; // not a record we can trust: leave it for a person to look at
    if (opts.ids && !opts.ids.includes(rec.id)) continue;
    if (ownerAlive(rec) || now - Math.min(rec.createdAt, f.mtimeMs) < olderThanMs) {
      result.kept.push(rec.id);
      continue;
    }
    const present = listNamespaces().filter((n) => rec.namespaces.includes(n));
    // Processes that outlived their test (a spawned daemon, wireguard-go) keep a deleted
    // namespace and its interfaces alive: end them first.
    await terminate(pidsInNamespaces(present).map((pid) => ({ pid, group: false })), 500);
    const left = await deleteNamespaces(present);
    result.removed.push(...present.filter((n) => !left.includes(n)));
    result.failed.push(...left);
    if (left.length === 0) {
      removeRecord(rec.id);
      result.labs.push(rec.id);
    }
  }
  return result;
}
