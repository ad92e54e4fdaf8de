import { createSocket, type Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import type { Logger } from '../core/log.js';
import { ATTR } from '../net/stun/codec.js';
import { STUN_COOKIE } from '../net/demux.js';
import { BINDING_REQUEST, CHANGE_IP, CHANGE_PORT, encodeBindingAnswer, encodeChangeRefused, requestChangeFlags } from '../net/stun/binding.js';

// STUN Binding answers (RFC 5389) with the RFC 5780 NAT-behaviour-discovery extensions.
//
// Without an alternate IP the server listens on two ports of one address, so that a helper can
// compare the mapped ports it sees from each. It then has no "alternate address" in the RFC 5780
// sense (that needs a second IP *and* a second port), so, as RFC 5780 §6.1 requires, any request
// carrying CHANGE-REQUEST gets error 420 (Unknown Attribute) listing CHANGE-REQUEST, and no
// OTHER-ADDRESS is sent: the client learns it cannot run the filtering tests.
//
// With an alternate IP (`--stun-alt-ip`) it listens on both IPs × both ports and honours
// CHANGE-REQUEST (change IP, change port, both) by answering from the matching socket, and adds
// OTHER-ADDRESS (the other IP and other port) and RESPONSE-ORIGIN (the socket that answered).
//
// The messages are built and read by helper/net/stun/binding.ts (the one STUN codec, which holds
// the `stun` package's workarounds); the header is checked here before it sees a datagram.

const MAX_REQUEST_BYTES = 548;

export const ATTR_MAPPED_ADDRESS = ATTR.MAPPED_ADDRESS;
export const ATTR_CHANGE_REQUEST = ATTR.CHANGE_REQUEST;
export const ATTR_ERROR_CODE = ATTR.ERROR_CODE;
export const ATTR_UNKNOWN_ATTRIBUTES = ATTR.UNKNOWN_ATTRIBUTES;
export const ATTR_XOR_MAPPED_ADDRESS = ATTR.XOR_MAPPED_ADDRESS;
export const ATTR_RESPONSE_ORIGIN = ATTR.RESPONSE_ORIGIN;
export const ATTR_OTHER_ADDRESS = ATTR.OTHER_ADDRESS;
export { CHANGE_IP, CHANGE_PORT };

export interface Remote {
  address: string;
  port: number;
}

/** Where a request arrived and what the server's alternate address is (null: it has none). */
export interface ResponderView {
  /** The socket the request arrived on; null when it listens on a wildcard address. */
  local: Remote | null;
  /** RFC 5780 alternate address relative to `local`: the other IP and the other port. */
  other: Remote | null;
}

export interface StunAnswer {
  response: Buffer;
  /** Which socket must send it, relative to the one the request arrived on. */
  changeIp: boolean;
  changePort: boolean;
}

/** "::ffff:1.2.3.4" (an IPv4 client on a dual-stack socket) → "1.2.3.4". */
const unmapped = (address: string): string => (address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address);

/**
 * The answer to a STUN request from `from`, or null for anything that is not a well-formed
 * Binding request (ignored: a reply to garbage would make us a reflector).
 */
export function answerStun(req: Buffer, from: Remote, view: ResponderView = { local: null, other: null }): StunAnswer | null {
  if (req.length < 20 || req.length > MAX_REQUEST_BYTES) return null;
  if (req.readUInt16BE(0) !== BINDING_REQUEST) return null;
  if (req.readUInt16BE(2) !== req.length - 20 || req.length % 4 !== 0) return null;
  if (req.readUInt32BE(4) !== STUN_COOKIE) return null;
  const tid = req.subarray(8, 20);
  const change = requestChangeFlags(req);
  if (change === 'malformed') return null;
  let changeIp = false;
  let changePort = false;
  if (change !== null) {
    if (!view.other) return { response: encodeChangeRefused(tid), changeIp: false, changePort: false };
    changeIp = (change & CHANGE_IP) !== 0;
    changePort = (change & CHANGE_PORT) !== 0;
  }
  // RFC 5780 §6.1: both MAPPED-ADDRESS (for RFC 3489 clients) and XOR-MAPPED-ADDRESS.
  const client = { address: unmapped(from.address), port: from.port };
  const origin = view.local
    ? { address: changeIp && view.other ? view.other.address : view.local.address, port: changePort && view.other ? view.other.port : view.local.port }
    : undefined;
  const response = encodeBindingAnswer(tid, { client, ...(origin ? { origin } : {}), ...(view.other ? { other: view.other } : {}) });
  return { response, changeIp, changePort };
}

/** The Binding success response for a Binding request from `from`, or null for anything else. */
export function bindingResponse(req: Buffer, from: Remote): Buffer | null {
  return answerStun(req, from)?.response ?? null;
}

// Responses are about twice the size of the smallest request: cap each source address so the
// server cannot be used to flood someone with spoofed-source requests. CHANGE-REQUEST answers go
// to the same source as any other answer (RESPONSE-PORT is not supported), so they add nothing.
const MAX_PER_SOURCE_PER_SECOND = 100;

export interface StunResponder {
  ports: [number, number];
  /** [primary, alternate] when listening on two addresses. */
  hosts: [string] | [string, string];
  close(): Promise<void>;
}

export interface StunResponderOptions {
  host: string;
  port: number;
  /** A second IPv4 address of this machine: enables CHANGE-REQUEST (RFC 5780). */
  altHost?: string;
  log: Logger;
}

/** Checks the address pair before anything binds, so a bad flag fails with a sentence. */
export function checkStunHosts(host: string, altHost: string | undefined): void {
  if (altHost === undefined) return;
  if (!isIPv4(altHost)) throw new Error(`the alternate STUN address must be an IPv4 address, not ${JSON.stringify(altHost.slice(0, 60))}`);
  if (!isIPv4(host) || host === '0.0.0.0') {
    throw new Error('with an alternate STUN address, the primary STUN address must be a specific IPv4 address too (--stun-ip or --listen)');
  }
  if (host === altHost) throw new Error('the alternate STUN address must differ from the primary one');
}

export async function startStunResponder(opts: StunResponderOptions): Promise<StunResponder> {
  checkStunHosts(opts.host, opts.altHost);
  const family = opts.host.includes(':') ? 'udp6' : 'udp4';
  const hosts: string[] = opts.altHost ? [opts.host, opts.altHost] : [opts.host];
  const specific = opts.host !== '0.0.0.0' && opts.host !== '::';
  let counts = new Map<string, number>();
  const resetTimer = setInterval(() => (counts = new Map()), 1000);
  resetTimer.unref();

  const bind = async (host: string, port: number): Promise<Socket> => {
    const sock = createSocket({ type: family, reuseAddr: false });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(port, host, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    sock.on('error', (err) => opts.log.warn('stun socket error', { err: err.message }));
    return sock;
  };
  const close = (s: Socket): Promise<void> => new Promise((resolve) => s.close(() => resolve()));

  // grid[ip][port]. Port 0 means "any": then the second port is the first plus one, which may be
  // taken (on either address); retry.
  let grid: Socket[][] | undefined;
  for (let attempt = 0; !grid; attempt++) {
    const first = await bind(hosts[0]!, opts.port);
    const p = first.address().port;
    const opened: Socket[] = [first];
    try {
      if (p >= 65535) throw Object.assign(new Error('no port above 65535'), { code: 'EADDRINUSE' });
      const row0 = [first, await bind(hosts[0]!, p + 1).then((s) => (opened.push(s), s))];
      const rows = [row0];
      if (hosts[1]) rows.push([await bind(hosts[1], p).then((s) => (opened.push(s), s)), await bind(hosts[1], p + 1).then((s) => (opened.push(s), s))]);
      grid = rows;
    } catch (err) {
      await Promise.all(opened.map(close));
      if (opts.port !== 0 || attempt >= 20) {
        clearInterval(resetTimer);
        throw new Error(`cannot open the STUN ports ${p}-${p + 1} on ${hosts.join(' and ')}: ${(err as Error).message}`);
      }
    }
  }
  const ports: [number, number] = [grid[0]![0]!.address().port, grid[0]![1]!.address().port];
  const all = grid.flat();
  grid.forEach((row, i) =>
    row.forEach((sock, j) => {
      const view: ResponderView = {
        local: specific ? { address: hosts[i]!, port: ports[j]! } : null,
        other: hosts.length === 2 ? { address: hosts[1 - i]!, port: ports[1 - j]! } : null,
      };
      sock.on('message', (msg, rinfo) => {
        const n = (counts.get(rinfo.address) ?? 0) + 1;
        counts.set(rinfo.address, n);
        if (n > MAX_PER_SOURCE_PER_SECOND) return;
        const a = answerStun(msg, rinfo, view);
        if (!a) return;
        const out = grid![a.changeIp ? 1 - i : i]?.[a.changePort ? 1 - j : j] ?? sock;
        out.send(a.response, rinfo.port, rinfo.address);
      });
    }),
  );
  return {
    ports,
    hosts: hosts.length === 2 ? [hosts[0]!, hosts[1]!] : [hosts[0]!],
    close: async () => {
      clearInterval(resetTimer);
      await Promise.all(all.map(close));
    },
  };
}
