import { readlinkSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';

// Which ports a process listens on (Linux /proc): its fds that are sockets, matched by inode
// against /proc/net/{udp,tcp}{,6}. Unconnected UDP sockets (state 07) and listening TCP sockets
// (state 0A) count: what a game server binds to accept players and queries.

export interface ListeningPort {
  proto: 'udp' | 'tcp';
  port: number;
}

/** Parses one /proc/net/{udp,tcp} table into inode → port for sockets in `state`. Pure. */
export function parseNetTable(text: string, state: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== state) continue;
    const port = parseInt(f[1]!.split(':')[1] ?? '', 16);
    if (Number.isInteger(port) && port > 0) out.set(f[9]!, port);
  }
  return out;
}

async function table(proc: string, name: string, state: string): Promise<Map<string, number>> {
  try {
    return parseNetTable(await readFile(`${proc}/net/${name}`, 'utf8'), state);
  } catch {
    return new Map();
  }
}

/**
 * The ports `pid` listens on; [] when it is gone, not readable, or in another network namespace
 * than ours (a container's or a lab site's server is not reachable at our address).
 */
export async function listeningPorts(pid: number, proc = '/proc'): Promise<ListeningPort[]> {
  const [theirs, ours] = await Promise.all([readlink(`${proc}/${pid}/ns/net`).catch(() => 'gone'), readlink(`${proc}/self/ns/net`).catch(() => 'self')]);
  if (theirs !== ours) return [];
  let fds: string[];
  try {
    fds = await readdir(`${proc}/${pid}/fd`);
  } catch {
    return [];
  }
  const inodes = new Set<string>();
  for (const fd of fds) {
    const l = await readlink(`${proc}/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(l);
    if (m) inodes.add(m[1]!);
  }
  if (inodes.size === 0) return [];
  const out = new Map<string, ListeningPort>();
  for (const [proto, names, state] of [['udp', ['udp', 'udp6'], '07'], ['tcp', ['tcp', 'tcp6'], '0A']] as const) {
    for (const n of names) {
      for (const [inode, port] of await table(`${proc}/${pid}`, n, state)) if (inodes.has(inode)) out.set(`${proto}/${port}`, { proto, port });
    }
  }
  return [...out.values()].sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto));
}

/** True when `pid` is in our network namespace (or when /proc cannot tell: not Linux). */
export function sameNetns(pid: number, proc = '/proc'): boolean {
  let ours: string;
  try {
    ours = readlinkSync(`${proc}/self/ns/net`);
  } catch {
    return true;
  }
  try {
    return readlinkSync(`${proc}/${pid}/ns/net`) === ours;
  } catch {
    return false;
  }
}
