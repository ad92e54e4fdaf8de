// PCP (RFC 6887) ANNOUNCE and MAP for IPv4 UDP or TCP: encode requests, strictly decode answers. Pure.

import { isIPv4 } from 'node:net';

export const PCP_PORT = 5351;
const VERSION = 2;
export const OP_ANNOUNCE = 0;
export const OP_MAP = 1;
const HEADER = 24;
const MAP_BODY = 36;
/** RFC 6887 §7: a PCP message is at most 1100 bytes. */
const MAX_MESSAGE = 1100;
/** IANA protocol numbers that a MAP request carries. */
export const PCP_PROTOCOL = { udp: 17, tcp: 6 } as const;
export type PcpTransport = keyof typeof PCP_PROTOCOL;

/** Result codes (RFC 6887 §7.4). */
export const PCP_RESULT: Readonly<Record<number, string>> = {
  0: 'success',
  1: 'unsupported version',
  2: 'not authorized',
  3: 'malformed request',
  4: 'unsupported opcode',
  5: 'unsupported option',
  6: 'malformed option',
  7: 'network failure',
  8: 'no resources',
  9: 'unsupported protocol',
  10: 'user exceeded quota',
  11: 'cannot provide external',
  12: 'address mismatch',
  13: 'excessive remote peers',
};

export class PcpError extends Error {
  constructor(readonly result: number) {
    super(`PCP: ${PCP_RESULT[result] ?? `result code ${result}`}`);
  }
}

/** An IPv4 address as PCP carries it: the IPv4-mapped IPv6 form ::ffff:a.b.c.d. */
function mapped(ip: string): Buffer {
  if (!isIPv4(ip)) throw new Error(`not an IPv4 address: ${JSON.stringify(ip)}`);
  const b = Buffer.alloc(16);
  b[10] = 0xff;
  b[11] = 0xff;
  ip.split('.').forEach((o, i) => (b[12 + i] = Number(o)));
  return b;
}

function unmapped(b: Buffer, at: number): string | null {
  for (let i = 0; i < 10; i++) if (b[at + i] !== 0) return null;
  if (b[at + 10] !== 0xff || b[at + 11] !== 0xff) return null;
  return `${b[at + 12]}.${b[at + 13]}.${b[at + 14]}.${b[at + 15]}`;
}

function requestHeader(op: number, lifetime: number, clientIp: string): Buffer {
  if (!Number.isInteger(lifetime) || lifetime < 0 || lifetime > 0xffffffff) throw new RangeError(`bad lifetime ${lifetime}`);
  const b = Buffer.alloc(HEADER);
  b[0] = VERSION;
  b[1] = op;
  b.writeUInt32BE(lifetime, 4);
  mapped(clientIp).copy(b, 8);
  return b;
}

/** ANNOUNCE: "is a PCP server there?" (lifetime 0, no body). */
export function encodeAnnounceRequest(clientIp: string): Buffer {
  return requestHeader(OP_ANNOUNCE, 0, clientIp);
}

export interface PcpMapRequest {
  /** 12 random bytes that tie answers (and later renewals / the deletion) to this mapping. */
  nonce: Buffer;
  /** Our address on the gateway's subnet: the server checks it against the packet's source. */
  clientIp: string;
  internalPort: number;
  /** 0: any. */
  suggestedExternalPort: number;
  /** 0 deletes the mapping. */
  lifetimeSeconds: number;
  /** Default udp. */
  transport?: PcpTransport;
}

export function encodeMapRequest(r: PcpMapRequest): Buffer {
  if (r.nonce.length !== 12) throw new Error('the PCP nonce is 12 bytes');
  if (!Number.isInteger(r.internalPort) || r.internalPort < 1 || r.internalPort > 65535) throw new RangeError(`bad port ${r.internalPort}`);
  if (!Number.isInteger(r.suggestedExternalPort) || r.suggestedExternalPort < 0 || r.suggestedExternalPort > 65535) throw new RangeError(`bad port ${r.suggestedExternalPort}`);
  const body = Buffer.alloc(MAP_BODY);
  r.nonce.copy(body, 0);
  body[12] = PCP_PROTOCOL[r.transport ?? 'udp'];
  body.writeUInt16BE(r.internalPort, 16);
  body.writeUInt16BE(r.suggestedExternalPort, 18);
  // Suggested external address: "any IPv4" is ::ffff:0.0.0.0.
  mapped('0.0.0.0').copy(body, 20);
  return Buffer.concat([requestHeader(OP_MAP, r.lifetimeSeconds, r.clientIp), body]);
}

export interface PcpResponseHeader {
  opcode: number;
  lifetimeSeconds: number;
  epoch: number;
}

export interface PcpMapResponse extends PcpResponseHeader {
  internalPort: number;
  externalPort: number;
  externalIp: string;
}

/**
 * The common header. A NAT-PMP-only server answers a PCP request with a NAT-PMP "unsupported
 * version" (version 0, result 1): that is reported as PcpError(1), like a PCP server would.
 */
export function decodeHeader(b: Buffer, op: number): PcpResponseHeader {
  if (b.length >= 4 && b[0] === 0 && b.readUInt16BE(2) === 1) throw new PcpError(1);
  if (b.length < HEADER || b.length > MAX_MESSAGE || b.length % 4 !== 0) throw new Error(`PCP: ${b.length}-byte answer`);
  if (b[0] !== VERSION) throw new Error(`PCP: version ${b[0]}`);
  if (b[1] !== (0x80 | op)) throw new Error(`PCP: not an answer to opcode ${op}`);
  const result = b[3]!;
  const h = { opcode: op, lifetimeSeconds: b.readUInt32BE(4), epoch: b.readUInt32BE(8) };
  if (result !== 0) throw new PcpError(result);
  return h;
}

export function decodeAnnounceResponse(b: Buffer): PcpResponseHeader {
  return decodeHeader(b, OP_ANNOUNCE);
}

/** A MAP answer that must match our request (nonce, protocol, internal port). Options are ignored. */
export function decodeMapResponse(b: Buffer, req: Pick<PcpMapRequest, 'nonce' | 'internalPort' | 'transport'>): PcpMapResponse {
  const h = decodeHeader(b, OP_MAP);
  if (b.length < HEADER + MAP_BODY) throw new Error(`PCP: ${b.length}-byte MAP answer`);
  const body = b.subarray(HEADER, HEADER + MAP_BODY);
  if (!body.subarray(0, 12).equals(req.nonce)) throw new Error('PCP: answer for another nonce');
  if (body[12] !== PCP_PROTOCOL[req.transport ?? 'udp']) throw new Error(`PCP: answer for protocol ${body[12]}`);
  const internalPort = body.readUInt16BE(16);
  if (internalPort !== req.internalPort) throw new Error(`PCP: answer for internal port ${internalPort}`);
  const externalIp = unmapped(body, 20);
  if (externalIp === null) throw new Error('PCP: the external address is not IPv4');
  return { ...h, internalPort, externalPort: body.readUInt16BE(18), externalIp };
}
