import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Tests run from dist/test/...; the repository root is the first folder up with package.json
// whose dist/ holds the built helper.
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || dir.endsWith('/dist')) {
    const up = dirname(dir);
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
  return dir;
}

export const REPO_ROOT = findRoot();
export const HELPER_MAIN = join(REPO_ROOT, 'dist', 'helper', 'main.js');
export const PWA_DIST = join(REPO_ROOT, 'dist', 'pwa');

/** A test that needs something this machine lacks: fail loudly in CI, skip loudly elsewhere. */
export function requireOrSkip(ok: boolean, what: string, t: { skip(msg: string): void }): boolean {
  if (ok) return true;
  const msg = `MISSING ${what}: this test cannot run here`;
  if (process.env.CI) throw new Error(`${msg} (CI must install it: see test/run.sh)`);
  process.stderr.write(`\n*** SKIPPED: ${msg} ***\n\n`);
  t.skip(msg);
  return false;
}

/** Whether every command is on PATH (a constant script; the names are passed as arguments). */
export function haveCommands(cmds: readonly string[]): boolean {
  return cmds.every((c) => {
    try {
      execFileSync('sh', ['-c', 'command -v "$1"', 'sh', c], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
}
