// The I/O half of netcheck: runs the RFC 5780 tests (netcheck.ts) over two UDP sockets of its own,
// bound to 0.0.0.0 on fresh ports. A NAT classifies by its own rules, not by which local port a
// packet leaves from, so the helper's public (magicsock) socket would get the same mapping and
// filtering verdict; own sockets keep the tests from disturbing live paths (filtering tests must
// start from a mapping that has talked only to the primary address). The lead may move the
// mapping tests onto magicsock's socket later so that public_address is WireGuard's own.
//
// Only the control server is ever contacted: its announced stun_servers, and the alternate
// address it names in OTHER-ADDRESS. Every wait is bounded: a test sends at 0, 250 and 750 ms and
// gives up at 1.5 s, and the mapping and filtering tests run side by side, so a run where UDP is
// blocked ends in about 1.5 s and a complete one in about 1.5 s plus a few round trips.

import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { parseEndpoint } from './addr.js';
import { classifyNat, type BindingAnswer, type ChangeOutcome, type Endpoint, type NatVerdict, type NetcheckObservations } from './netcheck.js';
import { systemClock } from '../core/clock.js';
import { decodeNetcheckAnswer, encodeNetcheckRequest, type NetcheckAnswer } from './stun/binding.js';
import { Transactions } from './stun/transactions.js';
import type { PortMapProtocol } from './portmapper/portmapper.js';
import type { RelayLatency } from './relayconn.js';

export interface NetcheckTiming {
  /** Gaps between (re)transmissions. */
  retransmitMs: readonly number[];
  /** Wait after the last transmission. */
  finalWaitMs: number;
}
export const NETCHECK_TIMING: NetcheckTiming = { retransmitMs: [250, 500], finalWaitMs: 750 };

export interface NetcheckResult extends NatVerdict {
  at: Date;
  /** The primary STUN address used. */
  server: string;
  localAddresses: string[];
  durationMs: number;
  /** Port-mapping protocols the gateway answered (asked by the Netchecker beside the STUN tests). */
  portMapping?: readonly PortMapProtocol[];
  /** The control server's relays, measured from the helper's public socket beside the tests. */
  relays?: readonly RelayLatency[];
}

export interface NetcheckRunOptions {
  /** The control server's stun_servers ("ip:port"); the first is the primary address. */
  stunServers: readonly string[];
  bindAddress?: string;
  timing?: NetcheckTiming;
  localAddresses?: () => string[];
}

/** This machine's IPv4 addresses, without loopback, link-local and the virtual LAN (10.66/16). */
export function localIPv4Addresses(ifaces = networkInterfaces()): string[] {
  const out: string[] = [];
  for (const list of Object.values(ifaces)) {
    for (const a of list ?? []) {
      if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('10.66.') && !a.address.startsWith('169.254.')) out.push(a.address);
    }
  }
  return out;
}

/** STUN transactions on one socket: retransmitted, matched by id and by the expected source. */
class Transactor {
  private readonly tx: Transactions;

  constructor(
    private readonly sock: Socket,
    timing: NetcheckTiming,
  ) {
    this.tx = new Transactions(systemClock, { rtoMs: timing.retransmitMs, finalWaitMs: timing.finalWaitMs, reliableTimeoutMs: 0 });
    sock.on('message', (msg, rinfo) => this.tx.handle(msg, `${rinfo.address}:${rinfo.port}`));
  }

  get localPort(): number {
    return this.sock.address().port;
  }

  /** The answer, or null when none came in time. A CHANGE-REQUEST is answered from `expectFrom`. */
  request(to: Endpoint, change: { ip: boolean; port: boolean } | null = null, expectFrom: Endpoint = to): Promise<NetcheckAnswer | null> {
    const req = encodeNetcheckRequest(randomBytes(12), change);
    const send = (b: Buffer): void =>
      this.sock.send(b, to.port, to.ip, () => {
        // A send error (no route, socket closing) is the same as silence: the timer decides.
      });
    // Answers count only from where they must come: a success from the (changed) address asked
    // for, an error from the address we sent to. Anything else could fake a filtering verdict.
    const accept = (b: Buffer, from: string | undefined): boolean => {
      const a = decodeNetcheckAnswer(b);
      const src = a === null ? null : a.error === 0 ? expectFrom : to;
      return src !== null && from === `${src.ip}:${src.port}`;
    };
    return this.tx.request(req, send, false, 'netcheck', accept).then(decodeNetcheckAnswer, () => null);
  }

  close(): void {
    this.tx.failAll(new Error('netcheck finished'));
  }
}

const binding = (a: NetcheckAnswer | null): BindingAnswer | null => (a && a.error === 0 && a.mapped ? { mapped: a.mapped, other: a.other } : null);
const outcome = (a: NetcheckAnswer | null): ChangeOutcome => (a === null ? 'silent' : a.error === 0 ? 'answered' : 'refused');

async function openSocket(address: string): Promise<Socket> {
  const sock = createSocket({ type: 'udp4', reuseAddr: false });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, address, () => {
      sock.off('error', reject);
      resolve();
    });
  });
  sock.on('error', () => {
    // ICMP errors surface here on some systems; the transaction timers handle silence.
  });
  return sock;
}

/** Runs the tests against the control server's STUN service and classifies the NAT. */
export async function runNetcheck(opts: NetcheckRunOptions): Promise<NetcheckResult> {
  const started = Date.now();
  const servers = opts.stunServers.map((s) => parseEndpoint(s)).filter((e): e is Endpoint => e !== null);
  const primary = servers[0];
  if (!primary) throw new Error('no usable STUN server: the control server named none');
  const secondPort = servers.find((s) => s.ip === primary.ip && s.port !== primary.port);
  const timing = opts.timing ?? NETCHECK_TIMING;
  const bindAddress = opts.bindAddress ?? '0.0.0.0';
  const sockets: Socket[] = [];
  try {
    sockets.push(await openSocket(bindAddress), await openSocket(bindAddress));
    const m = new Transactor(sockets[0]!, timing);
    const f = new Transactor(sockets[1]!, timing);
    try {
      const mapping = async (): Promise<Pick<NetcheckObservations, 'test1' | 'test2' | 'test3' | 'secondPort'>> => {
        const test1 = binding(await m.request(primary));
        if (!test1) return { test1 };
        const other = test1.other;
        if (!other) return { test1, secondPort: secondPort ? binding(await m.request(secondPort)) : null };
        const test2 = binding(await m.request({ ip: other.ip, port: primary.port }));
        if (!test2 || (test2.mapped.ip === test1.mapped.ip && test2.mapped.port === test1.mapped.port)) return { test1, test2 };
        return { test1, test2, test3: binding(await m.request(other)) };
      };
      const filtering = async (): Promise<Pick<NetcheckObservations, 'filter1' | 'filter2' | 'filter3'>> => {
        const filter1 = binding(await f.request(primary));
        const other = filter1?.other;
        if (!filter1 || !other) return { filter1 };
        // Both at once: the NAT's state changes only with what we send, and both go to primary.
        const [both, port] = await Promise.all([
          f.request(primary, { ip: true, port: true }, other),
          f.request(primary, { ip: false, port: true }, { ip: primary.ip, port: other.port }),
        ]);
        return { filter1, filter2: outcome(both), filter3: outcome(port) };
      };
      const [mo, fo] = await Promise.all([mapping(), filtering()]);
      const localAddresses = (opts.localAddresses ?? localIPv4Addresses)();
      const verdict = classifyNat({ localPort: m.localPort, localAddresses, ...mo, ...fo });
      return { ...verdict, at: new Date(), server: `${primary.ip}:${primary.port}`, localAddresses, durationMs: Date.now() - started };
    } finally {
      m.close();
      f.close();
    }
  } finally {
    await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
