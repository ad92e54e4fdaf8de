// ChannelData (RFC 8656 §12.4) and the stream framing TURN uses over TCP/TLS, where STUN messages and
// ChannelData messages follow each other with no other delimiter: a STUN message's length is 20 +
// its header's length field; a ChannelData message's is 4 + its length field, rounded up to a
// multiple of 4 over a stream. One unpadded ChannelData desynchronises coturn's parser for good
// while the connection stays open (STACK-NOTES), so the padding is not optional.

import { CHANNEL_MAX, CHANNEL_MIN } from '../stun/codec.js';

export const CHANNELDATA_HEADER = 4;
/** A ChannelData length field is 16 bits. */
export const MAX_CHANNELDATA_PAYLOAD = 0xffff;

export function isChannelNumber(n: number): boolean {
  return Number.isInteger(n) && n >= CHANNEL_MIN && n <= CHANNEL_MAX;
}

/** One ChannelData message; `pad` (streams) rounds its length up to a multiple of 4 with zeros. */
export function encodeChannelData(channel: number, data: Buffer, pad: boolean): Buffer {
  if (!isChannelNumber(channel)) throw new Error(`bad channel number ${channel}`);
  if (data.length > MAX_CHANNELDATA_PAYLOAD) throw new Error(`ChannelData payload too long: ${data.length}`);
  const padLen = pad ? (4 - (data.length % 4)) % 4 : 0;
  const out = Buffer.allocUnsafe(CHANNELDATA_HEADER + data.length + padLen);
  out.writeUInt16BE(channel, 0);
  out.writeUInt16BE(data.length, 2);
  data.copy(out, CHANNELDATA_HEADER);
  if (padLen) out.fill(0, CHANNELDATA_HEADER + data.length);
  return out;
}

/** The channel and payload of a ChannelData message (padding after the payload is ignored). */
export function decodeChannelData(b: Buffer): { channel: number; data: Buffer } | null {
  if (b.length < CHANNELDATA_HEADER) return null;
  const channel = b.readUInt16BE(0);
  const len = b.readUInt16BE(2);
  if (!isChannelNumber(channel) || CHANNELDATA_HEADER + len > b.length) return null;
  return { channel, data: b.subarray(CHANNELDATA_HEADER, CHANNELDATA_HEADER + len) };
}

/** Bytes the frame starting with this 4-byte header occupies in a stream, or null if it is neither kind. */
export function streamFrameLength(head: Buffer): number | null {
  const top = (head[0] as number) >> 6;
  const len = head.readUInt16BE(2);
  if (top === 0) return len % 4 === 0 ? 20 + len : null;
  if (top === 1) return CHANNELDATA_HEADER + len + ((4 - (len % 4)) % 4);
  return null;
}

/**
 * Splits a TCP byte stream into STUN and ChannelData messages. A frame that is neither means the
 * stream is out of step: the caller must drop the connection (there is no way to resynchronise).
 */
export class StreamFramer {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (frame: Buffer) => void) {}

  /** Feeds bytes; throws when the stream is not TURN framing. */
  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let off = 0;
    while (this.buf.length - off >= CHANNELDATA_HEADER) {
      const n = streamFrameLength(this.buf.subarray(off, off + CHANNELDATA_HEADER));
      if (n === null) {
        this.buf = Buffer.alloc(0);
        throw new Error('TURN stream out of step (neither STUN nor ChannelData)');
      }
      if (this.buf.length - off < n) break;
      const frame = this.buf.subarray(off, off + n);
      off += n;
      this.onFrame(frame);
    }
    // Keep only the partial frame; copy it so the consumed chunk can be freed.
    this.buf = off === 0 ? this.buf : Buffer.from(this.buf.subarray(off));
  }

  /** Bytes held waiting for the rest of a frame. */
  get pending(): number {
    return this.buf.length;
  }
}
