// What a control server URL and a list of them may look like, with no Node or gRPC imports: the
// helper (control-urls.ts and invite.ts, which turn a problem into INVALID_ARGUMENT) and the PWA's
// settings form (which words it for the field) refuse the same things.
//
// One control service may run as several instances on one database (README: "A control plane
// that scales out"). Wherever a helper is told a control URL — the control_server_url setting,
// --control-url, an invite link — it may be told the instances as a comma-separated list: the
// first is used first, the others when the connection to it breaks.

/** At most this many URLs in a list: a party's service, not a directory of servers. */
export const MAX_CONTROL_URLS = 4;
export const MAX_CONTROL_URL_LENGTH = 256;

export type ControlUrlProblem = 'too-long' | 'not-a-url' | 'scheme' | 'no-host' | 'credentials' | 'not-an-origin';

/** "http(s)://host[:port]" with nothing else → its origin; else what is wrong with it. */
export function checkControlUrl(raw: string): { ok: true; origin: string } | { ok: false; problem: ControlUrlProblem } {
  if (raw.length > MAX_CONTROL_URL_LENGTH) return { ok: false, problem: 'too-long' };
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return { ok: false, problem: 'not-a-url' };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { ok: false, problem: 'scheme' };
  if (u.hostname === '') return { ok: false, problem: 'no-host' };
  if (u.username !== '' || u.password !== '') return { ok: false, problem: 'credentials' };
  if ((u.pathname !== '/' && u.pathname !== '') || u.search !== '' || u.hash !== '') return { ok: false, problem: 'not-an-origin' };
  return { ok: true, origin: u.origin };
}

/** The entries of "url[,url...]", trimmed (an empty entry stays, for controlListProblem to refuse). */
export function splitControlUrls(text: string): string[] {
  return text.split(',').map((s) => s.trim());
}

/** What is wrong with a list's shape (before its URLs are looked at), or null. */
export function controlListProblem(entries: readonly string[]): 'empty-entry' | 'too-many' | null {
  if (entries.some((e) => e === '')) return 'empty-entry';
  if (entries.length > MAX_CONTROL_URLS) return 'too-many';
  return null;
}
