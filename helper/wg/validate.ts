import { isIPv4, isIPv6 } from 'node:net';
import { isWgKey } from './keys.js';

// Every value that reaches `ip`, `wg` or the UAPI socket passes through here first. UAPI is a
// line protocol, so a stray newline would be a config injection: each check is an allow-list
// of characters, not a block-list.

export class WgInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WgInputError';
  }
}

// Linux IFNAMSIZ is 16 including the NUL; wireguard-go also names its UAPI socket after it.
export const INTERFACE_NAME_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,14}$/;

export function checkInterfaceName(name: unknown): string {
  if (typeof name !== 'string' || !INTERFACE_NAME_RE.test(name)) {
    throw new WgInputError('interface name must be 1-15 characters [A-Za-z0-9_.-] starting with a letter');
  }
  return name;
}

export function checkKey(what: string, key: unknown): string {
  if (!isWgKey(key)) throw new WgInputError(`${what} must be a WireGuard key (44 characters of standard base64)`);
  return key;
}

export interface ParsedEndpoint {
  ip: string;
  port: number;
  family: 4 | 6;
}

const PORT_RE = /^[1-9][0-9]{0,4}$/;
// Plain dotted quad / hex-and-colons (with an optional embedded IPv4 tail). No zone ids ("%eth0"):
// they name a host interface, and the characters they allow are not ours to vet.
const V4_CHARS = /^[0-9.]{7,15}$/;
const V6_CHARS = /^[0-9A-Fa-f:.]{2,45}$/;

function parsePort(s: string): number | undefined {
  if (!PORT_RE.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** "1.2.3.4:51820" or "[2001:db8::1]:51820"; host names are refused (no DNS in the data path). */
export function parseEndpoint(endpoint: unknown): ParsedEndpoint {
  const bad = (): WgInputError => new WgInputError('endpoint must be an IP literal and a port 1-65535: "192.0.2.1:51820" or "[2001:db8::1]:51820"');
  if (typeof endpoint !== 'string' || endpoint.length > 53) throw bad();
  const v6 = /^\[([^\]]+)\]:([^:]+)$/.exec(endpoint);
  if (v6) {
    const [, ip, p] = v6 as unknown as [string, string, string];
    const port = parsePort(p);
    if (!V6_CHARS.test(ip) || !isIPv6(ip) || port === undefined) throw bad();
    return { ip, port, family: 6 };
  }
  const v4 = /^([^:]+):([^:]+)$/.exec(endpoint);
  if (v4) {
    const [, ip, p] = v4 as unknown as [string, string, string];
    const port = parsePort(p);
    if (!V4_CHARS.test(ip) || !isIPv4(ip) || port === undefined) throw bad();
    return { ip, port, family: 4 };
  }
  throw bad();
}

export function checkEndpoint(endpoint: unknown): string {
  parseEndpoint(endpoint);
  return endpoint as string;
}

export function formatEndpoint(ip: string, port: number): string {
  return isIPv6(ip) ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export interface ParsedCidr {
  ip: string;
  prefix: number;
  family: 4 | 6;
}

/** "10.66.0.0/16", "10.66.0.2/32", "fd00::/64". The host part may be set (an interface address). */
export function parseCidr(cidr: unknown, what = 'allowed IP'): ParsedCidr {
  const bad = (): WgInputError => new WgInputError(`${what} must be an IP address with a prefix length, e.g. "10.66.0.2/32" or "fd00::/64"`);
  if (typeof cidr !== 'string' || cidr.length > 49) throw bad();
  const m = /^([^/]+)\/(0|[1-9][0-9]{0,2})$/.exec(cidr);
  if (!m) throw bad();
  const [, ip, p] = m as unknown as [string, string, string];
  const prefix = Number(p);
  if (V4_CHARS.test(ip) && isIPv4(ip) && prefix <= 32) return { ip, prefix, family: 4 };
  if (V6_CHARS.test(ip) && isIPv6(ip) && prefix <= 128) return { ip, prefix, family: 6 };
  throw bad();
}

export function checkCidr(cidr: unknown, what?: string): string {
  parseCidr(cidr, what);
  return cidr as string;
}

// wireguard-go keeps at most a few thousand routes per peer without trouble, but nothing we
// configure needs more than a handful: a cap keeps a hostile peer list from growing unbounded.
export const MAX_ALLOWED_IPS = 256;

export function checkAllowedIps(list: unknown): string[] {
  if (!Array.isArray(list) || list.length > MAX_ALLOWED_IPS) throw new WgInputError(`allowed IPs must be a list of at most ${MAX_ALLOWED_IPS} CIDRs`);
  return list.map((c) => checkCidr(c));
}

export function checkIntRange(what: string, n: unknown, min: number, max: number): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw new WgInputError(`${what} must be an integer ${min}-${max}`);
  return n;
}

// 1280 is IPv6's minimum (the tunnel carries v6 too); 65535 is what `ip` accepts for a TUN.
export const MTU_MIN = 1280;
export const MTU_MAX = 65535;
