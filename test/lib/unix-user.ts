import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { haveCommands } from './repo.js';

// Temporary Unix users for tests that prove what another local user can and cannot do.
// Needs root, useradd/userdel and runuser (util-linux). Users are removed in cleanup.

const run = promisify(execFile);

export interface TempUser {
  name: string;
  uid: number;
  /** Runs argv as this user (no shell); never throws, returns the exit code and output. */
  exec(argv: string[], opts?: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: never }): Promise<{ code: number; stdout: Buffer; stderr: string }>;
  remove(): void;
}

export function canMakeUsers(): boolean {
  return process.getuid?.() === 0 && haveCommands(['useradd', 'userdel', 'runuser']);
}

const made = new Set<string>();
process.on('exit', () => {
  for (const n of made) {
    try {
      execFileSync('userdel', [n], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
});

export function makeUser(prefix: string): TempUser {
  const name = `${prefix}${randomBytes(3).toString('hex')}`.slice(0, 31);
  execFileSync('useradd', ['--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', '--no-user-group', '--gid', 'nogroup', name]);
  made.add(name);
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
  return {
    name,
    uid,
    async exec(argv, opts = {}) {
      // A clean environment: nothing of root's leaks into the other user's process.
      const env = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/nonexistent', LANG: 'C.UTF-8', ...opts.env };
      const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v ?? ''}`);
      try {
        const r = await run('runuser', ['-u', name, '--', 'env', '-i', ...envArgs, ...argv], { encoding: 'buffer', timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024, cwd: '/' });
        return { code: 0, stdout: r.stdout, stderr: r.stderr.toString() };
      } catch (e) {
        const err = e as { code?: number | string; stdout?: Buffer; stderr?: Buffer };
        return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? Buffer.alloc(0), stderr: err.stderr?.toString() ?? String(e) };
      }
    },
    remove() {
      try {
        execFileSync('userdel', [name], { stdio: 'ignore' });
      } catch {
        // already gone
      }
      made.delete(name);
    },
  };
}
