import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';

export const TOKEN_FILE = 'api-token';

// The per-install token that mutating API calls must present. It is created once, readable only
// by the helper's user (the CLI, run as the same user, reads it too), and handed to the browser
// only through the same-origin /api/session endpoint.
export function loadOrCreateToken(stateDir: string): string {
  const file = join(stateDir, TOKEN_FILE);
  try {
    const existing = readFileSync(file, 'utf8').trim();
    if (/^[A-Za-z0-9_-]{32,}$/.test(existing)) {
      chmodSync(file, 0o600);
      return existing;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = randomBytes(32).toString('base64url');
  writeFileSync(file, token + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return token;
}

export function readToken(stateDir: string): string | null {
  try {
    return readFileSync(join(stateDir, TOKEN_FILE), 'utf8').trim() || null;
  } catch {
    return null;
  }
}

export function tokenMatches(expected: string, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

// Accepts "Bearer <token>" (any case of the scheme), the form both the PWA and the CLI send.
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}
