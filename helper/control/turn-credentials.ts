// TURN REST credentials ("A REST API for access to TURN services", as coturn's `use-auth-secret`
// implements it): username "<unix expiry>:<device id>", password base64(HMAC-SHA1(secret, username)).
// The relay checks them with the shared secret alone, so the control server mints them and no relay
// holds a user database. coturn looks at them only at Allocate: a session keeps its key after the
// credentials expire, so a short TTL limits who can *start* relaying, not how long a party runs.
// Pure: the clock is an argument.

import { createHmac, timingSafeEqual } from 'node:crypto';

export interface MintedTurnCredentials {
  username: string;
  password: string;
  /** Unix time (seconds) after which the relay refuses new allocations with them. */
  expiresAt: number;
  ttlSeconds: number;
}

/** Long enough to allocate from a slow network; re-allocation always asks for fresh ones. */
export const DEFAULT_TURN_TTL_SECONDS = 600;
export const MAX_TURN_TTL_SECONDS = 7 * 24 * 3600;
/** coturn takes the secret as a string; short ones are guessable offline from any credential. */
export const MIN_SECRET_LENGTH = 16;
// No ':' (coturn's separator between expiry and id) and nothing a log line or the relay's
// username check would trip over.
const ID_RE = /^[A-Za-z0-9._-]{1,128}$/;

function hmac(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username, 'utf8').digest('base64');
}

export function checkTurnSecret(secret: string): void {
  if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH || secret.length > 256 || /[\s#"']/.test(secret)) {
    throw new Error(`the TURN secret must be ${MIN_SECRET_LENGTH}-256 characters without spaces, quotes or #`);
  }
}

export function mintTurnCredentials(secret: string, deviceId: string, nowMs: number, ttlSeconds = DEFAULT_TURN_TTL_SECONDS): MintedTurnCredentials {
  checkTurnSecret(secret);
  if (!ID_RE.test(deviceId)) throw new Error('device id must be 1-128 characters of A-Z a-z 0-9 . _ -');
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TURN_TTL_SECONDS) throw new Error(`TURN credential TTL must be 1-${MAX_TURN_TTL_SECONDS} s`);
  if (!Number.isFinite(nowMs) || nowMs < 0) throw new Error('bad clock');
  const expiresAt = Math.floor(nowMs / 1000) + ttlSeconds;
  const username = `${expiresAt}:${deviceId}`;
  return { username, password: hmac(secret, username), expiresAt, ttlSeconds };
}

/** What the relay decides, for tests and for a control server that wants to check a report. */
export function verifyTurnCredentials(secret: string, username: string, password: string, nowMs: number): boolean {
  const m = /^(\d{1,12}):(.+)$/.exec(username);
  if (!m || !ID_RE.test(m[2] as string)) return false;
  if (Number(m[1]) * 1000 <= nowMs) return false;
  const want = Buffer.from(hmac(secret, username));
  const got = Buffer.from(password);
  return want.length === got.length && timingSafeEqual(want, got);
}
