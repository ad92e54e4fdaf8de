// The one STUN codec (RFC 8489/8656/5780) for every user: the TURN client, the Binding client on
// magicsock's socket, netcheck's RFC 5780 tests and the control server's STUN responder.
//
// Encoding goes through the `stun` package (attribute layout, padding, MESSAGE-INTEGRITY and
// FINGERPRINT computation). Its bugs (shared/STACK-NOTES.md) are worked around here and nowhere
// else:
//   - REQUESTED-TRANSPORT and CHANNEL-NUMBER are 32-bit values with the number in the top bits
//     (`17<<24`, `ch*0x10000`); out-of-range values silently encode as 0, so everything is checked
//     before it reaches the package;
//   - addMessageIntegrity wants the raw 16-byte MD5 long-term key;
//   - ERROR-CODE 401 decodes as 404, validateMessageIntegrity rejects valid coturn answers, IPv6
//     address attributes throw and a repeated attribute is dropped: so the decoder below is written
//     by hand on the raw bytes (small, bounds-checked, never throws on hostile input), and the
//     package's own decode() is only reached through guardedDecode(), which checks the header first
//     and turns a throw into null.
// Binding.ts builds the Binding/RFC 5780 messages on top; transactions.ts matches and retransmits.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import { crc32 } from 'node:zlib';
import { isIPv4, parseEndpoint, type Endpoint } from '../addr.js';
import { isStun, STUN_COOKIE } from '../demux.js';

export interface StunLibAttr {
  readonly value: { address?: unknown; port?: unknown; family?: unknown } | number | unknown;
}
export interface StunLibMsg {
  readonly type: number;
  readonly transactionId: Buffer;
  addAttribute(type: number, ...args: unknown[]): unknown;
  getAttribute(type: number): StunLibAttr | undefined;
  addMessageIntegrity(key: Buffer): boolean;
  addFingerprint(): boolean;
}
interface StunLib {
  createMessage(type: number, transaction?: Buffer): StunLibMsg;
  encode(m: StunLibMsg): Buffer;
  decode(b: Buffer): StunLibMsg;
}
// The package has no types; this is the part we use.
export const stunLib = createRequire(import.meta.url)('stun') as StunLib;

/**
 * The package's decode() of a well-formed STUN message (header checked first, trailing bytes cut),
 * or null: it throws on IPv6 address attributes and other input it does not like.
 */
export function guardedDecode(b: Buffer): StunLibMsg | null {
  if (!isStun(b)) return null;
  const declared = b.readUInt16BE(2);
  if (declared % 4 !== 0 || declared + 20 > b.length) return null;
  try {
    return stunLib.decode(b.subarray(0, 20 + declared));
  } catch {
    return null;
  }
}

export const METHOD = { BINDING: 0x001, ALLOCATE: 0x003, REFRESH: 0x004, SEND: 0x006, DATA: 0x007, CREATE_PERMISSION: 0x008, CHANNEL_BIND: 0x009 } as const;
export const CLASS = { REQUEST: 0x000, INDICATION: 0x010, SUCCESS: 0x100, ERROR: 0x110 } as const;

export const ATTR = {
  MAPPED_ADDRESS: 0x0001,
  CHANGE_REQUEST: 0x0003,
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  UNKNOWN_ATTRIBUTES: 0x000a,
  CHANNEL_NUMBER: 0x000c,
  LIFETIME: 0x000d,
  XOR_PEER_ADDRESS: 0x0012,
  DATA: 0x0013,
  REALM: 0x0014,
  NONCE: 0x0015,
  XOR_RELAYED_ADDRESS: 0x0016,
  REQUESTED_TRANSPORT: 0x0019,
  XOR_MAPPED_ADDRESS: 0x0020,
  SOFTWARE: 0x8022,
  FINGERPRINT: 0x8028,
  RESPONSE_ORIGIN: 0x802b,
  OTHER_ADDRESS: 0x802c,
} as const;

export const FINGERPRINT_XOR = 0x5354554e;
const UDP_PROTOCOL = 17;
/** RFC 8656: channel numbers 0x4000-0x4FFF; 0x5000-0x7FFF are reserved. */
export const CHANNEL_MIN = 0x4000;
export const CHANNEL_MAX = 0x4fff;
/** REALM and NONCE are at most 763 bytes (RFC 8489); USERNAME at most 513. */
const MAX_REALM_NONCE = 763;
const MAX_USERNAME = 513;

export function messageType(method: number, cls: number): number {
  // The class bits sit at positions 4 and 8 of the type, between the method bits (RFC 8489 §5).
  return ((method & 0xf80) << 2) | ((method & 0x070) << 1) | (method & 0x00f) | cls;
}

export function methodOf(type: number): number {
  return ((type & 0x3e00) >> 2) | ((type & 0x00e0) >> 1) | (type & 0x000f);
}

export function classOf(type: number): number {
  return type & 0x0110;
}

/** RFC 8489 §9.2.2: the long-term key is MD5(username ":" realm ":" password), used raw. */
export function longTermKey(username: string, realm: string, password: string): Buffer {
  return createHash('md5').update(`${username}:${realm}:${password}`, 'utf8').digest();
}

export interface Auth {
  username: string;
  realm: string;
  nonce: string;
  key: Buffer;
}

export interface OutAttrs {
  lifetime?: number;
  /** Only UDP relaying: a game's packets are datagrams. */
  requestedTransport?: 'udp';
  peer?: Endpoint;
  channel?: number;
  data?: Buffer;
}

function checkEndpoint(e: Endpoint): void {
  if (!isIPv4(e.ip) || !Number.isInteger(e.port) || e.port < 1 || e.port > 65535) throw new Error(`not an IPv4 endpoint: ${e.ip}:${e.port}`);
}

/**
 * A request or indication. With auth, USERNAME, REALM, NONCE and MESSAGE-INTEGRITY are added; every
 * message ends with FINGERPRINT so that it can be told apart on a socket shared with other protocols.
 */
export function encodeMessage(type: number, txid: Buffer, attrs: OutAttrs = {}, auth?: Auth): Buffer {
  if (txid.length !== 12) throw new Error('transaction id must be 12 bytes');
  const m = stunLib.createMessage(type, txid);
  // The package silently encodes out-of-range values as 0: check everything first.
  if (attrs.requestedTransport !== undefined) m.addAttribute(ATTR.REQUESTED_TRANSPORT, UDP_PROTOCOL * 0x1000000);
  if (attrs.lifetime !== undefined) {
    if (!Number.isInteger(attrs.lifetime) || attrs.lifetime < 0 || attrs.lifetime > 0xffffffff) throw new Error(`bad lifetime ${attrs.lifetime}`);
    m.addAttribute(ATTR.LIFETIME, attrs.lifetime);
  }
  if (attrs.channel !== undefined) {
    if (!Number.isInteger(attrs.channel) || attrs.channel < CHANNEL_MIN || attrs.channel > CHANNEL_MAX) throw new Error(`bad channel number ${attrs.channel}`);
    m.addAttribute(ATTR.CHANNEL_NUMBER, attrs.channel * 0x10000);
  }
  if (attrs.peer !== undefined) {
    checkEndpoint(attrs.peer);
    m.addAttribute(ATTR.XOR_PEER_ADDRESS, attrs.peer.ip, attrs.peer.port);
  }
  if (attrs.data !== undefined) m.addAttribute(ATTR.DATA, attrs.data);
  if (auth) {
    const u = Buffer.byteLength(auth.username);
    if (u === 0 || u > MAX_USERNAME) throw new Error('TURN username must be 1-513 bytes');
    if (Buffer.byteLength(auth.realm) > MAX_REALM_NONCE || Buffer.byteLength(auth.nonce) > MAX_REALM_NONCE) throw new Error('realm/nonce too long');
    if (auth.key.length !== 16) throw new Error('long-term key must be the 16-byte MD5');
    // Byte strings, not the package's addUsername/addRealm, which cap at 128 characters.
    m.addAttribute(ATTR.USERNAME, Buffer.from(auth.username, 'utf8'));
    m.addAttribute(ATTR.REALM, Buffer.from(auth.realm, 'utf8'));
    m.addAttribute(ATTR.NONCE, Buffer.from(auth.nonce, 'utf8'));
    if (!m.addMessageIntegrity(auth.key)) throw new Error('could not add MESSAGE-INTEGRITY');
  }
  m.addFingerprint();
  return stunLib.encode(m);
}

export interface RawAttr {
  type: number;
  /** Offset of the attribute header in the message. */
  offset: number;
  value: Buffer;
}

export interface Decoded {
  type: number;
  method: number;
  cls: number;
  txid: Buffer;
  /** The message exactly as declared by its header (trailing bytes cut). */
  raw: Buffer;
  attrs: RawAttr[];
}

/** A STUN message, or null when it is not one or is malformed. Never throws. */
export function decodeMessage(b: Buffer): Decoded | null {
  if (!isStun(b)) return null;
  const len = b.readUInt16BE(2);
  if (len % 4 !== 0 || 20 + len > b.length) return null;
  const raw = b.subarray(0, 20 + len);
  const attrs: RawAttr[] = [];
  let off = 20;
  while (off < raw.length) {
    if (off + 4 > raw.length) return null;
    const type = raw.readUInt16BE(off);
    const alen = raw.readUInt16BE(off + 2);
    const end = off + 4 + alen;
    if (end > raw.length) return null;
    attrs.push({ type, offset: off, value: raw.subarray(off + 4, end) });
    off = end + ((4 - (alen % 4)) % 4);
    // Nothing may follow FINGERPRINT; MESSAGE-INTEGRITY may only be followed by FINGERPRINT.
    if (type === ATTR.FINGERPRINT) break;
  }
  const type = raw.readUInt16BE(0);
  return { type, method: methodOf(type), cls: classOf(type), txid: raw.subarray(8, 20), raw, attrs };
}

export function attr(m: Decoded, type: number): Buffer | undefined {
  return m.attrs.find((a) => a.type === type)?.value;
}

export function attrs(m: Decoded, type: number): Buffer[] {
  return m.attrs.filter((a) => a.type === type).map((a) => a.value);
}

/** ERROR-CODE read from the raw bytes: class (hundreds) in bits 0-2 of byte 2, number in byte 3. */
export function errorCode(m: Decoded): { code: number; reason: string } | null {
  const v = attr(m, ATTR.ERROR_CODE);
  if (!v || v.length < 4) return null;
  const cls = (v[2] as number) & 0x07;
  const num = v[3] as number;
  if (cls < 3 || cls > 6 || num > 99) return null;
  return { code: cls * 100 + num, reason: v.subarray(4).toString('utf8').replace(/[\x00-\x1f]+/g, ' ').trim().slice(0, 128) };
}

/** An (XOR-)address attribute value as an IPv4 endpoint; null for IPv6 or garbage. */
export function readAddress(v: Buffer | undefined, xored: boolean): Endpoint | null {
  if (!v || v.length !== 8 || v[1] !== 1) return null;
  let port = v.readUInt16BE(2);
  let ip = v.readUInt32BE(4);
  if (xored) {
    port ^= STUN_COOKIE >>> 16;
    ip = (ip ^ STUN_COOKIE) >>> 0;
  }
  if (port === 0) return null;
  return { ip: `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`, port };
}

export function readUint32(v: Buffer | undefined): number | null {
  return v && v.length === 4 ? v.readUInt32BE(0) : null;
}

export function readString(v: Buffer | undefined, max = MAX_REALM_NONCE): string | null {
  if (!v || v.length > max) return null;
  return v.toString('utf8');
}

/** Recomputes MESSAGE-INTEGRITY over the raw bytes (header length as if MI were the last attribute). */
export function checkIntegrity(m: Decoded, key: Buffer): boolean {
  const mi = m.attrs.find((a) => a.type === ATTR.MESSAGE_INTEGRITY);
  if (!mi || mi.value.length !== 20) return false;
  const head = Buffer.from(m.raw.subarray(0, mi.offset));
  head.writeUInt16BE(mi.offset + 24 - 20, 2);
  const mac = createHmac('sha1', key).update(head).digest();
  return timingSafeEqual(mac, mi.value);
}

export function hasIntegrity(m: Decoded): boolean {
  return m.attrs.some((a) => a.type === ATTR.MESSAGE_INTEGRITY);
}

/** True when there is no FINGERPRINT or it is right. */
export function checkFingerprint(m: Decoded): boolean {
  const fp = m.attrs.find((a) => a.type === ATTR.FINGERPRINT);
  if (!fp) return true;
  if (fp.value.length !== 4 || fp.offset + 8 !== m.raw.length) return false;
  return ((crc32(m.raw.subarray(0, fp.offset)) ^ FINGERPRINT_XOR) >>> 0) === fp.value.readUInt32BE(0);
}

export function endpointOf(s: string): Endpoint {
  const e = parseEndpoint(s);
  if (!e) throw new Error(`not "ip:port": ${JSON.stringify(s)}`);
  return e;
}
