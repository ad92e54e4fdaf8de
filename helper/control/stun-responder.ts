import { createSocket, type Socket } from 'node:dgram';
import { createRequire } from 'node:module';
import type { Logger } from '../core/log.js';

// STUN Binding answers (RFC 5389) on two ports of one address, so that a helper can compare the
// mapped ports it sees from each: equal means endpoint-independent mapping, different means
// endpoint-dependent ("symmetric"). The `stun` package does the encoding; it has no types and
// known bugs (shared/STACK-NOTES.md), so it is wrapped here and only its Binding/XOR-MAPPED-ADDRESS
// path is used, with the header checked by hand before it sees a datagram.

interface StunMessage {
  readonly type: number;
  readonly transactionId: Buffer;
  addXorAddress(address: string, port: number): void;
  addFingerprint(): void;
}
interface StunCodec {
  createMessage(type: number, transactionId?: Buffer): StunMessage;
  encode(m: StunMessage): Buffer;
  decode(b: Buffer): StunMessage;
  constants: Record<string, number>;
}
const stun = createRequire(import.meta.url)('stun') as StunCodec;
const BINDING_REQUEST = stun.constants.STUN_BINDING_REQUEST!;
const BINDING_RESPONSE = stun.constants.STUN_BINDING_RESPONSE!;
const MAGIC_COOKIE = 0x2112a442;
const MAX_REQUEST_BYTES = 548;

export interface Remote {
  address: string;
  port: number;
}

/** The Binding success response for a Binding request from `from`, or null for anything else. */
export function bindingResponse(req: Buffer, from: Remote): Buffer | null {
  if (req.length < 20 || req.length > MAX_REQUEST_BYTES) return null;
  if (req.readUInt16BE(0) !== BINDING_REQUEST) return null;
  if (req.readUInt16BE(2) !== req.length - 20 || req.length % 4 !== 0) return null;
  if (req.readUInt32BE(4) !== MAGIC_COOKIE) return null;
  let decoded: StunMessage;
  try {
    decoded = stun.decode(req);
  } catch {
    return null;
  }
  const res = stun.createMessage(BINDING_RESPONSE, decoded.transactionId);
  res.addXorAddress(unmapped(from.address), from.port);
  res.addFingerprint();
  return stun.encode(res);
}

/** "::ffff:1.2.3.4" (an IPv4 client on a dual-stack socket) → "1.2.3.4". */
const unmapped = (address: string): string => (address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address);

// Responses are about twice the size of the smallest request: cap each source address so the
// server cannot be used to flood someone with spoofed-source requests.
const MAX_PER_SOURCE_PER_SECOND = 100;

export interface StunResponder {
  ports: [number, number];
  close(): Promise<void>;
}

export async function startStunResponder(opts: { host: string; port: number; log: Logger }): Promise<StunResponder> {
  const family = opts.host.includes(':') ? 'udp6' : 'udp4';
  let counts = new Map<string, number>();
  const resetTimer = setInterval(() => (counts = new Map()), 1000);
  resetTimer.unref();

  const open = async (port: number): Promise<Socket> => {
    const sock = createSocket({ type: family, reuseAddr: false });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(port, opts.host, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    sock.on('error', (err) => opts.log.warn('stun socket error', { err: err.message }));
    sock.on('message', (msg, rinfo) => {
      const n = (counts.get(rinfo.address) ?? 0) + 1;
      counts.set(rinfo.address, n);
      if (n > MAX_PER_SOURCE_PER_SECOND) return;
      const res = bindingResponse(msg, rinfo);
      if (res) sock.send(res, rinfo.port, rinfo.address);
    });
    return sock;
  };
  const close = (s: Socket): Promise<void> => new Promise((resolve) => s.close(() => resolve()));

  // Port 0 means "any": then the second port is the first plus one, which may be taken; retry.
  let pair: [Socket, Socket] | undefined;
  for (let attempt = 0; !pair; attempt++) {
    const first = await open(opts.port);
    const p = first.address().port;
    try {
      if (p >= 65535) throw Object.assign(new Error('no port above 65535'), { code: 'EADDRINUSE' });
      pair = [first, await open(p + 1)];
    } catch (err) {
      await close(first);
      if (opts.port !== 0 || attempt >= 20) {
        clearInterval(resetTimer);
        throw new Error(`cannot open the second STUN port ${p + 1} next to ${p}: ${(err as Error).message}`);
      }
    }
  }
  const [a, b] = pair;
  return {
    ports: [a.address().port, b.address().port],
    close: async () => {
      clearInterval(resetTimer);
      await Promise.all([close(a), close(b)]);
    },
  };
}
