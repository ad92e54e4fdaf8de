import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { deviceIdFromIdentityKey } from '../control/ids.js';

// The device's identity for the control server: an Ed25519 key pair. The device id is derived
// from the public key, so losing this file means becoming a new device.

export function loadOrCreateIdentity(file: string): KeyObject {
  let pem: string | undefined;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (pem !== undefined) {
    chmodSync(file, 0o600);
    return parseIdentity(pem, file);
  }
  const { privateKey } = generateKeyPairSync('ed25519');
  const tmp = `${file}.${process.pid}.tmp`;
  // Created with 0600 and renamed into place: the key is never readable by others, and a crash
  // cannot leave a half-written identity behind.
  writeFileSync(tmp, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
  renameSync(tmp, file);
  return privateKey;
}

export function parseIdentity(pem: string, where = 'identity'): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new Error(`${where} is not a PEM private key (${(err as Error).message}); move it away to create a new identity`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${where} holds a ${key.asymmetricKeyType} key, not Ed25519`);
  return key;
}

/** The 32 raw bytes of the Ed25519 public key (from a private or public KeyObject). */
export function identityPublicKeyRaw(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const x = pub.export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new Error('not an Ed25519 key');
  return Buffer.from(x, 'base64url');
}

export const deviceIdOf = (key: KeyObject): string => deviceIdFromIdentityKey(identityPublicKeyRaw(key));

export const signWithIdentity = (key: KeyObject, message: Buffer): Buffer => sign(null, message, key);
