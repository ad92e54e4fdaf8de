// What arrived on the one public UDP port, decided from the first bytes alone (no copies, no
// parsing beyond the header), so every datagram is routed in O(1):
//   WireGuard      type 1-4, then three zero bytes (the same test the fast path's nft rule makes)
//   STUN           top two bits 00, magic cookie 0x2112A442 at offset 4, at least a 20-byte header
//   ChannelData    first byte 0x40-0x7F (TURN channel numbers 0x4000-0x7FFF), 4-byte header
//   disco          our magic prefix; its first byte 0xD1 is outside every range above
// WireGuard is tested before STUN: a STUN method we use never has a zero second byte, so a datagram
// whose bytes 1-3 are zero is WireGuard's even if its sender index happens to equal the cookie.

export type PacketKind = 'wireguard' | 'stun' | 'channeldata' | 'disco' | 'unknown';

/** 0xD1 0x5C 'L' 'R': first byte >= 0x80, so never STUN (00), ChannelData (01) or WireGuard (1-4). */
export const DISCO_MAGIC: Buffer = Buffer.from([0xd1, 0x5c, 0x4c, 0x52]);
export const STUN_COOKIE = 0x2112a442;

/** Smallest sealed disco message: magic, sender key, nonce, a one-byte body and the tag. */
export const DISCO_MIN_LEN = DISCO_MAGIC.length + 32 + 12 + 1 + 16;

export function isWireGuard(b: Uint8Array): boolean {
  const t = b[0];
  return b.length >= 4 && t !== undefined && t >= 1 && t <= 4 && b[1] === 0 && b[2] === 0 && b[3] === 0;
}

export function isStun(b: Uint8Array): boolean {
  if (b.length < 20 || ((b[0] as number) & 0xc0) !== 0) return false;
  return ((((b[4] as number) << 24) | ((b[5] as number) << 16) | ((b[6] as number) << 8) | (b[7] as number)) >>> 0) === STUN_COOKIE;
}

export function isChannelData(b: Uint8Array): boolean {
  const t = b[0];
  return b.length >= 4 && t !== undefined && t >= 0x40 && t <= 0x7f;
}

export function isDisco(b: Uint8Array): boolean {
  return b.length >= DISCO_MIN_LEN && b[0] === 0xd1 && b[1] === 0x5c && b[2] === 0x4c && b[3] === 0x52;
}

export function classify(b: Uint8Array): PacketKind {
  if (isWireGuard(b)) return 'wireguard';
  if (isStun(b)) return 'stun';
  if (isChannelData(b)) return 'channeldata';
  if (isDisco(b)) return 'disco';
  return 'unknown';
}
