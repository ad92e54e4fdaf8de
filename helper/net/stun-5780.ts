// The RFC 5780 part of STUN that netcheck needs: Binding requests with CHANGE-REQUEST, and
// answers read for XOR-MAPPED-ADDRESS, OTHER-ADDRESS and the error code. The `stun` package
// encodes and decodes the address attributes; ERROR-CODE is read from the raw bytes because the
// package decodes it wrongly (shared/STACK-NOTES.md), and every decode is guarded.

import { isIPv4 } from './addr.js';
import { isStun } from './demux.js';
import { stunLib, type StunAttr, type StunMsg } from './stun.js';
import type { Endpoint } from './netcheck.js';


export const BINDING_REQUEST = 0x0001;
export const BINDING_SUCCESS = 0x0101;
export const BINDING_ERROR = 0x0111;
const ATTR_MAPPED_ADDRESS = 0x0001;
const ATTR_CHANGE_REQUEST = 0x0003;
const ATTR_ERROR_CODE = 0x0009;
const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
const ATTR_OTHER_ADDRESS = 0x802c;
export const CHANGE_IP = 0x04;
export const CHANGE_PORT = 0x02;

export function encodeNetcheckRequest(txid: Buffer, change: { ip: boolean; port: boolean } | null): Buffer {
  if (txid.length !== 12) throw new Error('STUN transaction id must be 12 bytes');
  const m = stunLib.createMessage(BINDING_REQUEST, txid);
  if (change) m.addAttribute(ATTR_CHANGE_REQUEST, (change.ip ? CHANGE_IP : 0) | (change.port ? CHANGE_PORT : 0));
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
function endpointOf(attr: StunAttr | undefined): Endpoint | null {
  const v = attr?.value;
  if (!v || typeof v.address !== 'string' || !isIPv4(v.address) || typeof v.port !== 'number') return null;
  if (!Number.isInteger(v.port) || v.port < 1 || v.port > 65535) return null;
  const first = Number(v.address.split('.')[0]);
  if (v.address === '0.0.0.0' || first >= 224) return null;
  return { ip: v.address, port: v.port };
}

function rawErrorCode(b: Buffer, end: number): number {
  for (let off = 20; off + 4 <= end; ) {
    const type = b.readUInt16BE(off);
    const len = b.readUInt16BE(off + 2);
    if (off + 4 + len > end) return 0;
    if (type === ATTR_ERROR_CODE && len >= 4) return ((b[off + 6] ?? 0) & 0x07) * 100 + (b[off + 7] ?? 0);
    off += 4 + Math.ceil(len / 4) * 4;
  }
  return 0;
}

/** A Binding success or error response, or null for anything else or anything malformed. */
export function decodeNetcheckAnswer(b: Buffer): NetcheckAnswer | null {
  if (!isStun(b)) return null;
  const type = b.readUInt16BE(0);
  if (type !== BINDING_SUCCESS && type !== BINDING_ERROR) return null;
  const declared = b.readUInt16BE(2);
  if (declared % 4 !== 0 || declared + 20 > b.length) return null;
  const txid = b.toString('hex', 8, 20);
  if (type === BINDING_ERROR) return { txid, error: rawErrorCode(b, 20 + declared) || 500, mapped: null, other: null };
  let m: StunMsg;
  try {
    m = stunLib.decode(b.subarray(0, 20 + declared));
  } catch {
    return null;
  }
  return {
    txid,
    error: 0,
    mapped: endpointOf(m.getAttribute(ATTR_XOR_MAPPED_ADDRESS)) ?? endpointOf(m.getAttribute(ATTR_MAPPED_ADDRESS)),
    other: endpointOf(m.getAttribute(ATTR_OTHER_ADDRESS)),
  };
}
