import { isIPv4, isIPv6 } from 'node:net';
import { invalidArgument } from '../core/api-error.js';
import { NatMapping, type NatHints } from '../gen/lanrage/control/v1/control.js';
import { DEVICE_ID_RE, INVITE_SECRET_RE, PARTY_ID_RE } from './ids.js';

// Rules for everything that reaches the control plane from outside. Pure; shared with the client,
// which checks what it sends and what the server sends it with the same rules.

export const KEY_BYTES = 32;
export const MAX_CANDIDATES = 16;
export const MAX_PORT_DELTA = 1000;
// 1-48 characters, a letter or digit first, no space last.
export const NAME_RE = /^[\p{L}\p{N}](?:[\p{L}\p{N} ._'!-]{0,46}[\p{L}\p{N}._'!-])?$/u;

export function checkName(what: string, name: string): string {
  if (name !== name.normalize('NFC') || !NAME_RE.test(name)) {
    throw invalidArgument(`${what} must be 1-48 characters: letters, digits, space and . _ - ' ! (starting with a letter or digit, not ending with a space)`);
  }
  return name;
}

export function checkKey(what: string, key: Uint8Array): Buffer {
  if (key.length !== KEY_BYTES) throw invalidArgument(`${what} must be ${KEY_BYTES} bytes, got ${key.length}`);
  if (key.every((b) => b === 0)) throw invalidArgument(`${what} must not be all zeros`);
  return Buffer.from(key);
}

export function checkDeviceId(what: string, id: string): string {
  if (!DEVICE_ID_RE.test(id)) throw invalidArgument(`${what} must be a device id (24 characters a-z, 2-7)`);
  return id;
}

export function checkPartyId(id: string): string {
  if (!PARTY_ID_RE.test(id)) throw invalidArgument('party_id must be a party id (16 characters a-z, 2-7)');
  return id;
}

export function checkInviteSecret(secret: string): string {
  if (!INVITE_SECRET_RE.test(secret)) throw invalidArgument('invite_secret must be 43 characters of base64url, as in the invite link');
  return secret;
}

export interface Candidate {
  address: string;
  port: number;
  family: 4 | 6;
}

/** Parses "a.b.c.d:port" or "[v6]:port"; returns the candidate or why it is refused. */
export function parseCandidate(raw: string): Candidate | string {
  if (raw.length > 64) return 'too long';
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(raw);
  if (!m) return 'not "ipv4:port" or "[ipv6]:port"';
  const port = Number(m[3]);
  if (port < 1 || port > 65535 || m[3]!.startsWith('0')) return 'port must be 1-65535';
  if (m[2] !== undefined) {
    if (!isIPv4(m[2])) return 'not an IPv4 address';
    return checkIPv4(m[2]) ?? { address: m[2], port, family: 4 };
  }
  const v6 = m[1]!;
  if (!isIPv6(v6)) return 'not an IPv6 address';
  const canonical = new URL(`http://[${v6}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (mapped) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    const v4 = `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
    return checkIPv4(v4) ?? { address: v4, port, family: 4 };
  }
  if (canonical === '::') return 'the unspecified address is not reachable';
  if (canonical.startsWith('ff')) return 'multicast addresses are not endpoints';
  return { address: canonical, port, family: 6 };
}

function checkIPv4(a: string): string | undefined {
  const first = Number(a.split('.')[0]);
  if (first === 0) return 'addresses in 0.0.0.0/8 are not reachable';
  if (first >= 224 && first <= 239) return 'multicast addresses are not endpoints';
  if (first >= 240) return 'broadcast and reserved addresses are not endpoints';
  return undefined;
}

export const formatCandidate = (c: Candidate): string => (c.family === 6 ? `[${c.address}]:${c.port}` : `${c.address}:${c.port}`);

/** Validates and canonicalises a candidate list; duplicates are dropped. */
export function checkCandidates(what: string, list: readonly string[]): string[] {
  if (list.length > MAX_CANDIDATES) throw invalidArgument(`${what}: at most ${MAX_CANDIDATES} candidates, got ${list.length}`);
  const out = new Set<string>();
  for (const raw of list) {
    const c = parseCandidate(raw);
    if (typeof c === 'string') throw invalidArgument(`${what}: ${JSON.stringify(raw.slice(0, 64))} is refused: ${c}`);
    out.add(formatCandidate(c));
  }
  return [...out];
}

/** A member holds at most one allocation per relay it uses; a few relays are plenty. */
export const MAX_RELAYED = 4;

/** Birthday probing: sockets one helper opens per attempt (helper/net/birthday.ts). */
export const MAX_SPRAY_SOCKETS = 256;

export function checkSpraySockets(n: number | undefined): number {
  const v = n ?? 0;
  if (!Number.isInteger(v) || v < 0 || v > MAX_SPRAY_SOCKETS) throw invalidArgument(`spray_sockets: 0-${MAX_SPRAY_SOCKETS}, got ${v}`);
  return v;
}

/** Validates and canonicalises relayed addresses: IPv4 "ip:port" only (coturn relays on IPv4 here). */
export function checkRelayed(what: string, list: readonly string[]): string[] {
  if (list.length > MAX_RELAYED) throw invalidArgument(`${what}: at most ${MAX_RELAYED} relayed addresses, got ${list.length}`);
  const out = new Set<string>();
  for (const raw of list) {
    const c = parseCandidate(raw);
    if (typeof c === 'string' || c.family !== 4) {
      throw invalidArgument(`${what}: ${JSON.stringify(raw.slice(0, 64))} is refused: ${typeof c === 'string' ? c : 'relayed addresses must be IPv4 "ip:port"'}`);
    }
    out.add(formatCandidate(c));
  }
  return [...out];
}

const KNOWN_MAPPINGS = new Set<number>([
  NatMapping.NAT_MAPPING_UNSPECIFIED,
  NatMapping.NAT_MAPPING_NONE,
  NatMapping.NAT_MAPPING_ENDPOINT_INDEPENDENT,
  NatMapping.NAT_MAPPING_ENDPOINT_DEPENDENT,
]);

export function checkNatHints(nat: NatHints | undefined): NatHints {
  const n = nat ?? { mapping: NatMapping.NAT_MAPPING_UNSPECIFIED, portMapped: false, portDelta: 0 };
  if (!KNOWN_MAPPINGS.has(n.mapping)) throw invalidArgument(`nat.mapping ${n.mapping} is not a known NatMapping`);
  if (!Number.isInteger(n.portDelta) || Math.abs(n.portDelta) > MAX_PORT_DELTA) {
    throw invalidArgument(`nat.port_delta must be -${MAX_PORT_DELTA}..${MAX_PORT_DELTA}`);
  }
  return { mapping: n.mapping, portMapped: n.portMapped, portDelta: n.portDelta };
}
