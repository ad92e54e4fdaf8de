import { networkInterfaces } from 'node:os';

// mDNS that connects: an mDNS answer a service's host sends carries its A records, i.e. its LAN
// address (or 127.0.0.1 for a service published on loopback). Carried as-is to another site, the
// finder resolves the service but cannot reach that address. Before an mDNS datagram leaves for
// the party, every A record that names an address of this machine gets our virtual IP instead,
// which every member reaches through the tunnel. Records for other hosts stay as they are.
//
// Hand-written because only A record data changes, in place (same length, so names compressed
// with pointers stay valid); a DNS library would decode and re-encode the whole message. Pure:
// anything malformed or truncated is left untouched (the receiver's mDNS stack judges it).

export const MDNS_GROUP = '224.0.0.251';
export const MDNS_PORT = 5353;
const TYPE_A = 1;

/** Offset just past the name at `off`, or -1 when it runs off the end or is malformed. */
function skipName(b: Buffer, off: number): number {
  for (let i = 0; i < 128; i++) {
    if (off >= b.length) return -1;
    const len = b[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= b.length ? off + 2 : -1;
    if ((len & 0xc0) !== 0) return -1;
    off += 1 + len;
  }
  return -1;
}

/**
 * A copy of `msg` with the data of A records whose address `isLocal` accepts replaced by
 * `virtualIp`; the same buffer when nothing changed or the message does not parse.
 */
export function rewriteMdnsAddresses(msg: Buffer, virtualIp: string, isLocal: (ip: string) => boolean): { payload: Buffer; rewritten: number } {
  const vip = virtualIp.split('.').map(Number);
  if (msg.length < 12 || vip.length !== 4) return { payload: msg, rewritten: 0 };
  const qd = msg.readUInt16BE(4);
  const rr = msg.readUInt16BE(6) + msg.readUInt16BE(8) + msg.readUInt16BE(10);
  let off = 12;
  for (let i = 0; i < qd; i++) {
    off = skipName(msg, off);
    if (off < 0 || off + 4 > msg.length) return { payload: msg, rewritten: 0 };
    off += 4;
  }
  const hits: number[] = [];
  for (let i = 0; i < rr; i++) {
    off = skipName(msg, off);
    if (off < 0 || off + 10 > msg.length) return { payload: msg, rewritten: 0 };
    const type = msg.readUInt16BE(off);
    const rdlen = msg.readUInt16BE(off + 8);
    const data = off + 10;
    if (data + rdlen > msg.length) return { payload: msg, rewritten: 0 };
    if (type === TYPE_A && rdlen === 4) {
      const ip = `${msg[data]}.${msg[data + 1]}.${msg[data + 2]}.${msg[data + 3]}`;
      if (ip !== virtualIp && isLocal(ip)) hits.push(data);
    }
    off = data + rdlen;
  }
  if (hits.length === 0) return { payload: msg, rewritten: 0 };
  const out = Buffer.from(msg);
  for (const at of hits) for (let k = 0; k < 4; k++) out[at + k] = vip[k]!;
  return { payload: out, rewritten: hits.length };
}

/** This machine's IPv4 addresses (loopback included), re-read at most every `ttlMs`. */
export function localAddressSet(ttlMs = 5000, now: () => number = Date.now): (ip: string) => boolean {
  let at = -Infinity;
  let set = new Set<string>();
  return (ip) => {
    if (ip.startsWith('127.')) return true;
    if (now() - at > ttlMs) {
      set = new Set(Object.values(networkInterfaces()).flatMap((l) => (l ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address)));
      at = now();
    }
    return set.has(ip);
  };
}
