// Endpoint candidates: where this helper can be reached (its interface addresses with the public
// port, plus the STUN-mapped address), and strict validation of the ones peers send us. Addresses
// inside the virtual LAN, or on the helper's own WireGuard interface, are never candidates in
// either direction: a path through the tunnel to build the tunnel would be tunnel-in-tunnel.

import type { NetworkInterfaceInfo } from 'node:os';
import { inCidr, ipToInt, isIPv4, isLinkLocal, isLoopback, isUnusable, parseCidr, parseEndpoint, type Cidr } from './addr.js';

export const DEFAULT_EXCLUDE_SUBNETS: readonly string[] = ['10.66.0.0/16'];
/** More candidates than this from one peer is either a bug or an attempt to make us spray packets. */
export const MAX_PEER_CANDIDATES = 16;

export interface LocalAddress {
  ip: string;
  netmask: string;
  iface: string;
}

export interface AddressPolicy {
  exclude: Cidr[];
  excludeInterfaces: readonly string[];
  allowLoopback: boolean;
}

export function makePolicy(o: { excludeSubnets?: readonly string[]; excludeInterfaces?: readonly string[]; allowLoopback?: boolean }): AddressPolicy {
  return {
    exclude: (o.excludeSubnets ?? DEFAULT_EXCLUDE_SUBNETS).map(parseCidr),
    excludeInterfaces: o.excludeInterfaces ?? [],
    allowLoopback: o.allowLoopback ?? false,
  };
}

function excluded(ip: string, p: AddressPolicy): boolean {
  if (isUnusable(ip) || isLinkLocal(ip)) return true;
  if (isLoopback(ip) && !p.allowLoopback) return true;
  return p.exclude.some((c) => inCidr(ip, c));
}

/**
 * This host's usable IPv4 addresses, from os.networkInterfaces(). A socket bound to one specific
 * address is reachable only there, so then that address is the only one.
 */
export function localAddresses(ifaces: NodeJS.Dict<NetworkInterfaceInfo[]>, p: AddressPolicy, bindAddress = '0.0.0.0'): LocalAddress[] {
  const out: LocalAddress[] = [];
  for (const [name, list] of Object.entries(ifaces)) {
    if (p.excludeInterfaces.includes(name)) continue;
    for (const a of list ?? []) {
      if (a.family !== 'IPv4' || !isIPv4(a.address)) continue;
      if (a.internal && !p.allowLoopback) continue;
      if (excluded(a.address, p)) continue;
      if (bindAddress !== '0.0.0.0' && a.address !== bindAddress) continue;
      if (!out.some((o) => o.ip === a.address)) out.push({ ip: a.address, netmask: a.netmask, iface: name });
    }
  }
  if (bindAddress !== '0.0.0.0' && out.length === 0 && isIPv4(bindAddress) && !excluded(bindAddress, p)) {
    out.push({ ip: bindAddress, netmask: '255.255.255.255', iface: '' });
  }
  return out;
}

/** Interface addresses first (a LAN path beats any other), then the STUN-mapped address. */
export function localCandidates(addrs: readonly LocalAddress[], port: number, mapped: string | null, p: AddressPolicy): string[] {
  const out = addrs.map((a) => `${a.ip}:${port}`);
  const m = mapped ? parseEndpoint(mapped) : null;
  if (m && !excluded(m.ip, p) && !out.includes(mapped as string)) out.push(mapped as string);
  return out;
}

/** Keeps only well-formed, routable, de-duplicated "ip:port" candidates, at most MAX_PEER_CANDIDATES. */
export function validatePeerCandidates(list: unknown, p: AddressPolicy): string[] {
  if (!Array.isArray(list)) return [];
  const out: string[] = [];
  for (const c of list) {
    const ep = parseEndpoint(c);
    if (!ep || excluded(ep.ip, p)) continue;
    const s = `${ep.ip}:${ep.port}`;
    if (!out.includes(s)) out.push(s);
    if (out.length >= MAX_PEER_CANDIDATES) break;
  }
  return out;
}

export function isCandidateAllowed(c: string, p: AddressPolicy): boolean {
  const ep = parseEndpoint(c);
  return ep !== null && !excluded(ep.ip, p);
}

/** On one of our own subnets: reachable without a router, so no NAT in between. */
export function isOnLink(ip: string, addrs: readonly LocalAddress[]): boolean {
  if (!isIPv4(ip)) return false;
  const n = ipToInt(ip);
  return addrs.some((a) => {
    if (!isIPv4(a.netmask)) return false;
    const mask = ipToInt(a.netmask);
    return mask !== 0xffffffff && ((n & mask) >>> 0) === ((ipToInt(a.ip) & mask) >>> 0);
  });
}
