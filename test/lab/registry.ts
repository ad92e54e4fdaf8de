// Ownership records of live labs: /run/lanrage-lab/<id>.pid says which process created which
// namespaces. Written BEFORE the first namespace exists, so that a run killed mid-setup can be
// cleaned up; the stale-lab cleanup trusts nothing in it that it cannot re-check.

import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ID_RE, NS_PREFIX } from './topology.js';
import { isAlive, processStartTicks } from './netns.js';

export const REGISTRY_DIR = '/run/lanrage-lab';

export interface LabRecord {
  version: 1;
  id: string;
  pid: number;
  /** /proc/<pid>/stat start time: a reused PID does not make a dead owner look alive. */
  startTicks: string;
  createdAt: number;
  namespaces: string[];
}

export function recordPath(id: string): string {
  return join(REGISTRY_DIR, `${id}.pid`);
}

export function writeRecord(id: string, namespaces: string[]): LabRecord {
  const rec: LabRecord = {
    version: 1,
    id,
    pid: process.pid,
    startTicks: processStartTicks(process.pid) ?? '',
    createdAt: Date.now(),
    namespaces,
  };
  mkdirSync(REGISTRY_DIR, { recursive: true, mode: 0o700 });
  const tmp = `${recordPath(id)}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(rec) + '\n', { mode: 0o600 });
  renameSync(tmp, recordPath(id));
  return rec;
}

export function removeRecord(id: string): void {
  rmSync(recordPath(id), { force: true });
}

/** A record's namespaces must all be this lab's own names: a corrupt file deletes nothing else. */
export function parseRecord(text: string, fileId: string): LabRecord | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const r = v as Record<string, unknown>;
  if (r.version !== 1 || r.id !== fileId || typeof r.id !== 'string' || !ID_RE.test(r.id)) return null;
  if (typeof r.pid !== 'number' || !Number.isInteger(r.pid) || r.pid <= 0) return null;
  if (typeof r.startTicks !== 'string' || typeof r.createdAt !== 'number') return null;
  if (!Array.isArray(r.namespaces)) return null;
  const prefix = `${NS_PREFIX}${r.id}-`;
  const nsOk = (n: unknown): n is string => typeof n === 'string' && n.startsWith(prefix) && /^[a-z0-9-]{1,40}$/.test(n);
  if (!r.namespaces.every(nsOk)) return null;
  return { version: 1, id: r.id, pid: r.pid, startTicks: r.startTicks, createdAt: r.createdAt, namespaces: r.namespaces as string[] };
}

export interface RecordFile {
  id: string;
  path: string;
  mtimeMs: number;
  record: LabRecord | null; // null: unreadable or invalid
}

export function readRecords(): RecordFile[] {
  let files: string[];
  try {
    files = readdirSync(REGISTRY_DIR);
  } catch {
    return [];
  }
  const out: RecordFile[] = [];
  for (const f of files) {
    const m = /^([a-z0-9]{1,8})\.pid$/.exec(f);
    if (!m || m[1] === undefined) continue;
    const path = join(REGISTRY_DIR, f);
    try {
      const mtimeMs = statSync(path).mtimeMs;
      out.push({ id: m[1], path, mtimeMs, record: parseRecord(readFileSync(path, 'utf8'), m[1]) });
    } catch {
      // removed meanwhile
    }
  }
  return out;
}

export function ownerAlive(rec: LabRecord): boolean {
  return isAlive(rec.pid) && processStartTicks(rec.pid) === rec.startTicks;
}
