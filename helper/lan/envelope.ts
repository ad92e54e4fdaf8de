// The fan-out message: one captured broadcast or multicast datagram, as a helper sends it to each
// other member's LAN relay through the tunnel (to the peer's virtual IP, on the LAN relay port).
// Pure: encoding and a strict parser for what arrives from the network.
//
//   magic(4) version(1) hops(1) flags(2)=0 origin(4) srcPort(2) dst(4) dstPort(2) id(8) len(2) payload(len)
//
// All integers big-endian. `origin` is the virtual IP of the player whose game sent the datagram
// and `srcPort` its source port: the far side injects the payload with exactly that source, so the
// game's unicast reply goes to origin:srcPort over WireGuard. `dst` is 255.255.255.255 for every
// broadcast (a directed broadcast means nothing on the far LAN) or the multicast group. `hops`
// counts relays passed: every member is one tunnel hop away, so a relay only ever accepts 0 and
// never forwards what it received. `id` names one captured datagram for duplicate detection.

import { intToIp, ipToInt, isIPv4 } from '../net/addr.js';

/** First byte 0xC5: outside every range the public-port demux claims (STUN, ChannelData, WireGuard). */
export const ENVELOPE_MAGIC = Buffer.from([0xc5, 0x4c, 0x52, 0x42]); // "\xC5LRB"
export const ENVELOPE_VERSION = 1;
export const HEADER_LEN = 30;
/**
 * Discovery datagrams are small (mDNS and SSDP stay well under 1500 bytes); 4 KiB keeps room for
 * big mDNS answers while bounding what one captured datagram costs the party. Larger ones are
 * not carried. An envelope above the tunnel MTU is fragmented inside the tunnel by the kernel.
 */
export const MAX_PAYLOAD = 4096;
export const MAX_ENVELOPE = HEADER_LEN + MAX_PAYLOAD;
export const LIMITED_BROADCAST = '255.255.255.255';
export const ID_LEN = 8;

export interface Envelope {
  /** Virtual IPv4 of the sending player. */
  origin: string;
  srcPort: number;
  /** 255.255.255.255 (any broadcast) or a multicast group (224.0.0.0/4). */
  dst: string;
  dstPort: number;
  hops: number;
  /** 16 lowercase hex characters. */
  id: string;
  payload: Buffer;
}

export type ParseResult = { ok: true; envelope: Envelope } | { ok: false; reason: string };

export function isMulticast(ip: string): boolean {
  return isIPv4(ip) && ipToInt(ip) >>> 28 === 0xe;
}

/** An address a datagram can have come from as a player's virtual IP: unicast, not loopback or this-network. */
export function isUnicastOrigin(ip: string): boolean {
  if (!isIPv4(ip)) return false;
  const first = ipToInt(ip) >>> 24;
  return first !== 0 && first !== 127 && first < 224;
}

export function isValidDst(ip: string): boolean {
  return ip === LIMITED_BROADCAST || isMulticast(ip);
}

const isPort = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= 65535;
const ID_RE = /^[0-9a-f]{16}$/;

export function encodeEnvelope(e: Envelope): Buffer {
  if (!isUnicastOrigin(e.origin)) throw new Error(`envelope: bad origin ${JSON.stringify(e.origin)}`);
  if (!isValidDst(e.dst)) throw new Error(`envelope: bad destination ${JSON.stringify(e.dst)}`);
  if (!isPort(e.srcPort) || !isPort(e.dstPort)) throw new Error('envelope: ports must be 1-65535');
  if (!Number.isInteger(e.hops) || e.hops < 0 || e.hops > 255) throw new Error('envelope: hops must be 0-255');
  if (!ID_RE.test(e.id)) throw new Error('envelope: id must be 16 lowercase hex characters');
  if (e.payload.length > MAX_PAYLOAD) throw new Error(`envelope: payload of ${e.payload.length} bytes exceeds ${MAX_PAYLOAD}`);
  const b = Buffer.allocUnsafe(HEADER_LEN + e.payload.length);
  ENVELOPE_MAGIC.copy(b, 0);
  b.writeUInt8(ENVELOPE_VERSION, 4);
  b.writeUInt8(e.hops, 5);
  b.writeUInt16BE(0, 6);
  b.writeUInt32BE(ipToInt(e.origin), 8);
  b.writeUInt16BE(e.srcPort, 12);
  b.writeUInt32BE(ipToInt(e.dst), 14);
  b.writeUInt16BE(e.dstPort, 18);
  b.write(e.id, 20, ID_LEN, 'hex');
  b.writeUInt16BE(e.payload.length, 28);
  e.payload.copy(b, HEADER_LEN);
  return b;
}

/** Strict: anything that is not exactly a well-formed version-1 envelope is refused with a reason. */
export function parseEnvelope(b: Buffer): ParseResult {
  if (b.length < HEADER_LEN) return { ok: false, reason: `too short (${b.length} bytes)` };
  if (b.length > MAX_ENVELOPE) return { ok: false, reason: `too long (${b.length} bytes)` };
  if (!b.subarray(0, 4).equals(ENVELOPE_MAGIC)) return { ok: false, reason: 'bad magic' };
  const version = b.readUInt8(4);
  if (version !== ENVELOPE_VERSION) return { ok: false, reason: `unsupported version ${version}` };
  const hops = b.readUInt8(5);
  if (b.readUInt16BE(6) !== 0) return { ok: false, reason: 'reserved flags set' };
  const origin = intToIp(b.readUInt32BE(8));
  if (!isUnicastOrigin(origin)) return { ok: false, reason: `bad origin ${origin}` };
  const srcPort = b.readUInt16BE(12);
  const dst = intToIp(b.readUInt32BE(14));
  if (!isValidDst(dst)) return { ok: false, reason: `destination ${dst} is neither the broadcast address nor a multicast group` };
  const dstPort = b.readUInt16BE(18);
  if (!isPort(srcPort) || !isPort(dstPort)) return { ok: false, reason: 'port 0' };
  const id = b.toString('hex', 20, 28);
  const len = b.readUInt16BE(28);
  if (len > MAX_PAYLOAD) return { ok: false, reason: `payload length ${len} exceeds ${MAX_PAYLOAD}` };
  if (b.length !== HEADER_LEN + len) return { ok: false, reason: `length field ${len} does not match ${b.length - HEADER_LEN} payload bytes` };
  return { ok: true, envelope: { origin, srcPort, dst, dstPort, hops, id, payload: Buffer.from(b.subarray(HEADER_LEN)) } };
}
