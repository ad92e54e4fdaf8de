// Binding messages (RFC 8489) and the RFC 5780 NAT-discovery parts of them, for every Binding user:
// the client on magicsock's socket (and the lab's answerer), netcheck's tests (CHANGE-REQUEST,
// OTHER-ADDRESS, error answers) and the control server's responder. Built on codec.ts: encoding
// through the `stun` package, decoding through guardedDecode() for the address attributes and the
// raw bytes for ERROR-CODE (the package decodes it wrongly, STACK-NOTES).

import { isIPv4 as isNodeIPv4 } from 'node:net';
import { isIPv4, type Endpoint } from '../addr.js';
import { isStun } from '../demux.js';
import { ATTR, guardedDecode, stunLib, type StunLibAttr } from './codec.js';

export const BINDING_REQUEST = 0x0001;
export const BINDING_RESPONSE = 0x0101;
export const BINDING_ERROR = 0x0111;
/** CHANGE-REQUEST flag bits (RFC 5780 §7.2). */
export const CHANGE_IP = 0x04;
export const CHANGE_PORT = 0x02;

function checkTxid(txid: Buffer): void {
  if (txid.length !== 12) throw new Error('STUN transaction id must be 12 bytes');
}

export function encodeBindingRequest(txid: Buffer): Buffer {
  checkTxid(txid);
  return stunLib.encode(stunLib.createMessage(BINDING_REQUEST, txid));
}

/** For STUN answerers (tests, the lab): a success response carrying XOR-MAPPED-ADDRESS. */
export function encodeBindingResponse(txid: Buffer, mapped: { ip: string; port: number }): Buffer {
  const m = stunLib.createMessage(BINDING_RESPONSE, txid);
  m.addAttribute(ATTR.XOR_MAPPED_ADDRESS, mapped.ip, mapped.port);
  return stunLib.encode(m);
}

export interface StunDecoded {
  type: number;
  txid: Buffer;
  /** XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS, as "ip:port" (IPv4 only), or null. */
  mapped: string | null;
}

function addressOf(attr: StunLibAttr | undefined): { address: unknown; port: unknown } | null {
  const v = attr?.value;
  return v !== null && typeof v === 'object' ? (v as { address: unknown; port: unknown }) : null;
}

export function decodeStun(b: Buffer): StunDecoded | null {
  const m = guardedDecode(b);
  if (!m) return null;
  const txid = Buffer.from(b.subarray(8, 20));
  let mapped: string | null = null;
  for (const t of [ATTR.XOR_MAPPED_ADDRESS, ATTR.MAPPED_ADDRESS]) {
    const v = addressOf(m.getAttribute(t));
    if (v && typeof v.address === 'string' && isIPv4(v.address) && typeof v.port === 'number' && v.port > 0 && v.port <= 65535) {
      mapped = `${v.address}:${v.port}`;
      break;
    }
  }
  return { type: b.readUInt16BE(0), txid, mapped };
}

// --- RFC 5780 (netcheck) -----------------------------------------------------------------------------

export function encodeNetcheckRequest(txid: Buffer, change: { ip: boolean; port: boolean } | null): Buffer {
  checkTxid(txid);
  const m = stunLib.createMessage(BINDING_REQUEST, txid);
  if (change) m.addAttribute(ATTR.CHANGE_REQUEST, (change.ip ? CHANGE_IP : 0) | (change.port ? CHANGE_PORT : 0));
  return stunLib.encode(m);
}

export interface NetcheckAnswer {
  txid: string;
  /** 0 for a success response, else the ERROR-CODE (e.g. 420 when CHANGE-REQUEST is refused). */
  error: number;
  mapped: Endpoint | null;
  other: Endpoint | null;
}

/** A usable unicast IPv4 endpoint from a server's answer (never 0.0.0.0, broadcast, multicast). */
function endpointOf(attr: StunLibAttr | undefined): Endpoint | null {
  const v = addressOf(attr);
  if (!v || typeof v.address !== 'string' || !isIPv4(v.address) || typeof v.port !== 'number') return null;
  if (!Number.isInteger(v.port) || v.port < 1 || v.port > 65535) return null;
  const first = Number(v.address.split('.')[0]);
  if (v.address === '0.0.0.0' || first >= 224) return null;
  return { ip: v.address, port: v.port };
}

/** ERROR-CODE from the raw bytes, any class; 0 when absent or the attributes run past the end. */
function rawErrorCode(b: Buffer, end: number): number {
  for (let off = 20; off + 4 <= end; ) {
    const type = b.readUInt16BE(off);
    const len = b.readUInt16BE(off + 2);
    if (off + 4 + len > end) return 0;
    if (type === ATTR.ERROR_CODE && len >= 4) return ((b[off + 6] ?? 0) & 0x07) * 100 + (b[off + 7] ?? 0);
    off += 4 + Math.ceil(len / 4) * 4;
  }
  return 0;
}

/** A Binding success or error response, or null for anything else or anything malformed. */
export function decodeNetcheckAnswer(b: Buffer): NetcheckAnswer | null {
  if (!isStun(b)) return null;
  const type = b.readUInt16BE(0);
  if (type !== BINDING_RESPONSE && type !== BINDING_ERROR) return null;
  const declared = b.readUInt16BE(2);
  if (declared % 4 !== 0 || declared + 20 > b.length) return null;
  const txid = b.toString('hex', 8, 20);
  if (type === BINDING_ERROR) return { txid, error: rawErrorCode(b, 20 + declared) || 500, mapped: null, other: null };
  const m = guardedDecode(b);
  if (!m) return null;
  return {
    txid,
    error: 0,
    mapped: endpointOf(m.getAttribute(ATTR.XOR_MAPPED_ADDRESS)) ?? endpointOf(m.getAttribute(ATTR.MAPPED_ADDRESS)),
    other: endpointOf(m.getAttribute(ATTR.OTHER_ADDRESS)),
  };
}

// --- the responder's side ------------------------------------------------------------------------------

/**
 * A Binding request's CHANGE-REQUEST flags: null when it has none, 'malformed' when the message
 * does not decode or the attribute is not a number (such a request is ignored).
 */
export function requestChangeFlags(req: Buffer): number | null | 'malformed' {
  const m = guardedDecode(req);
  if (!m) return 'malformed';
  const change = m.getAttribute(ATTR.CHANGE_REQUEST);
  if (!change) return null;
  return typeof change.value === 'number' ? change.value : 'malformed';
}

/** RFC 5780 §6.1: the answer of a server without an alternate address to a CHANGE-REQUEST. */
export function encodeChangeRefused(txid: Buffer): Buffer {
  const err = stunLib.createMessage(BINDING_ERROR, Buffer.from(txid));
  err.addAttribute(ATTR.ERROR_CODE, 420, 'Unknown Attribute');
  err.addAttribute(ATTR.UNKNOWN_ATTRIBUTES, [ATTR.CHANGE_REQUEST]);
  err.addFingerprint();
  return stunLib.encode(err);
}

export interface BindingAnswerAttrs {
  /** The client as seen; MAPPED-ADDRESS is added too when it is IPv4 (RFC 3489 clients). */
  client: { address: string; port: number };
  origin?: { address: string; port: number };
  other?: { address: string; port: number };
}

/** A server's Binding success response, with FINGERPRINT. */
export function encodeBindingAnswer(txid: Buffer, a: BindingAnswerAttrs): Buffer {
  const res = stunLib.createMessage(BINDING_RESPONSE, Buffer.from(txid));
  if (isNodeIPv4(a.client.address)) res.addAttribute(ATTR.MAPPED_ADDRESS, a.client.address, a.client.port);
  res.addAttribute(ATTR.XOR_MAPPED_ADDRESS, a.client.address, a.client.port);
  if (a.origin) res.addAttribute(ATTR.RESPONSE_ORIGIN, a.origin.address, a.origin.port);
  if (a.other) res.addAttribute(ATTR.OTHER_ADDRESS, a.other.address, a.other.port);
  res.addFingerprint();
  return stunLib.encode(res);
}
