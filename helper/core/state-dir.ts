import { mkdirSync, chmodSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

// The helper is privileged: as root its state lives in /var/lib/lanrage; a developer running it
// unprivileged gets the XDG state directory instead.
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? -1): string {
  if (env.LANRAGE_STATE_DIR) return env.LANRAGE_STATE_DIR;
  if (uid === 0) return '/var/lib/lanrage';
  return join(env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'lanrage');
}

// Keys and the API token live here, so nobody else may list or read it.
export function ensureStateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}
