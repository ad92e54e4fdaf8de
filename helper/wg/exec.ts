import { execFile } from 'node:child_process';

// The one way this engine runs a program: an argument array, never a shell, with a timeout, and
// an error that says which command failed and what it printed. `input` feeds stdin, which is
// how a private key reaches `wg` without touching argv or a file.

export interface RunResult {
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${command} ${args.join(' ')} failed${exitCode === null ? '' : ` (exit ${exitCode})`}: ${stderr.trim() || 'no output'}`);
    this.name = 'CommandError';
  }
}

export function run(command: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { timeout: opts.timeoutMs ?? 10_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const e = err as Omit<NodeJS.ErrnoException, 'code'> & { code?: string | number; killed?: boolean };
        const code = typeof e.code === 'number' ? e.code : null;
        const why = e.code === 'ENOENT' ? `${command} is not installed` : e.killed ? `timed out after ${opts.timeoutMs ?? 10_000} ms` : stderr || err.message;
        reject(new CommandError(command, args, code, why));
        return;
      }
      resolve({ stdout, stderr });
    });
    // Always end stdin: a tool that reads it must not wait for a terminal that never comes.
    // A tool that exits without reading it makes the write fail with EPIPE; its exit status
    // (reported above) is what counts, so the write error is ignored.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}
