import { invalidArgument } from '../core/api-error.js';
import { INVITE_SECRET_RE, PARTY_ID_RE } from '../control/ids.js';
import { checkControlUrl, MAX_CONTROL_URL_LENGTH } from './control-url-shape.js';

// Invite links: lanrage://join?c=<control url>&p=<party id>&s=<secret>[&a=<url>,<url>]. They
// arrive from chat messages and QR codes, so parsing is strict: exactly these parameters, each
// once, each in its exact format, and nothing else. `a` (optional) names other instances of the
// same control service (one database), tried when the connection to `c` breaks.

const PREFIX = 'lanrage://join?';
const MAX_LINK = 1024;
/** Alternates an invite may carry besides c (four instances in all, like control-urls.ts). */
const MAX_ALTERNATES = 3;

export interface InviteLink {
  controlUrl: string;
  partyId: string;
  secret: string;
  /** Other instances of the same control service (may be empty). */
  fallbackUrls: string[];
}

/** "http(s)://host[:port]" with nothing else, normalised to its origin; throws otherwise. */
export function normalizeControlUrl(raw: string): string {
  const r = checkControlUrl(raw);
  if (r.ok) return r.origin;
  switch (r.problem) {
    case 'too-long':
      throw invalidArgument(`the control server URL is longer than ${MAX_CONTROL_URL_LENGTH} characters`);
    case 'not-a-url':
      throw invalidArgument(`the control server URL ${JSON.stringify(raw.slice(0, 80))} is not a URL`);
    case 'scheme':
      throw invalidArgument('the control server URL must start with http:// or https://');
    default:
      throw invalidArgument('the control server URL must be http(s)://host[:port] with no user, path, query or fragment');
  }
}

export function formatInviteLink(controlUrl: string, partyId: string, secret: string, fallbackUrls: readonly string[] = []): string {
  if (!PARTY_ID_RE.test(partyId)) throw invalidArgument('not a party id');
  if (!INVITE_SECRET_RE.test(secret)) throw invalidArgument('not an invite secret');
  const c = normalizeControlUrl(controlUrl);
  const alternates = [...new Set(fallbackUrls.map((u) => normalizeControlUrl(u)))].filter((u) => u !== c).slice(0, MAX_ALTERNATES);
  const a = alternates.length > 0 ? `&a=${encodeURIComponent(alternates.join(','))}` : '';
  return `${PREFIX}c=${encodeURIComponent(c)}&p=${partyId}&s=${secret}${a}`;
}

function parseAlternates(raw: string | undefined, primary: string): string[] {
  if (raw === undefined) return [];
  const parts = raw.split(',');
  if (parts.length > MAX_ALTERNATES) throw new Error(`at most ${MAX_ALTERNATES} other control instances`);
  const urls = parts.map((p) => normalizeControlUrl(p));
  if (new Set([primary, ...urls]).size !== urls.length + 1) throw new Error('a control instance is named twice');
  return urls;
}

export function parseInviteLink(link: string): InviteLink {
  const text = link.trim();
  const bad = (why: string): Error => invalidArgument(`this is not a valid LANrage invite link: ${why}`);
  if (text.length > MAX_LINK) throw bad(`longer than ${MAX_LINK} characters`);
  if (!text.startsWith(PREFIX)) throw bad(`it must start with ${PREFIX}`);
  const query = text.slice(PREFIX.length);
  if (!/^[A-Za-z0-9%._~&=-]*$/.test(query)) throw bad('it contains characters an invite link never has');
  const values = new Map<string, string>();
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw bad('each parameter must be name=value');
    const name = part.slice(0, eq);
    if (name !== 'c' && name !== 'p' && name !== 's' && name !== 'a') throw bad(`unknown parameter "${name.slice(0, 16)}"`);
    if (values.has(name)) throw bad(`parameter "${name}" appears twice`);
    let value: string;
    try {
      value = decodeURIComponent(part.slice(eq + 1));
    } catch {
      throw bad(`parameter "${name}" is not properly percent-encoded`);
    }
    values.set(name, value);
  }
  const c = values.get('c');
  const p = values.get('p');
  const s = values.get('s');
  if (c === undefined || p === undefined || s === undefined) throw bad('it needs the parameters c (control server), p (party) and s (secret)');
  if (!PARTY_ID_RE.test(p)) throw bad('the party id must be 16 characters a-z, 2-7');
  if (!INVITE_SECRET_RE.test(s)) throw bad('the secret must be 43 characters of base64url');
  let controlUrl: string;
  let fallbackUrls: string[];
  try {
    controlUrl = normalizeControlUrl(c);
    fallbackUrls = parseAlternates(values.get('a'), controlUrl);
  } catch (err) {
    throw bad((err as Error).message);
  }
  return { controlUrl, partyId: p, secret: s, fallbackUrls };
}
