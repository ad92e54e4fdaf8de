import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

// Identifiers and secrets of the control plane. Shared with the client (pure, no I/O), so both
// sides agree on formats.

export const DEVICE_ID_RE = /^[a-z2-7]{24}$/;
export const PARTY_ID_RE = /^[a-z2-7]{16}$/;
export const INVITE_SECRET_RE = /^[A-Za-z0-9_-]{43}$/;
export const SESSION_TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

// RFC 4648 base32, lowercase, no padding. Node has no base32 codec and the ids only need the
// encoder, so a dozen lines beat a dependency.
export function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/** The device id is a function of the identity key, so no device can claim another's id. */
export function deviceIdFromIdentityKey(identityPublicKey: Uint8Array): string {
  return base32(createHash('sha256').update(identityPublicKey).digest().subarray(0, 15));
}

export const newPartyId = (): string => base32(randomBytes(10));
export const newInviteSecret = (): string => randomBytes(32).toString('base64url');
export const newSessionToken = (): string => randomBytes(32).toString('base64url');

// The secrets carry 256 bits of entropy, so a plain SHA-256 is enough (no slow KDF needed):
// nothing useful can be guessed from a leaked hash.
export const hashSecret = (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest();

export function secretMatches(storedHash: Uint8Array, presented: string): boolean {
  const h = hashSecret(presented);
  return storedHash.length === h.length && timingSafeEqual(storedHash, h);
}
