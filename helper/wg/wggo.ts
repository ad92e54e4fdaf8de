import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../core/log.js';
import { raisePriority, WIREGUARD_NICE } from '../core/priority.js';
import { checkInterfaceName } from './validate.js';
import { uapiSocketAlive, uapiSocketPath } from './uapi-socket.js';

// wireguard-go as a child process: started in the foreground (so we hold its PID and see it
// die), ready once its UAPI socket answers, ended by PID. Its TUN device is not persistent: the
// interface disappears with the process, while a SIGKILLed process leaves its socket file behind.

export const WIREGUARD_GO = 'wireguard-go';
const START_TIMEOUT_MS = 5000;
const STOP_TIMEOUT_MS = 3000;

/** The exact argv we start it with; also how a crashed helper's orphan is recognised later. */
export const wireguardGoArgs = (name: string): string[] => ['-f', name];

export interface WireguardGoProcess {
  readonly pid: number;
  /** Whether the process is still running. */
  running(): boolean;
  /** SIGTERM, then SIGKILL after a grace period; resolves once the process is gone. */
  stop(): Promise<void>;
}

/** Removes a socket file nobody answers on; refuses one that a live device serves. */
export async function clearStaleSocket(name: string): Promise<'none' | 'removed'> {
  const path = uapiSocketPath(name);
  if (!existsSync(path)) return 'none';
  if (await uapiSocketAlive(path)) {
    // The socket directory is shared by every network namespace on the machine.
    throw new Error(`${path} is served by a running WireGuard device named ${name} (perhaps in another network namespace); choose another interface name`);
  }
  unlinkSync(path);
  return 'removed';
}

export async function startWireguardGo(name: string, log: Logger): Promise<WireguardGoProcess> {
  checkInterfaceName(name);
  await clearStaleSocket(name);
  const sock = uapiSocketPath(name);
  // WG_PROCESS_FOREGROUND=1 also silences its "use the kernel module" banner.
  const child = spawn(WIREGUARD_GO, wireguardGoArgs(name), {
    env: { ...process.env, WG_PROCESS_FOREGROUND: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream! }).on('line', (line) => {
      const text = line.slice(0, 500);
      if (output.length < 20) output.push(text);
      // LOG_LEVEL=verbose makes it chatty ("DEBUG: ..."); errors are worth a warning.
      if (text.startsWith('DEBUG:')) log.debug('wireguard-go', { line: text });
      else log.warn('wireguard-go', { line: text });
    });
  }
  let exited = false;
  let stopping = false;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      process.removeListener('exit', killOnExit);
      if (!stopping) log.error('wireguard-go exited unexpectedly: the tunnel is down', { pid: child.pid, code, signal });
      resolve();
    });
  });
  // A helper that exits without close() must not leave its tunnel process running.
  const killOnExit = (): void => {
    if (!exited) child.kill('SIGKILL');
  };
  process.on('exit', killOnExit);
  const spawnError = new Promise<never>((_, reject) => child.once('error', (err) => reject(new Error(`cannot start ${WIREGUARD_GO}: ${err.message}`))));
  spawnError.catch(() => undefined);

  const proc: WireguardGoProcess = {
    pid: child.pid ?? -1,
    running: () => !exited,
    stop: async () => {
      stopping = true;
      if (exited) return;
      child.kill('SIGTERM');
      const gone = await Promise.race([exitedPromise.then(() => true), sleep(STOP_TIMEOUT_MS).then(() => false)]);
      if (!gone) {
        log.warn('wireguard-go ignored SIGTERM; killing it', { pid: child.pid });
        child.kill('SIGKILL');
        await exitedPromise;
      }
    },
  };

  try {
    await Promise.race([spawnError, waitForSocket(sock, child, () => exited, output)]);
  } catch (err) {
    await proc.stop();
    throw err;
  }
  // Once its socket answers, its runtime's threads exist; later ones inherit (core/priority.ts).
  if (child.pid !== undefined) raisePriority(child.pid, WIREGUARD_NICE, log, 'wireguard-go');
  log.debug('wireguard-go ready', { pid: child.pid, socket: sock });
  return proc;
}

async function waitForSocket(sock: string, child: ChildProcess, exited: () => boolean, output: string[]): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited()) throw new Error(`${WIREGUARD_GO} exited during start (code ${child.exitCode}): ${output.join(' | ') || 'no output'}`);
    // The file appears at bind(), a moment before listen(): wait until it answers.
    if (existsSync(sock) && (await uapiSocketAlive(sock, 500))) return;
    await sleep(10);
  }
  throw new Error(`${WIREGUARD_GO} did not open ${sock} within ${START_TIMEOUT_MS} ms`);
}

/** PIDs of wireguard-go processes started the way we start them for this interface name. */
export function findWireguardGoPids(name: string): number[] {
  const want = wireguardGoArgs(name);
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile, or not ours to read
    }
    if (argv[argv.length - 1] === '') argv.pop();
    const [exe, ...args] = argv;
    if (exe === undefined || (exe !== WIREGUARD_GO && !exe.endsWith(`/${WIREGUARD_GO}`))) continue;
    if (args.length === want.length && args.every((a, i) => a === want[i])) pids.push(Number(entry));
  }
  return pids;
}

// A zombie counts as gone: whoever inherited the orphan reaps it, or not, but it holds nothing.
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Ends a process that is not our child (a crashed helper's orphan): SIGTERM, then SIGKILL. */
export async function endOrphan(pid: number, log: Logger): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!alive(pid)) return;
    await sleep(20);
  }
  log.warn('orphaned wireguard-go ignored SIGTERM; killing it', { pid });
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(20);
  if (alive(pid)) throw new Error(`wireguard-go ${pid} survived SIGKILL`);
}
