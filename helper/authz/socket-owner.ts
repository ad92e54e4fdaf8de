import { readFile } from 'node:fs/promises';
import { isIPv4, isIPv6 } from 'node:net';
import { endianness } from 'node:os';

// Which local user opened a loopback TCP connection: the owner uid of the client's socket, read
// from /proc/net/tcp and /proc/net/tcp6 (the way Tailscale identifies local API callers on
// loopback TCP). The kernel records the uid of the process that created the socket; no header or
// token the client sends can change it. Hand-written because no npm package reads these tables.

export interface TcpEntry {
  localAddr: string; // canonical form, see canonicalIp
  localPort: number;
  remoteAddr: string;
  remotePort: number;
  uid: number;
}

const LITTLE_ENDIAN = endianness() === 'LE';

// The tables print each 32-bit word of an address in host byte order.
function wordBytes(hex8: string): number[] {
  const b = [0, 2, 4, 6].map((i) => parseInt(hex8.slice(i, i + 2), 16));
  return LITTLE_ENDIAN ? b.reverse() : b;
}

function procAddr(hex: string): string | null {
  if (hex.length === 8) return wordBytes(hex).join('.');
  if (hex.length !== 32) return null;
  const bytes: number[] = [];
  for (let i = 0; i < 32; i += 8) bytes.push(...wordBytes(hex.slice(i, i + 8)));
  return bytesToCanonical(bytes);
}

// IPv4 and IPv4-mapped IPv6 both become dotted quads; other IPv6 addresses eight 4-digit groups.
function bytesToCanonical(bytes: number[]): string {
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return bytes.slice(12).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16).padStart(4, '0'));
  return groups.join(':');
}

export function canonicalIp(ip: string): string | null {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  if (isIPv4(bare)) return bare.split('.').map((x) => String(Number(x))).join('.');
  if (!isIPv6(bare)) return null;
  let s = bare.toLowerCase().split('%', 1)[0]!;
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const q = v4[1]!.split('.').map(Number);
    tail.push(q[0]!, q[1]!, q[2]!, q[3]!);
    s = s.slice(0, -v4[1]!.length) + '0:0'; // placeholder groups, replaced below
  }
  const [head, rest] = s.includes('::') ? (s.split('::') as [string, string]) : [s, null];
  const h = head === '' ? [] : head.split(':');
  const r = rest === null || rest === '' ? [] : rest.split(':');
  const fill = rest === null ? [] : new Array<string>(8 - h.length - r.length).fill('0');
  const groups = [...h, ...fill, ...r].map((g) => parseInt(g, 16));
  if (groups.length !== 8 || groups.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff)) return null;
  const bytes = groups.flatMap((g) => [g >> 8, g & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytesToCanonical(bytes);
}

/** Parses the text of /proc/net/tcp or /proc/net/tcp6; lines it cannot read are skipped. */
export function parseProcNetTcp(text: string): TcpEntry[] {
  const out: TcpEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [la, lp] = (f[1] ?? '').split(':');
    const [ra, rp] = (f[2] ?? '').split(':');
    const uid = Number(f[7]);
    if (!la || !lp || !ra || !rp || !Number.isInteger(uid)) continue;
    const localAddr = procAddr(la);
    const remoteAddr = procAddr(ra);
    if (localAddr === null || remoteAddr === null) continue;
    out.push({ localAddr, localPort: parseInt(lp, 16), remoteAddr, remotePort: parseInt(rp, 16), uid });
  }
  return out;
}

export interface Connection {
  /** The client's address and port as our server socket sees them (its remote end). */
  clientAddr: string;
  clientPort: number;
  /** Our server's address (the client socket's remote end); null: any address of ours. */
  serverAddr: string | null;
  serverPort: number;
}

/** The client socket of `conn` is the one whose local end is the client and remote end is us. */
export function findOwner(entries: readonly TcpEntry[], conn: Connection): number | null {
  const client = canonicalIp(conn.clientAddr);
  const server = conn.serverAddr === null ? null : canonicalIp(conn.serverAddr);
  if (client === null || (conn.serverAddr !== null && server === null)) return null;
  for (const e of entries) {
    if (e.localPort === conn.clientPort && e.remotePort === conn.serverPort && e.localAddr === client && (server === null || e.remoteAddr === server)) return e.uid;
  }
  return null;
}

/** Splits grpc-js's getPeer() ("127.0.0.1:5000", "::1:5000" or "[::1]:5000"). */
export function splitPeer(peer: string): { addr: string; port: number } | null {
  const i = peer.lastIndexOf(':');
  if (i <= 0) return null;
  const port = Number(peer.slice(i + 1));
  const addr = peer.slice(0, i);
  if (!Number.isInteger(port) || port <= 0 || port > 65535 || canonicalIp(addr) === null) return null;
  return { addr, port };
}

export const PROC_TABLES = ['/proc/net/tcp', '/proc/net/tcp6'];

/** Whether this system can tell who owns a socket (Linux with /proc). */
export async function ownersKnowable(): Promise<boolean> {
  try {
    await readFile(PROC_TABLES[0]!, 'utf8');
    return true;
  } catch {
    return false;
  }
}

/** The uid owning the client end of a loopback connection to this process, or null if not found. */
export async function socketOwnerUid(conn: Connection, tables: readonly string[] = PROC_TABLES): Promise<number | null> {
  const v4 = isIPv4(conn.clientAddr) || /^::ffff:\d/i.test(conn.clientAddr);
  // A v4 client is in /proc/net/tcp unless it connected through a dual-stack v6 socket.
  const order = v4 ? tables : [...tables].reverse();
  for (const t of order) {
    let text: string;
    try {
      text = await readFile(t, 'utf8');
    } catch {
      continue;
    }
    const uid = findOwner(parseProcNetTcp(text), conn);
    if (uid !== null) return uid;
  }
  return null;
}
