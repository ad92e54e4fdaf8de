import { isIPv4 } from 'node:net';
import { RelayTransport, type Relay } from '../gen/lanrage/control/v1/control.js';
import { parseCandidate } from '../control/validate.js';

// The relays the control server offers, in the helper's terms, checked like everything else the
// server sends: an address the helper would send to, credentials it would put on the wire. A bad
// entry is dropped (and reported), not allowed to break the good ones.

export interface RelayOffer {
  host: string;
  port: number;
  transports: Array<'udp' | 'tcp'>;
  username: string;
  password: string;
  realm: string;
  /** ms since epoch */
  expiresAt: number;
}

export const MAX_RELAY_OFFERS = 8;
// Bounds of what the TURN client accepts (RFC 8489: username < 513 bytes, realm < 128 characters).
const MAX_USERNAME_BYTES = 512;
const MAX_PASSWORD = 512;
const MAX_REALM = 127;

function printable(s: string): boolean {
  return !/[\x00-\x1f\x7f]/.test(s);
}

/** Throws with the reason when the relay is unusable. */
export function relayOfferFromProto(r: Relay): RelayOffer {
  if (!isIPv4(r.host)) throw new Error(`relay host ${JSON.stringify(r.host.slice(0, 64))} is not an IPv4 address`);
  if (!Number.isInteger(r.port) || r.port < 1 || r.port > 65535) throw new Error(`relay ${r.host}: port ${r.port} is out of range`);
  const c = parseCandidate(`${r.host}:${r.port}`);
  if (typeof c === 'string') throw new Error(`relay ${r.host}:${r.port}: ${c}`);
  const transports: Array<'udp' | 'tcp'> = [];
  if (r.transports.includes(RelayTransport.RELAY_TRANSPORT_UDP)) transports.push('udp');
  if (r.transports.includes(RelayTransport.RELAY_TRANSPORT_TCP)) transports.push('tcp');
  if (transports.length === 0) throw new Error(`relay ${r.host}:${r.port}: no transport this helper knows`);
  const userBytes = Buffer.byteLength(r.username);
  if (userBytes === 0 || userBytes > MAX_USERNAME_BYTES || !printable(r.username)) throw new Error(`relay ${r.host}:${r.port}: bad username`);
  if (r.password.length === 0 || r.password.length > MAX_PASSWORD || !printable(r.password)) throw new Error(`relay ${r.host}:${r.port}: bad password`);
  if (r.realm.length > MAX_REALM || !printable(r.realm)) throw new Error(`relay ${r.host}:${r.port}: bad realm`);
  const expiresAt = r.expiresAt?.getTime();
  if (expiresAt === undefined || !Number.isFinite(expiresAt) || expiresAt <= 0) throw new Error(`relay ${r.host}:${r.port}: no expiry`);
  return { host: c.address, port: c.port, transports, username: r.username, password: r.password, realm: r.realm, expiresAt };
}

/** The usable relays (at most MAX_RELAY_OFFERS, no duplicates); each dropped one is reported. */
export function relayOffersFromProto(list: readonly Relay[], onBad: (why: string) => void = () => {}): RelayOffer[] {
  const out: RelayOffer[] = [];
  for (const r of list) {
    if (out.length >= MAX_RELAY_OFFERS) {
      onBad(`more than ${MAX_RELAY_OFFERS} relays: the rest are ignored`);
      break;
    }
    try {
      const o = relayOfferFromProto(r);
      if (out.some((x) => x.host === o.host && x.port === o.port)) throw new Error(`relay ${o.host}:${o.port} listed twice`);
      out.push(o);
    } catch (err) {
      onBad((err as Error).message);
    }
  }
  return out;
}
