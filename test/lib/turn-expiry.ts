import assert from 'node:assert/strict';

/**
 * Relay credentials minted during a call (between `before` and `after`, local clock) expire `ttlMs`
 * after minting, to the second (TURN REST usernames carry whole seconds). Bracketed by the call
 * itself, so a slow call on a loaded machine is not mistaken for a wrong lifetime.
 */
export function assertMintedExpiry(expiresAt: number, before: number, after: number, ttlMs: number): void {
  assert.ok(
    expiresAt >= before + ttlMs - 1000 && expiresAt <= after + ttlMs + 1000,
    `expires ${expiresAt - before} ms after the call began (${after - before} ms long); want ~${ttlMs} ms`,
  );
}
