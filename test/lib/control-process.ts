import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HELPER_MAIN } from './repo.js';

// `lanrage control` as a real process (so that a test can kill it by PID), on loopback.

export interface ControlProcess {
  proc: ChildProcess;
  pid: number;
  grpcPort: number;
  url: string;
  /** Its log so far (JSON lines). */
  log(): string;
  /** Resolves with the exit code once it exited. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** `nodeArgs`: flags for node itself (e.g. --cpu-prof, which NODE_OPTIONS does not take). */
export async function startControlProcess(extraArgs: string[], env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): Promise<ControlProcess> {
  const stateDir = mkdtempSync(join(tmpdir(), 'lanrage-ctl-'));
  const proc = spawn(process.execPath, [...nodeArgs, HELPER_MAIN, 'control', '--listen', '127.0.0.1', '--grpc-port', '0', '--stun-port', '0', '--state-dir', stateDir, ...extraArgs], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  let text = '';
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  void exited.then(() => rmSync(stateDir, { recursive: true, force: true }));
  const grpcPort = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL'); // not left running when the caller gives up
      reject(new Error(`control did not start within 20 s:\n${text}`));
    }, 20_000);
    proc.stderr!.on('data', (d: Buffer) => {
      text = (text + d.toString()).slice(-64_000);
      const m = /"msg":"control ready"[^\n]*"grpcPort":(\d+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`control exited (${code}) before it was ready:\n${text}`));
    });
  });
  return {
    proc,
    pid: proc.pid!,
    grpcPort,
    url: `http://127.0.0.1:${grpcPort}`,
    log: () => text,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
  };
}

/** Runs `lanrage control` expecting it to fail: its exit code and stderr. */
export function runControlExpectingExit(extraArgs: string[]): Promise<{ code: number | null; stderr: string }> {
  const stateDir = mkdtempSync(join(tmpdir(), 'lanrage-ctl-'));
  const proc = spawn(process.execPath, [HELPER_MAIN, 'control', '--listen', '127.0.0.1', '--grpc-port', '0', '--stun-port', '0', '--state-dir', stateDir, ...extraArgs], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
  return new Promise((resolve) =>
    proc.once('exit', (code) => {
      clearTimeout(timer);
      rmSync(stateDir, { recursive: true, force: true });
      resolve({ code, stderr });
    }),
  );
}
