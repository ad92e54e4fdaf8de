import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { generateDiscoKey, isKey } from '../net/disco.js';

// The disco key identifies this helper to its peers' disco layer; keeping it across restarts lets
// peers keep trusting our pings while the control server catches up.
export function loadOrCreateDiscoKey(file: string): { privateKey: string; publicKey: string } {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as { privateKey?: unknown; publicKey?: unknown };
    if (isKey(v.privateKey) && isKey(v.publicKey)) return { privateKey: v.privateKey, publicKey: v.publicKey };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && !(err instanceof SyntaxError)) throw err;
  }
  const k = generateDiscoKey();
  writeFileSync(file, JSON.stringify(k), { mode: 0o600 });
  chmodSync(file, 0o600);
  return k;
}
