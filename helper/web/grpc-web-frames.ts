// The gRPC-Web wire format, as pure functions over bytes and strings: the bridge does the I/O,
// this module decides what the bytes mean. Spec: grpc/grpc PROTOCOL-WEB.md and PROTOCOL-HTTP2.md.

export type WireFormat = 'binary' | 'text';

// Only the codes the bridge produces itself; upstream codes pass through as numbers.
export const Code = {
  INVALID_ARGUMENT: 3,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
} as const;

export const FRAME_HEADER_BYTES = 5;
export const DATA_FLAG = 0x00;
export const COMPRESSED_FLAG = 0x01;
export const TRAILER_FLAG = 0x80;

const GRPC_PATH = /^\/[A-Za-z_][\w.]*\/[A-Za-z_]\w*$/;

export function isGrpcWebPath(path: string): boolean {
  return GRPC_PATH.test(path);
}

export interface ContentTypeInfo {
  format: WireFormat;
  // What we answer with: the same family as the request, because grpc-web clients pick their
  // decoder (base64 or not) from the response's content-type.
  responseContentType: string;
}

export const BINARY_CONTENT_TYPE = 'application/grpc-web+proto';
export const TEXT_CONTENT_TYPE = 'application/grpc-web-text+proto';

export function classifyContentType(header: string | undefined): ContentTypeInfo | null {
  const base = (header ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? '';
  switch (base) {
    case 'application/grpc-web':
    case 'application/grpc-web+proto':
      return { format: 'binary', responseContentType: BINARY_CONTENT_TYPE };
    case 'application/grpc-web-text':
    case 'application/grpc-web-text+proto':
      return { format: 'text', responseContentType: TEXT_CONTENT_TYPE };
    default:
      return null;
  }
}

// The largest request body worth reading: one frame header plus the biggest allowed message,
// base64-expanded in text mode. The extra quartet tolerates a client that base64-encodes the
// header and the message as two padded chunks.
export function maxRequestBodyBytes(maxMessageBytes: number, format: WireFormat): number {
  const framed = maxMessageBytes + FRAME_HEADER_BYTES;
  return format === 'binary' ? framed : 4 * Math.ceil(framed / 3) + 4;
}

// Standard base64 only (no url-safe alphabet, no whitespace). Padding may appear at the end of any
// quartet, because a stream of separately encoded chunks is still valid gRPC-Web text; an
// unpadded tail is accepted as well.
const BASE64_CHUNKS = /^(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)*(?:[A-Za-z0-9+/]{2,3})?$/;

export function decodeBase64Chunks(text: string): Buffer | null {
  if (!BASE64_CHUNKS.test(text)) return null;
  // Buffer.from stops at the first '=', so each padded chunk is decoded on its own.
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 3; i < text.length; i += 4) {
    if (text.charCodeAt(i) === 0x3d) {
      parts.push(Buffer.from(text.slice(start, i + 1), 'base64'));
      start = i + 1;
    }
  }
  if (start < text.length) parts.push(Buffer.from(text.slice(start), 'base64'));
  return Buffer.concat(parts);
}

export type ParseResult =
  | { ok: true; message: Buffer }
  | { ok: false; code: number; message: string };

const fail = (code: number, message: string): ParseResult => ({ ok: false, code, message });

// Exactly one uncompressed data frame: the bridge forwards unary and server-streaming calls only,
// and grpc-web clients never send more than one message.
export function parseRequestBody(body: Buffer, format: WireFormat, maxMessageBytes: number): ParseResult {
  let bytes = body;
  if (format === 'text') {
    const decoded = decodeBase64Chunks(body.toString('latin1'));
    if (decoded === null) {
      return fail(Code.INVALID_ARGUMENT, 'request body is not valid base64; application/grpc-web-text needs standard padded base64 with no whitespace');
    }
    bytes = decoded;
  }
  if (bytes.length < FRAME_HEADER_BYTES) {
    return fail(Code.INVALID_ARGUMENT, `request body has ${bytes.length} bytes; a gRPC-Web request is a 5-byte frame header followed by one message`);
  }
  const flag = bytes[0] ?? 0;
  if (flag === COMPRESSED_FLAG) {
    return fail(Code.UNIMPLEMENTED, 'compressed request messages are not supported; send the message uncompressed (frame flag 0x00)');
  }
  if (flag !== DATA_FLAG) {
    const hex = flag.toString(16).padStart(2, '0');
    return fail(Code.INVALID_ARGUMENT, `request frame flag is 0x${hex}; a request must be one data frame with flag 0x00`);
  }
  const declared = bytes.readUInt32BE(1);
  if (declared > maxMessageBytes) {
    return fail(Code.RESOURCE_EXHAUSTED, `request message of ${declared} bytes exceeds the limit of ${maxMessageBytes} bytes`);
  }
  const actual = bytes.length - FRAME_HEADER_BYTES;
  if (actual < declared) {
    return fail(Code.INVALID_ARGUMENT, `request frame declares ${declared} message bytes but only ${actual} arrived; the body was truncated`);
  }
  if (actual > declared) {
    return fail(Code.INVALID_ARGUMENT, `request body has ${actual - declared} bytes after the first message; send exactly one message per call (client streaming is not supported over gRPC-Web)`);
  }
  return { ok: true, message: bytes.subarray(FRAME_HEADER_BYTES) };
}

function frame(flag: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  out[0] = flag;
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

export function encodeDataFrame(message: Uint8Array): Buffer {
  return frame(DATA_FLAG, message);
}

export function encodeTrailerFrame(code: number, message: string, metadata: ReadonlyArray<readonly [string, string]> = []): Buffer {
  let block = `grpc-status:${code}\r\ngrpc-message:${percentEncodeGrpcMessage(message)}\r\n`;
  for (const [k, v] of metadata) block += `${k}:${v}\r\n`;
  return frame(TRAILER_FLAG, Buffer.from(block, 'latin1'));
}

// Text mode encodes each frame on its own, so a frame can be flushed the moment it exists.
export function encodeForWire(frameBytes: Buffer, format: WireFormat): Buffer {
  return format === 'text' ? Buffer.from(frameBytes.toString('base64'), 'latin1') : frameBytes;
}

export interface Frame {
  flag: number;
  payload: Buffer;
}

// Splits a (binary) response stream into frames; `rest` is an incomplete frame still to come.
export function decodeFrames(bytes: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let off = 0;
  while (bytes.length - off >= FRAME_HEADER_BYTES) {
    const len = bytes.readUInt32BE(off + 1);
    if (bytes.length - off - FRAME_HEADER_BYTES < len) break;
    frames.push({ flag: bytes[off] ?? 0, payload: bytes.subarray(off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + len) });
    off += FRAME_HEADER_BYTES + len;
  }
  return { frames, rest: bytes.subarray(off) };
}

// Trailer block → lower-cased key/value map, the way grpc-web clients read it.
export function parseTrailerBlock(payload: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of payload.toString('latin1').split('\r\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    out.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return out;
}

// gRPC's percent-encoding: UTF-8 bytes outside printable ASCII, and '%' itself, become %XX.
export function percentEncodeGrpcMessage(message: string): string {
  let out = '';
  for (const b of Buffer.from(message, 'utf8')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

// Lenient, as the spec asks of receivers: a malformed %XX is kept literally.
export function percentDecodeGrpcMessage(encoded: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const c = encoded.charCodeAt(i);
    const hex = encoded.slice(i + 1, i + 3);
    if (c === 0x25 && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(encoded[i] ?? '', 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };

// grpc-timeout is "1 to 8 digits, then one unit letter"; returns milliseconds, or null when the
// header is malformed.
export function parseGrpcTimeout(value: string): number | null {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value.trim());
  if (!m) return null;
  const unit = TIMEOUT_UNIT_MS[m[2] ?? ''];
  return unit === undefined ? null : Number(m[1]) * unit;
}

// Headers a trailer block must never carry from upstream: framing and hop-by-hop fields, and the
// status fields the bridge writes itself.
const RESERVED_METADATA = new Set([
  'grpc-status', 'grpc-message', 'content-type', 'content-length', 'grpc-encoding', 'grpc-accept-encoding',
  'te', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'trailer', 'host',
]);

// Upstream trailing metadata reduced to what is safe inside a trailer block: lower-case token keys,
// printable ASCII values (so no CR/LF can forge a line), binary values base64 as the spec says.
export function safeTrailerMetadata(md: Readonly<Record<string, ReadonlyArray<string | Uint8Array>>>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [key, values] of Object.entries(md)) {
    if (!/^[0-9a-z_.-]+$/.test(key) || RESERVED_METADATA.has(key)) continue;
    const binary = key.endsWith('-bin');
    for (const v of values) {
      if (binary && typeof v !== 'string') out.push([key, Buffer.from(v).toString('base64')]);
      else if (!binary && typeof v === 'string' && /^[\x20-\x7e]*$/.test(v)) out.push([key, v]);
    }
  }
  return out;
}
