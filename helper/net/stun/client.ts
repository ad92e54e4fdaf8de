// A STUN Binding client over the shared public socket: it sends, the socket's demux hands the
// answers back through handle(). Transactions (retransmission, matching) are transactions.ts's;
// the NAT mapping verdict from several servers' answers is here.

import { randomBytes } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import { parseEndpoint } from '../addr.js';
import { BINDING_RESPONSE, decodeStun, encodeBindingRequest } from './binding.js';
import { Transactions, type RetransmitTiming } from './transactions.js';

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
const BINDING_TIMING: RetransmitTiming = { rtoMs: STUN_RETRANSMIT_MS, finalWaitMs: STUN_FINAL_WAIT_MS, reliableTimeoutMs: 0 };

/** An answer counts only from the server asked: a forged one would plant a false public address. */
export function bindingAnswerFrom(server: string): (b: Buffer, from: string | undefined) => boolean {
  return (b, from) => from === server && decodeStun(b)?.type === BINDING_RESPONSE;
}

/**
 * Binding transactions over someone else's socket: send() is the public socket, handle() is fed
 * every STUN datagram the demux sees and claims the ones that answer our transactions.
 */
export class StunClient {
  private readonly tx: Transactions;

  constructor(
    private readonly send: (b: Buffer, ip: string, port: number) => void,
    clock: Clock,
  ) {
    this.tx = new Transactions(clock, BINDING_TIMING);
  }

  /** The mapped "ip:port" this server saw, or null after the retransmissions went unanswered. */
  query(server: string): Promise<string | null> {
    const ep = parseEndpoint(server);
    if (!ep) return Promise.reject(new Error(`STUN server must be "ip:port": ${JSON.stringify(server)}`));
    const req = encodeBindingRequest(randomBytes(12));
    return this.tx.request(req, (b) => this.send(b, ep.ip, ep.port), false, 'STUN Binding', bindingAnswerFrom(server)).then(
      (b) => decodeStun(b)?.mapped ?? null,
      () => null,
    );
  }

  /** True when the datagram answered one of our transactions (it is then consumed). */
  handle(b: Buffer, from: string): boolean {
    return this.tx.handle(b, from);
  }

  /** Sends to every server at once; the NAT verdict compares their answers. */
  async probe(servers: readonly string[]): Promise<{ nat: NatInfo; answers: Array<string | null> }> {
    const answers = await Promise.all(servers.map((s) => this.query(s).catch(() => null)));
    return { nat: natFromAnswers(answers), answers };
  }

  close(): void {
    this.tx.failAll(new Error('STUN client closed'));
  }
}
