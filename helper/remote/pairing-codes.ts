import { hashSecret, isSecretShaped, newSecret } from './secrets.js';
import type { RemoteScopeName } from '../store/paired-devices-repo.js';

// One-time pairing codes, in memory only (a restart voids them: they live 5 minutes anyway).
// Held by hash, so even a heap dump does not hand out a usable code.

export const PAIRING_TTL_MS = 5 * 60_000;
const MAX_OPEN_CODES = 16;

interface Pending {
  scope: RemoteScopeName;
  expiresMs: number;
}

export class PairingCodes {
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly now: () => number = Date.now) {}

  create(scope: RemoteScopeName): { code: string; expiresMs: number } {
    this.prune();
    // The oldest goes first: a desktop that keeps pressing "new code" never grows this map.
    if (this.pending.size >= MAX_OPEN_CODES) this.pending.delete(this.pending.keys().next().value as string);
    const code = newSecret();
    const expiresMs = this.now() + PAIRING_TTL_MS;
    this.pending.set(hashSecret(code), { scope, expiresMs });
    return { code, expiresMs };
  }

  /** The code's scope once, or null (wrong, expired, or already used). */
  consume(code: string): RemoteScopeName | null {
    if (!isSecretShaped(code)) return null;
    const key = hashSecret(code);
    const p = this.pending.get(key);
    if (!p) return null;
    this.pending.delete(key);
    return p.expiresMs > this.now() ? p.scope : null;
  }

  clear(): void {
    this.pending.clear();
  }

  private prune(): void {
    const t = this.now();
    for (const [k, p] of this.pending) if (p.expiresMs <= t) this.pending.delete(k);
  }
}
