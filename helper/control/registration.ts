import { createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import { ApiError, Status } from '../core/api-error.js';
import type { Clock } from '../core/clock.js';

// Device identity: the helper proves it holds an Ed25519 key by signing a fresh server nonce
// together with the keys and name it registers, so a captured registration can neither be
// replayed nor have its WireGuard key swapped. Shared with the client (it builds the same bytes).

export const REGISTER_CONTEXT = 'lanrage-register-v1';
export const NONCE_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const CHALLENGE_TTL_MS = 60_000;

export function registrationMessage(nonce: Uint8Array, wgPublicKey: Uint8Array, discoPublicKey: Uint8Array, name: string): Buffer {
  return Buffer.concat([Buffer.from(REGISTER_CONTEXT, 'utf8'), nonce, wgPublicKey, discoPublicKey, Buffer.from(name, 'utf8')]);
}

export function ed25519PublicKeyFromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

export function verifyRegistration(identityPublicKey: Uint8Array, signature: Uint8Array, message: Buffer): boolean {
  if (signature.length !== SIGNATURE_BYTES) return false;
  try {
    return verify(null, message, ed25519PublicKeyFromRaw(identityPublicKey), signature);
  } catch {
    // Not a point on the curve, or otherwise unusable as a key.
    return false;
  }
}

/** Single-use nonces with an expiry. Bounded, so a flood of GetChallenge cannot eat memory. */
export class ChallengeBook {
  private readonly open = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs = CHALLENGE_TTL_MS,
    private readonly maxOpen = 10_000,
  ) {}

  issue(): { nonce: Buffer; expiresAt: number } {
    const now = this.clock.now();
    if (this.open.size >= this.maxOpen) this.sweep(now);
    if (this.open.size >= this.maxOpen) throw new ApiError(Status.RESOURCE_EXHAUSTED, 'too many registrations in progress; try again in a minute');
    const nonce = randomBytes(NONCE_BYTES);
    const expiresAt = now + this.ttlMs;
    this.open.set(nonce.toString('hex'), expiresAt);
    return { nonce, expiresAt };
  }

  /** True once per issued, unexpired nonce. */
  consume(nonce: Uint8Array): boolean {
    const key = Buffer.from(nonce).toString('hex');
    const expiresAt = this.open.get(key);
    if (expiresAt === undefined) return false;
    this.open.delete(key);
    return this.clock.now() < expiresAt;
  }

  private sweep(now: number): void {
    for (const [k, exp] of this.open) if (exp <= now) this.open.delete(k);
  }

  get size(): number {
    return this.open.size;
  }
}
