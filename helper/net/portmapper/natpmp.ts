// NAT-PMP (RFC 6886) messages: encode requests, strictly decode answers. Pure; no I/O.

export const NATPMP_PORT = 5351;
const VERSION = 0;
export const OP_EXTERNAL_ADDRESS = 0;
export const OP_MAP_UDP = 1;
export const OP_MAP_TCP = 2;
export type NatPmpTransport = 'udp' | 'tcp';
const mapOp = (t: NatPmpTransport): number => (t === 'tcp' ? OP_MAP_TCP : OP_MAP_UDP);

/** Result codes (RFC 6886 §3.5). */
export const NATPMP_RESULT: Readonly<Record<number, string>> = {
  0: 'success',
  1: 'unsupported version',
  2: 'not authorized / refused',
  3: 'network failure',
  4: 'out of resources',
  5: 'unsupported opcode',
};

export class NatPmpError extends Error {
  constructor(readonly result: number) {
    super(`NAT-PMP: ${NATPMP_RESULT[result] ?? `result code ${result}`}`);
  }
}

export function encodeExternalAddressRequest(): Buffer {
  return Buffer.from([VERSION, OP_EXTERNAL_ADDRESS]);
}

/** A UDP (or TCP) mapping request; lifetime 0 with suggested port 0 deletes the mapping. */
export function encodeMapRequest(internalPort: number, suggestedExternalPort: number, lifetimeSeconds: number, transport: NatPmpTransport = 'udp'): Buffer {
  checkPort(internalPort, false);
  checkPort(suggestedExternalPort, true);
  if (!Number.isInteger(lifetimeSeconds) || lifetimeSeconds < 0 || lifetimeSeconds > 0xffffffff) throw new RangeError(`bad lifetime ${lifetimeSeconds}`);
  const b = Buffer.alloc(12);
  b[0] = VERSION;
  b[1] = mapOp(transport);
  b.writeUInt16BE(internalPort, 4);
  b.writeUInt16BE(suggestedExternalPort, 6);
  b.writeUInt32BE(lifetimeSeconds, 8);
  return b;
}

export interface NatPmpExternalAddress {
  epoch: number;
  ip: string;
}

export interface NatPmpMapping {
  epoch: number;
  internalPort: number;
  externalPort: number;
  lifetimeSeconds: number;
}

/** The header every answer shares; throws on anything that is not a NAT-PMP answer to `op`. */
function header(b: Buffer, op: number, size: number): void {
  if (b.length < 4) throw new Error(`NAT-PMP: ${b.length}-byte answer`);
  if (b[0] !== VERSION) throw new Error(`NAT-PMP: version ${b[0]}`);
  if (b[1] !== 128 + op) throw new Error(`NAT-PMP: answer to opcode ${(b[1] ?? 0) - 128}, not ${op}`);
  const result = b.readUInt16BE(2);
  if (result !== 0) throw new NatPmpError(result);
  if (b.length !== size) throw new Error(`NAT-PMP: ${b.length}-byte answer, want ${size}`);
}

export function decodeExternalAddressResponse(b: Buffer): NatPmpExternalAddress {
  header(b, OP_EXTERNAL_ADDRESS, 12);
  return { epoch: b.readUInt32BE(4), ip: `${b[8]}.${b[9]}.${b[10]}.${b[11]}` };
}

export function decodeMapResponse(b: Buffer, transport: NatPmpTransport = 'udp'): NatPmpMapping {
  header(b, mapOp(transport), 16);
  return { epoch: b.readUInt32BE(4), internalPort: b.readUInt16BE(8), externalPort: b.readUInt16BE(10), lifetimeSeconds: b.readUInt32BE(12) };
}

function checkPort(p: number, zeroOk: boolean): void {
  if (!Number.isInteger(p) || p < (zeroOk ? 0 : 1) || p > 65535) throw new RangeError(`bad port ${p}`);
}
