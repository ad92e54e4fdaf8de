// A STUN Binding client over the shared public socket: it sends, the socket's demux hands the
// answers back. The `stun` package (2.1.0) is only the codec, wrapped here behind two functions;
// per STACK-NOTES it throws on IPv6 address attributes and has other bugs, so every decode is
// guarded and the answer is checked against the raw bytes we care about (type, cookie, txid).
// Transactions, retransmission and the NAT mapping test are ours.

import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { isIPv4, parseEndpoint } from './addr.js';
import { isStun } from './demux.js';
import type { Clock } from '../core/clock.js';

export interface StunAttr { value: { address?: unknown; port?: unknown; family?: unknown } }
export interface StunMsg {
  readonly type: number;
  readonly transactionId: Buffer;
  addAttribute(type: number, ...args: unknown[]): unknown;
  getAttribute(type: number): StunAttr | undefined;
}
export interface StunLib {
  createMessage(type: number, transaction?: Buffer): StunMsg;
  encode(m: StunMsg): Buffer;
  decode(b: Buffer): StunMsg;
}
// The package has no types; this is the part we use.
export const stunLib = createRequire(import.meta.url)('stun') as StunLib;

export const BINDING_REQUEST = 0x0001;
export const BINDING_RESPONSE = 0x0101;
export const ATTR_MAPPED_ADDRESS = 0x0001;
export const ATTR_XOR_MAPPED_ADDRESS = 0x0020;

export function encodeBindingRequest(txid: Buffer): Buffer {
  if (txid.length !== 12) throw new Error('STUN transaction id must be 12 bytes');
  return stunLib.encode(stunLib.createMessage(BINDING_REQUEST, txid));
}

/** For STUN answerers (tests, the lab): a success response carrying XOR-MAPPED-ADDRESS. */
export function encodeBindingResponse(txid: Buffer, mapped: { ip: string; port: number }): Buffer {
  const m = stunLib.createMessage(BINDING_RESPONSE, txid);
  m.addAttribute(ATTR_XOR_MAPPED_ADDRESS, mapped.ip, mapped.port);
  return stunLib.encode(m);
}

export interface StunDecoded {
  type: number;
  txid: Buffer;
  /** XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS, as "ip:port" (IPv4 only), or null. */
  mapped: string | null;
}

export function decodeStun(b: Buffer): StunDecoded | null {
  if (!isStun(b)) return null;
  const declared = b.readUInt16BE(2);
  if (declared % 4 !== 0 || declared + 20 > b.length) return null;
  let m: StunMsg;
  try {
    m = stunLib.decode(b.subarray(0, 20 + declared));
  } catch {
    return null;
  }
  const txid = Buffer.from(b.subarray(8, 20));
  let mapped: string | null = null;
  for (const t of [ATTR_XOR_MAPPED_ADDRESS, ATTR_MAPPED_ADDRESS]) {
    const v = m.getAttribute(t)?.value;
    if (v && typeof v.address === 'string' && isIPv4(v.address) && typeof v.port === 'number' && v.port > 0 && v.port <= 65535) {
      mapped = `${v.address}:${v.port}`;
      break;
    }
  }
  return { type: b.readUInt16BE(0), txid, mapped };
}

export type NatMapping = 'endpoint-independent' | 'endpoint-dependent' | 'unknown';

export interface NatInfo {
  mapping: NatMapping;
  publicAddress: string | null;
}

/**
 * Mapping behaviour from the answers of different server endpoints: the same mapped address
 * everywhere means the NAT keeps one mapping per local port (endpoint-independent); a different
 * one per destination means "symmetric" (endpoint-dependent), and then the STUN-mapped address is
 * no use to a peer.
 */
export function natFromAnswers(answers: ReadonlyArray<string | null>): NatInfo {
  const got = answers.filter((a): a is string => a !== null);
  if (got.length === 0) return { mapping: 'unknown', publicAddress: null };
  const first = got[0] as string;
  if (got.length < 2) return { mapping: 'unknown', publicAddress: first };
  return { mapping: got.every((a) => a === first) ? 'endpoint-independent' : 'endpoint-dependent', publicAddress: first };
}

export const STUN_RETRANSMIT_MS: readonly number[] = [250, 500, 1000];
/** How long to wait after the last retransmission. */
export const STUN_FINAL_WAIT_MS = 1000;

interface Pending {
  server: string;
  resolve(mapped: string | null): void;
  cancel: () => void;
}

/**
 * Binding transactions over someone else's socket: send() is the public socket, handle() is fed
 * every STUN datagram the demux sees and claims the ones that answer our transactions.
 */
export class StunClient {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly send: (b: Buffer, ip: string, port: number) => void,
    private readonly clock: Clock,
  ) {}

  /** The mapped "ip:port" this server saw, or null after the retransmissions went unanswered. */
  query(server: string): Promise<string | null> {
    const ep = parseEndpoint(server);
    if (!ep) return Promise.reject(new Error(`STUN server must be "ip:port": ${JSON.stringify(server)}`));
    const txid = randomBytes(12);
    const key = txid.toString('hex');
    const req = encodeBindingRequest(txid);
    return new Promise((resolve) => {
      let attempt = 0;
      const p: Pending = { server, resolve, cancel: () => {} };
      const step = (): void => {
        if (attempt > STUN_RETRANSMIT_MS.length) {
          this.pending.delete(key);
          resolve(null);
          return;
        }
        try {
          this.send(req, ep.ip, ep.port);
        } catch {
          // A send error (socket closing, no route) is the same as no answer: retry, then give up.
        }
        const wait = STUN_RETRANSMIT_MS[attempt] ?? STUN_FINAL_WAIT_MS;
        attempt++;
        p.cancel = this.clock.setTimeout(step, wait);
      };
      this.pending.set(key, p);
      step();
    });
  }

  /** True when the datagram answered one of our transactions (it is then consumed). */
  handle(b: Buffer, from: string): boolean {
    if (b.length < 20) return false;
    const key = b.toString('hex', 8, 20);
    const p = this.pending.get(key);
    if (!p) return false;
    // Only the server we asked may answer: a forged answer would plant a false public address.
    if (from !== p.server) return false;
    const d = decodeStun(b);
    if (!d || d.type !== BINDING_RESPONSE) return false;
    this.pending.delete(key);
    p.cancel();
    p.resolve(d.mapped);
    return true;
  }

  /** Sends to every server at once; the NAT verdict compares their answers. */
  async probe(servers: readonly string[]): Promise<{ nat: NatInfo; answers: Array<string | null> }> {
    const answers = await Promise.all(servers.map((s) => this.query(s).catch(() => null)));
    return { nat: natFromAnswers(answers), answers };
  }

  close(): void {
    for (const p of this.pending.values()) {
      p.cancel();
      p.resolve(null);
    }
    this.pending.clear();
  }
}
