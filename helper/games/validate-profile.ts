import { PROFILE_LIMITS, type GameProfile, type GamePort, type MulticastGroup, type SourceRef, type SourceKind } from './profile.js';

// Checks one profile given as plain data (a data-file entry or a custom profile from the API) and
// returns either the typed profile or every problem found, each naming its field. Hand-written
// rather than a schema library: none is a dependency here (ajv is only a transitive one), and the
// checks that matter (port ranges, multicast ranges, hostile names) need code anyway.

export type ProfileCheck = { ok: true; profile: GameProfile } | { ok: false; errors: string[] };

export interface CheckOptions {
  /** Custom profiles: sources optional (kind 'user' added), id must start with "custom-". */
  custom: boolean;
}

const ID_RE = /^[a-z0-9][a-z0-9-]*$/;
const QUERY_RE = /^[a-z0-9_-]{1,40}$/;
// C0/C1 controls, and the bidi overrides/isolates that can make a name display as something else.
const UNSAFE_CHARS = /[\p{Cc}\u2028\u2029\u202A-\u202E\u2066-\u2069\uFEFF]/u;
const TOP_KEYS = new Set(['id', 'name', 'discovery', 'gamePorts', 'query', 'executables', 'steamAppId', 'sources', 'custom']);
const SOURCE_KINDS: readonly SourceKind[] = ['source', 'docs', 'measurement', 'user'];

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
};

class Checker {
  readonly errors: string[] = [];
  fail(field: string, msg: string): void {
    if (this.errors.length < 20) this.errors.push(`${field}: ${msg}`);
  }

  port(field: string, v: unknown): number | undefined {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
      this.fail(field, `${show(v)} is not a port number (an integer 1-65535)`);
      return undefined;
    }
    return v;
  }

  text(field: string, v: unknown, max: number): string | undefined {
    if (typeof v !== 'string') return void this.fail(field, `must be a string, got ${show(v)}`);
    if (v.trim() === '') return void this.fail(field, 'must not be empty');
    if (v.length > max) return void this.fail(field, `is ${v.length} characters long; at most ${max} allowed`);
    if (UNSAFE_CHARS.test(v)) return void this.fail(field, 'contains control or bidirectional-override characters');
    return v;
  }

  list(field: string, v: unknown, required: boolean): unknown[] {
    if (v === undefined && !required) return [];
    if (!Array.isArray(v)) {
      this.fail(field, `must be a list, got ${show(v)}`);
      return [];
    }
    if (v.length > PROFILE_LIMITS.listMax) {
      this.fail(field, `has ${v.length} entries; at most ${PROFILE_LIMITS.listMax} allowed`);
      return [];
    }
    return v;
  }

  keys(field: string, o: Record<string, unknown>, allowed: readonly string[]): void {
    for (const k of Object.keys(o)) if (!allowed.includes(k)) this.fail(field ? `${field}.${k}` : k, 'unknown field (a typo?)');
  }
}

function checkExeNames(c: Checker, field: string, v: unknown, windows: boolean): string[] {
  const out: string[] = [];
  c.list(field, v, false).forEach((n, i) => {
    const f = `${field}[${i}]`;
    const s = c.text(f, n, PROFILE_LIMITS.exeNameMax);
    if (s === undefined) return;
    if (/[/\\]/.test(s)) return c.fail(f, `${show(s)} must be a file name, not a path`);
    if (windows && !/\.exe$/i.test(s)) return c.fail(f, `${show(s)} must end in .exe`);
    out.push(s);
  });
  return out;
}

function isMulticast(ip: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return false;
  const o = m.slice(1).map(Number);
  return o.every((x) => x <= 255) && o[0]! >= 224 && o[0]! <= 239;
}

export function checkProfile(raw: unknown, opts: CheckOptions): ProfileCheck {
  const c = new Checker();
  if (!isObj(raw)) return { ok: false, errors: [`profile must be an object, got ${show(raw)}`] };
  c.keys('', raw, [...TOP_KEYS]);

  const id = c.text('id', raw.id, PROFILE_LIMITS.idMax);
  if (id !== undefined) {
    if (!ID_RE.test(id)) c.fail('id', `${show(id)} must be lower-case letters, digits and dashes`);
    else if (opts.custom && !id.startsWith('custom-')) c.fail('id', `${show(id)}: custom profile ids start with "custom-"`);
    else if (!opts.custom && id.startsWith('custom-')) c.fail('id', `${show(id)}: "custom-" is reserved for custom profiles`);
  }
  const name = c.text('name', raw.name, PROFILE_LIMITS.nameMax);

  const udpBroadcastPorts: number[] = [];
  const multicastGroups: MulticastGroup[] = [];
  if (!isObj(raw.discovery)) c.fail('discovery', 'must be an object with udpBroadcastPorts and multicastGroups');
  else {
    c.keys('discovery', raw.discovery, ['udpBroadcastPorts', 'multicastGroups']);
    c.list('discovery.udpBroadcastPorts', raw.discovery.udpBroadcastPorts, true).forEach((p, i) => {
      const port = c.port(`discovery.udpBroadcastPorts[${i}]`, p);
      if (port !== undefined && !udpBroadcastPorts.includes(port)) udpBroadcastPorts.push(port);
    });
    c.list('discovery.multicastGroups', raw.discovery.multicastGroups, true).forEach((g, i) => {
      const f = `discovery.multicastGroups[${i}]`;
      if (!isObj(g)) return c.fail(f, 'must be an object {group, port}');
      c.keys(f, g, ['group', 'port']);
      const port = c.port(`${f}.port`, g.port);
      if (typeof g.group !== 'string' || !isMulticast(g.group)) return c.fail(`${f}.group`, `${show(g.group)} is not an IPv4 multicast address (224.0.0.0-239.255.255.255)`);
      if (port !== undefined) multicastGroups.push({ group: g.group, port });
    });
  }

  const gamePorts: GamePort[] = [];
  let inRanges = 0;
  c.list('gamePorts', raw.gamePorts, true).forEach((p, i) => {
    const f = `gamePorts[${i}]`;
    if (!isObj(p)) return c.fail(f, 'must be an object {port, last?, proto}');
    c.keys(f, p, ['port', 'last', 'proto']);
    const port = c.port(`${f}.port`, p.port);
    const last = p.last === undefined ? port : c.port(`${f}.last`, p.last);
    if (p.proto !== 'udp' && p.proto !== 'tcp') return c.fail(`${f}.proto`, `${show(p.proto)} must be "udp" or "tcp"`);
    if (port === undefined || last === undefined) return;
    if (last < port) return c.fail(`${f}.last`, `range ${port}-${last} ends before it starts`);
    inRanges += last - port + 1;
    gamePorts.push(last === port ? { port, proto: p.proto } : { port, last, proto: p.proto });
  });
  if (inRanges > PROFILE_LIMITS.portsInRangesMax) c.fail('gamePorts', `covers ${inRanges} ports; at most ${PROFILE_LIMITS.portsInRangesMax} allowed`);

  let query: GameProfile['query'];
  if (raw.query !== undefined) {
    if (!isObj(raw.query)) c.fail('query', 'must be an object {protocol, port}');
    else {
      c.keys('query', raw.query, ['protocol', 'port']);
      const port = c.port('query.port', raw.query.port);
      const protocol = raw.query.protocol;
      if (typeof protocol !== 'string' || !QUERY_RE.test(protocol)) c.fail('query.protocol', `${show(protocol)} must be a gamedig game type id (a-z, 0-9, _ and -)`);
      else if (port !== undefined) query = { protocol, port };
    }
  }

  const executables: GameProfile['executables'] = { windows: [], linux: [], wine: [] };
  if (!isObj(raw.executables)) c.fail('executables', 'must be an object {windows, linux, wine?}');
  else {
    const e = raw.executables;
    c.keys('executables', e, ['windows', 'linux', 'wine', 'cmdlineContains']);
    executables.windows = checkExeNames(c, 'executables.windows', e.windows, true);
    executables.linux = checkExeNames(c, 'executables.linux', e.linux, false);
    executables.wine = e.wine === undefined ? [...executables.windows] : checkExeNames(c, 'executables.wine', e.wine, true);
    if (e.cmdlineContains !== undefined) {
      const hints: string[] = [];
      c.list('executables.cmdlineContains', e.cmdlineContains, true).forEach((h, i) => {
        const s = c.text(`executables.cmdlineContains[${i}]`, h, PROFILE_LIMITS.exeNameMax);
        if (s !== undefined) hints.push(s);
      });
      executables.cmdlineContains = hints;
    }
    if (executables.windows.length + executables.linux.length + executables.wine.length === 0 && c.errors.length === 0) {
      c.fail('executables', 'needs at least one executable name, or the game can never be detected');
    }
  }

  let steamAppId: number | undefined;
  if (raw.steamAppId !== undefined) {
    if (typeof raw.steamAppId !== 'number' || !Number.isInteger(raw.steamAppId) || raw.steamAppId < 1 || raw.steamAppId > 2 ** 31) {
      c.fail('steamAppId', `${show(raw.steamAppId)} is not a Steam app id (a positive integer)`);
    } else steamAppId = raw.steamAppId;
  }

  const sources: SourceRef[] = [];
  c.list('sources', raw.sources, !opts.custom).forEach((s, i) => {
    const f = `sources[${i}]`;
    if (!isObj(s)) return c.fail(f, 'must be an object {kind, ref}');
    c.keys(f, s, ['kind', 'ref']);
    const ref = c.text(`${f}.ref`, s.ref, PROFILE_LIMITS.refMax);
    if (!SOURCE_KINDS.includes(s.kind as SourceKind)) return c.fail(`${f}.kind`, `${show(s.kind)} must be one of ${SOURCE_KINDS.join(', ')}`);
    if (!opts.custom && s.kind === 'user') return c.fail(`${f}.kind`, '"user" is only for custom profiles');
    if (ref !== undefined) sources.push({ kind: s.kind as SourceKind, ref });
  });
  if (!opts.custom && Array.isArray(raw.sources) && raw.sources.length === 0) c.fail('sources', 'a built-in profile must say where its facts come from');
  if (opts.custom && sources.length === 0) sources.push({ kind: 'user', ref: 'entered by the user' });

  if (c.errors.length > 0 || id === undefined || name === undefined) return { ok: false, errors: c.errors.length > 0 ? c.errors : ['id and name are required'] };
  const profile: GameProfile = {
    id,
    name: name.trim(),
    discovery: { udpBroadcastPorts, multicastGroups },
    gamePorts,
    executables,
    sources,
    custom: opts.custom,
  };
  if (query) profile.query = query;
  if (steamAppId !== undefined) profile.steamAppId = steamAppId;
  return { ok: true, profile };
}
