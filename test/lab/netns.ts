// Namespace and process plumbing shared by the lab and the stale-lab cleanup: running `ip`,
// finding the processes that live in a namespace, ending them, deleting namespaces. Sync twins
// exist for process 'exit' handlers, where nothing asynchronous runs any more.

import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';

export const NETNS_DIR = '/run/netns';

export class CommandError extends Error {
  constructor(
    message: string,
    readonly code: number | string | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
}

/** execFile with an argument array, optional stdin, a timeout, and errors that carry the output. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { encoding: 'utf8', timeout: opts.timeoutMs ?? 10_000, killSignal: 'SIGKILL', maxBuffer: 32 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr });
        const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
        const why = e.killed ? `timed out after ${opts.timeoutMs ?? 10_000} ms` : `exit ${String(e.code)}`;
        reject(new CommandError(`${cmd} ${args.join(' ')}: ${why}${stderr ? `: ${stderr.trim()}` : ''}`, e.code ?? null, stdout, stderr));
      },
    );
    child.stdin?.on('error', () => {}); // the command may exit before reading its input
    child.stdin?.end(opts.input ?? '');
  });
}

/** Names of the namespaces `ip netns` knows (the files in /run/netns). */
export function listNamespaces(): string[] {
  try {
    return readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
}

function procState(pid: number): { state: string; startTicks: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may hold spaces and parentheses: everything after the last ')' is fixed.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '?', startTicks: rest[19] ?? '' };
  } catch {
    return null;
  }
}

/** Start time in clock ticks since boot, to tell a PID from a later process that reuses it. */
export function processStartTicks(pid: number): string | null {
  return procState(pid)?.startTicks ?? null;
}

/** Alive = exists and is not a zombie (a zombie nobody reaps has already let go of everything). */
export function isAlive(pid: number): boolean {
  const s = procState(pid);
  return s !== null && s.state !== 'Z' && s.state !== 'X';
}

/** PIDs of the processes whose network namespace is one of `names` (what `ip netns pids` does). */
export function pidsInNamespaces(names: readonly string[]): number[] {
  const wanted = new Set<string>();
  for (const n of names) {
    try {
      const st = statSync(`${NETNS_DIR}/${n}`);
      wanted.add(`${st.dev}:${st.ino}`);
    } catch {
      // already gone
    }
  }
  if (wanted.size === 0) return [];
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const st = statSync(`/proc/${entry}/ns/net`);
      if (wanted.has(`${st.dev}:${st.ino}`) && isAlive(pid)) pids.push(pid);
    } catch {
      // exited meanwhile, or a kernel thread
    }
  }
  return pids;
}

export interface KillTarget {
  pid: number;
  /** Signal the whole process group led by pid. */
  group: boolean;
}

function signal(t: KillTarget, sig: NodeJS.Signals): void {
  try {
    process.kill(t.group ? -t.pid : t.pid, sig);
  } catch {
    // ESRCH: already gone
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sleepSync = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** SIGTERM (so that e.g. wireguard-go removes its UAPI socket), then SIGKILL whatever is left. */
export async function terminate(targets: readonly KillTarget[], graceMs = 1000): Promise<number[]> {
  for (const t of targets) signal(t, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (targets.some((t) => isAlive(t.pid)) && Date.now() < deadline) await sleep(20);
  const stubborn = targets.filter((t) => isAlive(t.pid));
  for (const t of stubborn) signal(t, 'SIGKILL');
  const killDeadline = Date.now() + 2000;
  while (stubborn.some((t) => isAlive(t.pid)) && Date.now() < killDeadline) await sleep(10);
  return targets.filter((t) => isAlive(t.pid)).map((t) => t.pid);
}

export function terminateSync(targets: readonly KillTarget[], graceMs = 500): number[] {
  for (const t of targets) signal(t, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (targets.some((t) => isAlive(t.pid)) && Date.now() < deadline) sleepSync(10);
  for (const t of targets) if (isAlive(t.pid)) signal(t, 'SIGKILL');
  const killDeadline = Date.now() + 1000;
  while (targets.some((t) => isAlive(t.pid)) && Date.now() < killDeadline) sleepSync(10);
  return targets.filter((t) => isAlive(t.pid)).map((t) => t.pid);
}

function delBatch(names: readonly string[]): string {
  return names.map((n) => `netns del ${n}`).join('\n') + '\n';
}

/** Deletes those of `names` that exist (one `ip` process for all); returns the ones still present. */
export async function deleteNamespaces(names: readonly string[]): Promise<string[]> {
  const present = names.filter((n) => listNamespaces().includes(n));
  if (present.length > 0) {
    await run('ip', ['-force', '-batch', '-'], { input: delBatch(present) }).catch(() => {});
  }
  const now = listNamespaces();
  return names.filter((n) => now.includes(n));
}

export function deleteNamespacesSync(names: readonly string[]): string[] {
  const present = names.filter((n) => listNamespaces().includes(n));
  if (present.length > 0) {
    try {
      execFileSync('ip', ['-force', '-batch', '-'], { input: delBatch(present), stdio: ['pipe', 'ignore', 'ignore'], timeout: 10_000 });
    } catch {
      // reported below through what is still present
    }
  }
  const now = listNamespaces();
  return names.filter((n) => now.includes(n));
}
