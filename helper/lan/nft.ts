// The LAN relay's one nftables table, rendered from data (pure, unit-tested) and applied whole in
// one transaction. Measured on Linux 6.x (helper/lan/README.md):
//
// capture   output, raw priority: a copy (`dup to 127.0.0.1`) of every datagram a local program
//           sends to a broadcast address or a watched multicast group on a watched port. The
//           original goes on untouched, and no socket of ours is bound to the game's port, so the
//           game can never lose its port to us (EADDRINUSE) nor its unicast traffic.
//           prerouting, raw: the copy comes back in on `lo`, untracked (that is how `dup` marks
//           it); its destination becomes 127.0.0.1 and one capture port per (destination, port),
//           so the capture socket learns what the game sent, from which source, to where.
// inject    output, raw: datagrams from our injector sockets (one local port per remote source)
//           leave with the remote player's virtual IP and port as source, statelessly, before
//           conntrack. The game sees the remote source and its reply is routed into the tunnel.
// guard     input: the relay port on our virtual IP is reachable only through the tunnel.

import { isIPv4 } from '../net/addr.js';
import { isMulticast } from './envelope.js';

export const DEFAULT_LAN_TABLE = 'lanrage_lan';
const TABLE_RE = /^[A-Za-z0-9_]{1,32}$/;
const IFACE_RE = /^[A-Za-z0-9_.-]{1,15}$/;

export interface BroadcastCapture {
  port: number;
  capturePort: number;
}
export interface GroupCapture {
  group: string;
  port: number;
  capturePort: number;
}
export interface InjectorSource {
  /** Local port of the injector socket. */
  localPort: number;
  /** What the datagram must look like it came from: the remote player's virtual IP and port. */
  srcIp: string;
  srcPort: number;
}
export interface RelayGuard {
  ip: string;
  port: number;
  iface: string;
}

export interface LanRuleset {
  table: string;
  broadcast: readonly BroadcastCapture[];
  groups: readonly GroupCapture[];
  injectors: readonly InjectorSource[];
  relayGuard: RelayGuard | null;
}

function port(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`lan nft: ${what} ${n} is not a port`);
  return n;
}

function checkTable(t: string): string {
  if (!TABLE_RE.test(t)) throw new Error(`lan nft: bad table name ${JSON.stringify(t)}`);
  return t;
}

function elements(items: string[]): string {
  return items.length ? `\n    elements = { ${items.join(', ')} }` : '';
}

/** Removes the table if it exists (nothing else). */
export function renderRemoval(table: string): string {
  checkTable(table);
  return `add table ip ${table}\ndelete table ip ${table}\n`;
}

export function renderLanRuleset(r: LanRuleset): string {
  const t = checkTable(r.table);
  const bports = new Set<number>();
  const bcap: string[] = [];
  for (const b of r.broadcast) {
    if (bports.has(port(b.port, 'broadcast port'))) throw new Error(`lan nft: broadcast port ${b.port} listed twice`);
    bports.add(b.port);
    bcap.push(`${b.port} : ${port(b.capturePort, 'capture port')}`);
  }
  const gkeys = new Set<string>();
  const gcap: string[] = [];
  for (const g of r.groups) {
    if (!isMulticast(g.group)) throw new Error(`lan nft: ${JSON.stringify(g.group)} is not a multicast group`);
    const key = `${g.group} . ${port(g.port, 'group port')}`;
    if (gkeys.has(key)) throw new Error(`lan nft: group ${g.group}:${g.port} listed twice`);
    gkeys.add(key);
    gcap.push(`${key} : ${port(g.capturePort, 'capture port')}`);
  }
  const inj = new Set<number>();
  const injAddr: string[] = [];
  const injPort: string[] = [];
  for (const s of r.injectors) {
    if (inj.has(port(s.localPort, 'injector port'))) throw new Error(`lan nft: injector port ${s.localPort} listed twice`);
    if (!isIPv4(s.srcIp)) throw new Error(`lan nft: injector source ${JSON.stringify(s.srcIp)} is not IPv4`);
    inj.add(s.localPort);
    injAddr.push(`${s.localPort} : ${s.srcIp}`);
    injPort.push(`${s.localPort} : ${port(s.srcPort, 'injector source port')}`);
  }
  let guard = '';
  if (r.relayGuard) {
    const g = r.relayGuard;
    if (!isIPv4(g.ip)) throw new Error(`lan nft: relay address ${JSON.stringify(g.ip)} is not IPv4`);
    if (!IFACE_RE.test(g.iface)) throw new Error(`lan nft: bad interface name ${JSON.stringify(g.iface)}`);
    guard =
      `  chain input {\n    type filter hook input priority filter; policy accept;\n` +
      `    ip daddr ${g.ip} udp dport ${port(g.port, 'relay port')} iifname != "${g.iface}" drop\n  }\n`;
  }
  return (
    renderRemoval(t) +
    `table ip ${t} {\n` +
    `  set bports {\n    type inet_service;${elements([...bports].map(String))}\n  }\n` +
    `  map bcast_cap {\n    type inet_service : inet_service;${elements(bcap)}\n  }\n` +
    `  set groups {\n    type ipv4_addr . inet_service;${elements([...gkeys])}\n  }\n` +
    `  map group_cap {\n    type ipv4_addr . inet_service : inet_service;${elements(gcap)}\n  }\n` +
    `  set inject_ports {\n    type inet_service;${elements([...inj].map(String))}\n  }\n` +
    `  map inject_addr {\n    type inet_service : ipv4_addr;${elements(injAddr)}\n  }\n` +
    `  map inject_sport {\n    type inet_service : inet_service;${elements(injPort)}\n  }\n` +
    `  chain output {\n    type filter hook output priority raw; policy accept;\n` +
    // Our own injected datagrams are rewritten and never captured (no loops).
    `    udp sport @inject_ports goto inject\n` +
    // Limited (255.255.255.255) and directed subnet broadcasts, whatever the interface.
    `    fib daddr type broadcast udp dport @bports dup to 127.0.0.1\n` +
    `    ip daddr . udp dport @groups dup to 127.0.0.1\n  }\n` +
    `  chain inject {\n    ip saddr set udp sport map @inject_addr udp sport set udp sport map @inject_sport\n  }\n` +
    `  chain prerouting {\n    type filter hook prerouting priority raw; policy accept;\n` +
    `    iif "lo" ct state untracked jump captured\n  }\n` +
    `  chain captured {\n` +
    `    ip daddr . udp dport @groups udp dport set ip daddr . udp dport map @group_cap ip daddr set 127.0.0.1 accept\n` +
    `    ip daddr != 224.0.0.0/4 udp dport @bports udp dport set udp dport map @bcast_cap ip daddr set 127.0.0.1 accept\n  }\n` +
    guard +
    `}\n`
  );
}
