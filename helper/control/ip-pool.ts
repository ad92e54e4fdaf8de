import { ApiError, Status } from '../core/api-error.js';

// Virtual-IP allocation within one party's network. Pure: the caller passes who holds what.

export const DEFAULT_NETWORK_CIDR = '10.66.0.0/16';

export interface Pool {
  cidr: string;
  /** Network address as an unsigned 32-bit number. */
  base: number;
  /** Addresses in the network, including the network and broadcast addresses. */
  size: number;
}

export function ipv4ToNumber(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4) throw new Error(`not an IPv4 address: ${ip}`);
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255) throw new Error(`not an IPv4 address: ${ip}`);
    n = n * 256 + Number(p);
  }
  return n;
}

export const numberToIpv4 = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

export function parsePool(cidr: string): Pool {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  const prefix = Number(m?.[2]);
  if (!m || prefix < 8 || prefix > 30) throw new Error(`network must be an IPv4 CIDR with a /8../30 prefix, got ${cidr}`);
  const size = 2 ** (32 - prefix);
  const base = ipv4ToNumber(m[1]!);
  if (base % size !== 0) throw new Error(`${cidr} has host bits set`);
  return { cidr, base, size };
}

/** True for an assignable host address of the pool (not the network or broadcast address). */
export function isHostAddress(pool: Pool, ip: string): boolean {
  let n: number;
  try {
    n = ipv4ToNumber(ip);
  } catch {
    return false;
  }
  return n > pool.base && n < pool.base + pool.size - 1;
}

/**
 * Picks the address for `deviceId` joining a party.
 * - `live`: device → address of the party's current members (never handed out again);
 * - `past`: device → address of every allocation the party remembers, current or former members.
 * A returning device gets its old address back unless a live member now holds it. A new one
 * gets the lowest address nobody ever had (so the host gets the first), and only when those run
 * out one that a departed member used to have.
 */
export function allocateAddress(pool: Pool, deviceId: string, live: ReadonlyMap<string, string>, past: ReadonlyMap<string, string>): string {
  const liveSet = new Set<number>();
  for (const [dev, ip] of live) if (dev !== deviceId) liveSet.add(ipv4ToNumber(ip));
  const previous = past.get(deviceId);
  if (previous !== undefined && isHostAddress(pool, previous) && !liveSet.has(ipv4ToNumber(previous))) return previous;

  const remembered = new Set<number>(liveSet);
  for (const [dev, ip] of past) if (dev !== deviceId) remembered.add(ipv4ToNumber(ip));
  const first = pool.base + 1;
  const last = pool.base + pool.size - 2;
  for (const avoid of [remembered, liveSet]) {
    for (let n = first; n <= last; n++) if (!avoid.has(n)) return numberToIpv4(n);
  }
  throw new ApiError(Status.RESOURCE_EXHAUSTED, `the party's network ${pool.cidr} has no free address left`);
}
