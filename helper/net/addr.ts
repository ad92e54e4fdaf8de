// IPv4 endpoints as the data path sees them: strict parsing (no octal, no hostnames, no IPv6),
// CIDR membership, and the address classes a peer candidate must never be.

export interface Endpoint {
  ip: string;
  port: number;
}

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4_RE = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);

/** Dotted-quad IPv4 without leading zeros (which some parsers read as octal). */
export function isIPv4(s: string): boolean {
  return s.length <= 15 && IPV4_RE.test(s);
}

export function ipToInt(ip: string): number {
  const p = ip.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

export function intToIp(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export interface Cidr {
  base: number;
  mask: number;
}

export function parseCidr(s: string): Cidr {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s);
  const bits = Number(m?.[2]);
  if (!m || m[1] === undefined || !isIPv4(m[1]) || !(bits >= 0 && bits <= 32)) throw new Error(`not an IPv4 CIDR: ${JSON.stringify(s)}`);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { base: (ipToInt(m[1]) & mask) >>> 0, mask };
}

export function inCidr(ip: string, c: Cidr): boolean {
  return ((ipToInt(ip) & c.mask) >>> 0) === c.base;
}

/** "ip:port" → Endpoint, or null when it is not exactly an IPv4 literal and a port 1-65535. */
export function parseEndpoint(s: unknown): Endpoint | null {
  if (typeof s !== 'string' || s.length > 21) return null;
  const i = s.lastIndexOf(':');
  if (i < 0) return null;
  const ip = s.slice(0, i);
  const ps = s.slice(i + 1);
  if (!isIPv4(ip) || !/^[1-9]\d{0,4}$/.test(ps)) return null;
  const port = Number(ps);
  return port <= 65535 ? { ip, port } : null;
}

export function formatEndpoint(ip: string, port: number): string {
  return `${ip}:${port}`;
}

const LOOPBACK = parseCidr('127.0.0.0/8');
const THIS_NET = parseCidr('0.0.0.0/8');
const LINK_LOCAL = parseCidr('169.254.0.0/16');
const MULTICAST = parseCidr('224.0.0.0/4');
const RESERVED = parseCidr('240.0.0.0/4'); // includes 255.255.255.255
const PRIVATE = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'].map(parseCidr);

export function isLoopback(ip: string): boolean {
  return inCidr(ip, LOOPBACK);
}

export function isLinkLocal(ip: string): boolean {
  return inCidr(ip, LINK_LOCAL);
}

export function isPrivate(ip: string): boolean {
  return PRIVATE.some((c) => inCidr(ip, c));
}

/** Addresses no unicast UDP path can ever use: this-network, multicast, reserved and broadcast. */
export function isUnusable(ip: string): boolean {
  return inCidr(ip, THIS_NET) || inCidr(ip, MULTICAST) || inCidr(ip, RESERVED);
}
