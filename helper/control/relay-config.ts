import { readFileSync } from 'node:fs';
import { flag, type ParsedArgs } from '../core/args.js';
import { parseCandidate } from './validate.js';
import { DEFAULT_TURN_TTL_SECONDS, MAX_TURN_TTL_SECONDS, checkTurnSecret } from './turn-credentials.js';

// The relays a control server hands out (`--relay`, `--turn-secret-file`, `--turn-ttl`,
// `--turn-realm`), parsed and checked before anything listens: a typo must stop the server at
// start-up, not surface as 401s from the relay hours later. Pure apart from reading the secret
// file, which goes through an injectable reader.

export type RelayTransportName = 'udp' | 'tcp';

export interface RelaySpec {
  /** IPv4 literal: helpers connect to exactly this address (they resolve no names for relays). */
  host: string;
  port: number;
  transports: RelayTransportName[];
}

export interface RelayConfig {
  relays: RelaySpec[];
  /** coturn's static-auth-secret; never logged, never sent. */
  secret: string;
  ttlSeconds: number;
  realm: string;
}

export const DEFAULT_TURN_REALM = 'lanrage';
export const MAX_RELAYS = 8;
const TRANSPORTS: readonly RelayTransportName[] = ['udp', 'tcp'];
// A DNS-name-like realm: what coturn's `realm=` takes and what a log line shows without quoting.
const REALM_RE = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,62}[A-Za-z0-9])?$/;
const MAX_SECRET_FILE_BYTES = 4096;

/** "HOST:PORT[/udp,tcp]" with HOST an IPv4 literal; transports default to udp,tcp. */
export function parseRelaySpec(raw: string): RelaySpec {
  const bad = (why: string): Error => new Error(`--relay ${JSON.stringify(raw.slice(0, 80))}: ${why} (expected IPv4:PORT or IPv4:PORT/udp,tcp)`);
  if (raw.length > 80) throw bad('too long');
  const slash = raw.indexOf('/');
  const addr = slash === -1 ? raw : raw.slice(0, slash);
  let transports: RelayTransportName[] = [...TRANSPORTS];
  if (slash !== -1) {
    const names = raw.slice(slash + 1).split(',');
    const set = new Set<RelayTransportName>();
    for (const n of names) {
      const t = n.trim().toLowerCase();
      if (!(TRANSPORTS as readonly string[]).includes(t)) throw bad(`unknown transport ${JSON.stringify(n)}`);
      set.add(t as RelayTransportName);
    }
    transports = TRANSPORTS.filter((t) => set.has(t));
  }
  if (!/^\d{1,3}(?:\.\d{1,3}){3}:\d{1,5}$/.test(addr)) {
    throw bad(/^\d{1,3}(?:\.\d{1,3}){3}$/.test(addr) ? 'the port is missing' : 'the host must be an IPv4 address literal and the port 1-65535');
  }
  const c = parseCandidate(addr);
  if (typeof c === 'string') throw bad(c);
  if (c.family !== 4) throw bad('the host must be an IPv4 address');
  return { host: c.address, port: c.port, transports };
}

export function checkTurnTtl(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_TURN_TTL_SECONDS;
  const n = Number(raw);
  if (!/^\d{1,7}$/.test(raw) || n < 1 || n > MAX_TURN_TTL_SECONDS) throw new Error(`--turn-ttl must be 1-${MAX_TURN_TTL_SECONDS} seconds, not ${JSON.stringify(raw.slice(0, 20))}`);
  return n;
}

export function checkRealm(raw: string | undefined): string {
  if (raw === undefined) return DEFAULT_TURN_REALM;
  if (!REALM_RE.test(raw)) throw new Error(`--turn-realm must be 1-64 characters of letters, digits, . and - (like a domain name), not ${JSON.stringify(raw.slice(0, 70))}`);
  return raw;
}

export interface RelayFlags {
  relay: readonly string[];
  turnSecretFile?: string | undefined;
  turnTtl?: string | undefined;
  turnRealm?: string | undefined;
}

/** The relay configuration, or undefined when no --relay is given. Throws with a message for the operator. */
export function relayConfigFromFlags(f: RelayFlags, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): RelayConfig | undefined {
  const ttlSeconds = checkTurnTtl(f.turnTtl);
  const realm = checkRealm(f.turnRealm);
  if (f.relay.length === 0) {
    if (f.turnSecretFile !== undefined) throw new Error('--turn-secret-file is set but no --relay: say which relay the secret is for (--relay IPv4:PORT)');
    return undefined;
  }
  if (f.relay.length > MAX_RELAYS) throw new Error(`at most ${MAX_RELAYS} --relay flags`);
  const relays: RelaySpec[] = [];
  for (const raw of f.relay) {
    const r = parseRelaySpec(raw);
    if (relays.some((x) => x.host === r.host && x.port === r.port)) throw new Error(`--relay ${r.host}:${r.port} is given twice`);
    relays.push(r);
  }
  if (f.turnSecretFile === undefined) {
    throw new Error('--relay needs --turn-secret-file FILE: the file holding the relay\'s static-auth-secret (coturn use-auth-secret), to mint credentials with');
  }
  let text: string;
  try {
    text = readFile(f.turnSecretFile);
  } catch (err) {
    throw new Error(`--turn-secret-file ${f.turnSecretFile}: cannot read it: ${(err as Error).message}`);
  }
  if (text.length > MAX_SECRET_FILE_BYTES) throw new Error(`--turn-secret-file ${f.turnSecretFile}: too large for a secret`);
  const secret = text.trim();
  try {
    checkTurnSecret(secret);
  } catch (err) {
    throw new Error(`--turn-secret-file ${f.turnSecretFile}: ${(err as Error).message}`);
  }
  return { relays, secret, ttlSeconds, realm };
}

export function relayConfigFromArgs(args: ParsedArgs, readFile?: (path: string) => string): RelayConfig | undefined {
  return relayConfigFromFlags(
    { relay: args.flags.get('relay') ?? [], turnSecretFile: flag(args, 'turn-secret-file'), turnTtl: flag(args, 'turn-ttl'), turnRealm: flag(args, 'turn-realm') },
    readFile,
  );
}

/** For logs: where the relays are, never the secret. */
export const describeRelays = (c: RelayConfig): string[] => c.relays.map((r) => `${r.host}:${r.port}/${r.transports.join(',')}`);
