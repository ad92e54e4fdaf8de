// The per-install token that mutating calls need. The helper serves it at /api/session only to
// its own origin, so the page asks once and keeps it in memory (never in storage).
// On a phone (the helper's HTTPS remote listener) there is no session: the device token from
// pairing is kept in localStorage and sent on every call, reads included.
import { ApiError, Code } from './errors.js';

const DEVICE_TOKEN_KEY = 'lanrage.deviceToken';

let pairingHere = false;

/** This page is redeeming a pairing link (set before the code leaves the address bar). */
export function markPairing(): void {
  pairingHere = true;
}

/** True on a paired device (or one pairing now): its calls carry the device token. Not "https:"
 * alone: an Envoy front serves the desktop's PWA over TLS too. */
export function onRemote(): boolean {
  return pairingHere || deviceToken() !== null;
}

export function deviceToken(): string | null {
  try {
    return window.localStorage.getItem(DEVICE_TOKEN_KEY);
  } catch {
    return null;
  }
}

let pairing: Promise<unknown> = Promise.resolve();

/** Calls made while a pairing link is being redeemed wait for it (they need its token). */
export function holdCallsUntil(p: Promise<unknown>): void {
  pairing = p.catch(() => undefined);
}

export function setDeviceToken(token: string): void {
  window.localStorage.setItem(DEVICE_TOKEN_KEY, token);
}

let pending: Promise<string> | undefined;

async function fetchToken(): Promise<string> {
  let res: Response;
  try {
    res = await fetch('/api/session', { credentials: 'same-origin', cache: 'no-store' });
  } catch (err) {
    throw new ApiError(Code.UNAVAILABLE, `Could not reach the helper for a session: ${String(err)}`);
  }
  // 404: the phone listener, which never hands out the install token.
  if (res.status === 404) throw new ApiError(Code.UNAUTHENTICATED, 'This device is not paired: scan the QR code in LANrage on the desktop (Settings, Phone).');
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
  if (onRemote()) {
    return pairing.then(() => {
      const t = deviceToken();
      if (t) return t;
      throw new ApiError(Code.UNAUTHENTICATED, 'This phone is not paired: scan the QR code in LANrage on the desktop (Settings, Phone).');
    });
  }
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
