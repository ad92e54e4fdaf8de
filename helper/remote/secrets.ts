import { createHash, randomBytes } from 'node:crypto';

// Pairing codes and device tokens: 256 random bits as base64url (43 characters). Both are kept
// only as SHA-256 hashes, and compared by hash lookup, so neither is recoverable from our state.

const SECRET_RE = /^[A-Za-z0-9_-]{43}$/;

export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function isSecretShaped(s: string): boolean {
  return SECRET_RE.test(s);
}

export function hashSecret(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

export function newDeviceId(): string {
  return randomBytes(9).toString('base64url');
}
