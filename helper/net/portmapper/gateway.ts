// Which router to ask for a port mapping: the system's default IPv4 gateway, and our address on
// its subnet. Only ever from the routing table, never from anything the network says.

import { readFileSync } from 'node:fs';
import { endianness, networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { isIPv4 } from 'node:net';

export interface Gateway {
  /** The default route's next hop. */
  ip: string;
  iface: string;
  /** Our IPv4 address on that interface whose subnet holds the gateway. */
  localIp: string;
  /** Prefix length of that subnet. */
  prefix: number;
}

/**
 * /proc/net/route → the default route with the lowest metric that has a gateway (RTF_GATEWAY).
 * The kernel prints addresses as the hex of a 32-bit value in host byte order.
 */
export function parseDefaultGateway(procNetRoute: string, littleEndian = endianness() === 'LE'): { iface: string; ip: string } | null {
  let best: { iface: string; ip: string; metric: number } | null = null;
  for (const line of procNetRoute.split('\n').slice(1, 1000)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dest, gw, flags, , , metric, mask] = f;
    const fl = parseInt(flags ?? '0', 16);
    // RTF_UP | RTF_GATEWAY
    if (!iface || dest !== '00000000' || mask !== '00000000' || (fl & 0x3) !== 0x3 || !/^[0-9A-Fa-f]{8}$/.test(gw ?? '')) continue;
    const v = parseInt(gw!, 16) >>> 0;
    const bytes = [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
    const ip = (littleEndian ? bytes.reverse() : bytes).join('.');
    if (ip === '0.0.0.0') continue;
    const m = Number(metric);
    if (!best || m < best.metric) best = { iface, ip, metric: m };
  }
  return best ? { iface: best.iface, ip: best.ip } : null;
}

function toInt(ip: string): number {
  return ip.split('.').reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0);
}

export function sameSubnet(a: string, b: string, prefix: number): boolean {
  if (!isIPv4(a) || !isIPv4(b) || prefix < 0 || prefix > 32) return false;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return ((toInt(a) & mask) >>> 0) === ((toInt(b) & mask) >>> 0);
}

/** Our address on `iface` in the same subnet as `gw` (the first, if several). */
export function localAddressFor(gw: { iface: string; ip: string }, ifaces: NodeJS.Dict<NetworkInterfaceInfo[]>): Gateway | null {
  for (const a of ifaces[gw.iface] ?? []) {
    if (a.family !== 'IPv4' || a.internal) continue;
    const prefix = Number((a.cidr ?? '').split('/')[1] ?? NaN);
    if (Number.isInteger(prefix) && sameSubnet(a.address, gw.ip, prefix)) return { ip: gw.ip, iface: gw.iface, localIp: a.address, prefix };
  }
  return null;
}

export function defaultGateway(): Gateway | null {
  let text: string;
  try {
    text = readFileSync('/proc/net/route', 'utf8');
  } catch {
    return null;
  }
  const gw = parseDefaultGateway(text);
  return gw ? localAddressFor(gw, networkInterfaces()) : null;
}
