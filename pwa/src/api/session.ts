// The per-install token that mutating calls need. The helper serves it at /api/session only to
// its own origin, so the page asks once and keeps it in memory (never in storage).
import { ApiError, Code } from './errors.js';

let pending: Promise<string> | undefined;

async function fetchToken(): Promise<string> {
  let res: Response;
  try {
    res = await fetch('/api/session', { credentials: 'same-origin', cache: 'no-store' });
  } catch (err) {
    throw new ApiError(Code.UNAVAILABLE, `Could not reach the helper for a session: ${String(err)}`);
  }
  if (!res.ok) throw new ApiError(Code.UNAUTHENTICATED, `The helper refused a session (HTTP ${res.status}).`);
  const body: unknown = await res.json();
  const token = typeof body === 'object' && body !== null ? (body as { token?: unknown }).token : undefined;
  if (typeof token !== 'string' || token === '') {
    throw new ApiError(Code.UNAUTHENTICATED, 'The helper sent a session without a token.');
  }
  return token;
}

/** The session token, fetched on first use; a failed fetch is forgotten so the next call retries. */
export function sessionToken(): Promise<string> {
  if (!pending) {
    pending = fetchToken().catch((err: unknown) => {
      pending = undefined;
      throw err;
    });
  }
  return pending;
}

/** Drops the cached token, e.g. after UNAUTHENTICATED (the helper was reinstalled with a new one). */
export function forgetSessionToken(): void {
  pending = undefined;
}
