import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync, fsyncSync, openSync, closeSync } from 'node:fs';
import { dirname } from 'node:path';

// WireGuard keys are raw X25519 keys, written as standard base64 (44 characters). node:crypto
// does the curve arithmetic (no `wg genkey`/`wg pubkey` processes); only the raw-key <-> DER
// wrapping is done here, because Node imports raw X25519 keys only through PKCS#8/SPKI or JWK.

export interface WgKeyPair {
  privateKey: string;
  publicKey: string;
}

export const WG_KEY_BYTES = 32;

// 32 bytes = 43 base64 characters + '='. The 43rd carries 2 padding bits that must be zero, so
// only 16 characters may stand there: this keeps one canonical spelling per key.
const WG_KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

export function isWgKey(s: unknown): s is string {
  return typeof s === 'string' && WG_KEY_RE.test(s) && Buffer.from(s, 'base64').length === WG_KEY_BYTES;
}

/** The 32 raw bytes of a key; throws on anything that is not a WireGuard key. */
export function keyBytes(b64: string): Buffer {
  if (!isWgKey(b64)) throw new Error('not a WireGuard key (44 characters of standard base64 holding 32 bytes)');
  return Buffer.from(b64, 'base64');
}

/** The UAPI spelling of a key: 64 lowercase hex digits. */
export const keyToHex = (b64: string): string => keyBytes(b64).toString('hex');

export function keyFromHex(hex: string): string {
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error('not a 64-digit lowercase hex key');
  return Buffer.from(hex, 'hex').toString('base64');
}

// PKCS#8 header of an X25519 private key (RFC 8410): SEQUENCE, version 0, OID 1.3.101.110,
// OCTET STRING(OCTET STRING(32 bytes)). The raw key follows.
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

function publicKeyOfBytes(priv: Buffer): Buffer {
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, priv]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return spki.subarray(spki.length - WG_KEY_BYTES);
}

// Every UAPI get returns the device's private key, and its public key is derived from it: the
// traffic watch reads the counters every second, so the last derivation is remembered (an X25519
// key object per read was most of an idle helper's crypto time).
let lastDerived: { priv: string; pub: string } | null = null;

export function publicKeyOf(privateKeyB64: string): string {
  if (lastDerived?.priv === privateKeyB64) return lastDerived.pub;
  const pub = publicKeyOfBytes(keyBytes(privateKeyB64)).toString('base64');
  lastDerived = { priv: privateKeyB64, pub };
  return pub;
}

/** Like `wg genkey | tee priv | wg pubkey`: 32 random bytes clamped as Curve25519 wants. */
export function generateKeyPair(): WgKeyPair {
  const priv = randomBytes(WG_KEY_BYTES);
  priv[0]! &= 248;
  priv[31]! &= 127;
  priv[31]! |= 64;
  return { privateKey: priv.toString('base64'), publicKey: publicKeyOfBytes(priv).toString('base64') };
}

/** Parses a stored key file: wg's format (one base64 line) or JSON `{"privateKey": "..."}`. */
export function parseKeyFile(text: string, where = 'key file'): WgKeyPair {
  const trimmed = text.trim();
  let priv: unknown = trimmed;
  if (trimmed.startsWith('{')) {
    try {
      priv = (JSON.parse(trimmed) as { privateKey?: unknown }).privateKey;
    } catch {
      throw new Error(`${where} is neither a WireGuard private key nor JSON; move it away to create a new key`);
    }
  }
  if (!isWgKey(priv)) throw new Error(`${where} does not hold a WireGuard private key; move it away to create a new key`);
  return { privateKey: priv, publicKey: publicKeyOf(priv) };
}

/**
 * The device's WireGuard key, created once. Stored in wg's own format (so `wg pubkey < file`
 * works), mode 0600. Creation writes a private temp file, then link()s it into place: link fails
 * if the file appeared meanwhile, so two racing starts agree on one key and a crash never leaves
 * a half-written key behind.
 */
export function loadOrCreateKeyPair(file: string): WgKeyPair {
  const existing = readIfExists(file);
  if (existing !== undefined) {
    chmodSync(file, 0o600);
    return parseKeyFile(existing, file);
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const pair = generateKeyPair();
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeFileSync(fd, pair.privateKey + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return parseKeyFile(readFileSync(file, 'utf8'), file);
  } finally {
    unlinkSync(tmp);
  }
  return pair;
}

function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
