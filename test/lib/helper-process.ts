import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { HELPER_MAIN, PWA_DIST } from './repo.js';

export interface HelperProcess {
  grpcPort: number;
  httpPort: number;
  token: string;
  stateDir: string;
  pid: number;
  /** Every log line the helper wrote to stderr so far. */
  logs: string[];
  /** Sends the signal (SIGTERM by default) and waits for exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const running = new Set<ChildProcess>();
// A failing test must not leave helpers behind: end only the processes this module started.
process.on('exit', () => {
  for (const c of running) if (c.exitCode === null) c.kill('SIGKILL');
});

export async function startHelper(opts: { stateDir?: string; pwaDir?: string | null; httpPort?: number; grpcPort?: number; env?: NodeJS.ProcessEnv; extraArgs?: string[] } = {}): Promise<HelperProcess> {
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'lanrage-test-'));
  const args = [HELPER_MAIN, 'helper', '--state-dir', stateDir, '--http-port', String(opts.httpPort ?? 0), '--grpc-port', String(opts.grpcPort ?? 0), '--control-port', '0', '--interface', `lrt${randomBytes(4).toString('hex')}`];
  const pwa = opts.pwaDir === undefined ? PWA_DIST : opts.pwaDir;
  if (pwa) args.push('--pwa-dir', pwa);
  args.push(...(opts.extraArgs ?? []));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LANRAGE_LOG: 'debug', ...opts.env } });
  running.add(child);
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    running.delete(child);
    resolve(code);
  }));
  const ready = await new Promise<{ grpcPort: number; httpPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`helper did not become ready in 45 s:\n${logs.join('\n')}`)), 45_000);
    createInterface({ input: child.stderr! }).on('line', (line) => {
      logs.push(line);
      try {
        const rec = JSON.parse(line) as { msg?: string; grpcPort?: number; httpPort?: number };
        if (rec.msg === 'helper ready' && rec.grpcPort && rec.httpPort) {
          clearTimeout(timer);
          resolve({ grpcPort: rec.grpcPort, httpPort: rec.httpPort });
        }
      } catch {
        // not a log record
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`helper exited with ${code} before it was ready:\n${logs.join('\n')}`));
    });
  });
  return {
    ...ready,
    token: readFileSync(join(stateDir, 'api-token'), 'utf8').trim(),
    stateDir,
    pid: child.pid!,
    logs,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}

export function removeStateDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
