// Disco: small authenticated messages between helpers that prove a UDP path works and measure
// its RTT (Tailscale's disco, our own wire format). Every message is
//   magic(4) || sender disco public key(32) || nonce(12) || ChaCha20-Poly1305(body) || tag(16)
// keyed by HKDF-SHA256(X25519(my private, their public), info "lanrage-disco-v1"), with
// magic||sender key as associated data. The same key serves both directions (X25519 is
// symmetric), so nonces are random 96-bit values: disco sends a few packets per second at most.
// node:crypto does all of it; no library needed.

import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto';
import { pooledRandomBytes } from '../core/random-pool.js';
import { DISCO_MAGIC, DISCO_MIN_LEN } from './demux.js';
import { ipToInt, intToIp, isIPv4 } from './addr.js';

export const DISCO_INFO = 'lanrage-disco-v1';
const KEY_LEN = 32;
const NONCE_LEN = 12;
const TAG_LEN = 16;
const HEADER_LEN = DISCO_MAGIC.length + KEY_LEN; // the associated data
export const TXID_LEN = 12;

// DER wrappers that turn raw 32-byte X25519 keys into KeyObjects (RFC 8410 structures).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

export type DiscoMessage =
  | { type: 'ping'; txid: Buffer }
  | { type: 'pong'; txid: Buffer; observed: string };

const TYPE_PING = 0x01;
const TYPE_PONG = 0x02;

/** A base64 raw 32-byte key, as WireGuard writes its keys (44 characters, canonical padding). */
export function isKey(s: unknown): s is string {
  return typeof s === 'string' && KEY_RE.test(s);
}

function rawKey(b64: string, what: string): Buffer {
  if (!isKey(b64)) throw new Error(`${what} is not a base64 32-byte key`);
  return Buffer.from(b64, 'base64');
}

export function generateDiscoKey(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return {
    privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_PREFIX.length).toString('base64'),
    publicKey: publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length).toString('base64'),
  };
}

function privateKeyObject(b64: string): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, rawKey(b64, 'disco private key')]), format: 'der', type: 'pkcs8' });
}

function publicKeyObject(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

export function discoPublicKeyOf(privateKeyB64: string): string {
  return createPublicKey(privateKeyObject(privateKeyB64)).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length).toString('base64');
}

/** The plaintext body, exported for tests. */
export function encodeBody(m: DiscoMessage): Buffer {
  if (m.txid.length !== TXID_LEN) throw new Error('disco txid must be 12 bytes');
  if (m.type === 'ping') return Buffer.concat([Buffer.from([TYPE_PING]), m.txid]);
  const i = m.observed.lastIndexOf(':');
  const ip = m.observed.slice(0, i);
  const port = Number(m.observed.slice(i + 1));
  if (i < 0 || !isIPv4(ip) || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad observed address ${m.observed}`);
  const b = Buffer.alloc(1 + TXID_LEN + 6);
  b[0] = TYPE_PONG;
  m.txid.copy(b, 1);
  b.writeUInt32BE(ipToInt(ip), 1 + TXID_LEN);
  b.writeUInt16BE(port, 1 + TXID_LEN + 4);
  return b;
}

export function decodeBody(b: Buffer): DiscoMessage | null {
  if (b[0] === TYPE_PING && b.length === 1 + TXID_LEN) return { type: 'ping', txid: Buffer.from(b.subarray(1)) };
  if (b[0] === TYPE_PONG && b.length === 1 + TXID_LEN + 6) {
    return {
      type: 'pong',
      txid: Buffer.from(b.subarray(1, 1 + TXID_LEN)),
      observed: `${intToIp(b.readUInt32BE(1 + TXID_LEN))}:${b.readUInt16BE(1 + TXID_LEN + 4)}`,
    };
  }
  return null;
}

export type OpenResult =
  | { ok: true; sender: string; message: DiscoMessage }
  | { ok: false; error: 'malformed' | 'unknown-key' | 'auth' };

/** This helper's disco identity and the shared keys of the peers it knows (cached per peer). */
export class DiscoBox {
  readonly publicKey: string;
  private readonly priv: KeyObject;
  private readonly header: Buffer;
  private readonly peers = new Map<string, Buffer>();

  constructor(privateKeyB64: string) {
    this.priv = privateKeyObject(privateKeyB64);
    this.publicKey = discoPublicKeyOf(privateKeyB64);
    this.header = Buffer.concat([DISCO_MAGIC, Buffer.from(this.publicKey, 'base64')]);
  }

  /** Derives and caches the shared key; throws for a malformed or degenerate (low-order) key. */
  addPeer(publicKeyB64: string): void {
    if (this.peers.has(publicKeyB64)) return;
    if (publicKeyB64 === this.publicKey) throw new Error('a peer cannot have this helper\'s own disco key');
    let shared: Buffer;
    try {
      shared = diffieHellman({ privateKey: this.priv, publicKey: publicKeyObject(rawKey(publicKeyB64, 'peer disco key')) });
    } catch (err) {
      throw new Error(`peer disco key rejected: ${(err as Error).message}`);
    }
    if (shared.every((x) => x === 0)) throw new Error('peer disco key rejected: low-order point');
    this.peers.set(publicKeyB64, Buffer.from(hkdfSync('sha256', shared, Buffer.alloc(0), DISCO_INFO, KEY_LEN)));
  }

  removePeer(publicKeyB64: string): void {
    this.peers.delete(publicKeyB64);
  }

  hasPeer(publicKeyB64: string): boolean {
    return this.peers.has(publicKeyB64);
  }

  seal(peerPublicKey: string, m: DiscoMessage): Buffer {
    const key = this.peers.get(peerPublicKey);
    if (!key) throw new Error('disco: unknown peer key');
    const nonce = pooledRandomBytes(NONCE_LEN);
    const body = encodeBody(m);
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_LEN });
    c.setAAD(this.header, { plaintextLength: body.length });
    const ct = c.update(body);
    c.final();
    return Buffer.concat([this.header, nonce, ct, c.getAuthTag()]);
  }

  open(b: Buffer): OpenResult {
    if (b.length < DISCO_MIN_LEN || !b.subarray(0, DISCO_MAGIC.length).equals(DISCO_MAGIC)) return { ok: false, error: 'malformed' };
    const sender = b.toString('base64', DISCO_MAGIC.length, HEADER_LEN);
    const key = this.peers.get(sender);
    if (!key) return { ok: false, error: 'unknown-key' };
    const nonce = b.subarray(HEADER_LEN, HEADER_LEN + NONCE_LEN);
    const ct = b.subarray(HEADER_LEN + NONCE_LEN, b.length - TAG_LEN);
    let body: Buffer;
    try {
      const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_LEN });
      d.setAAD(b.subarray(0, HEADER_LEN), { plaintextLength: ct.length });
      d.setAuthTag(b.subarray(b.length - TAG_LEN));
      body = Buffer.concat([d.update(ct), d.final()]);
    } catch {
      return { ok: false, error: 'auth' };
    }
    const message = decodeBody(body);
    return message ? { ok: true, sender, message } : { ok: false, error: 'malformed' };
  }
}
