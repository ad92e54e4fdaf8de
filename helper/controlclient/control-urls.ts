import { invalidArgument } from '../core/api-error.js';
import { normalizeControlUrl } from './invite.js';

// One control service may run as several instances on one database (README: "A control plane
// that scales out"). Wherever a helper is told a control URL — the control_server_url setting,
// --control-url, an invite link — it may be told the instances as a comma-separated list: the
// first is used first, the others when the connection to it breaks.

/** At most this many URLs in a list: a party's service, not a directory of servers. */
export const MAX_CONTROL_URLS = 4;

/** "url[,url...]" → normalised origins, first first; throws with what to fix. */
export function parseControlUrls(raw: string): string[] {
  const parts = raw.split(',').map((s) => s.trim());
  if (parts.some((p) => p === '')) throw invalidArgument('the control server list has an empty entry: write URLs separated by single commas');
  if (parts.length > MAX_CONTROL_URLS) throw invalidArgument(`at most ${MAX_CONTROL_URLS} control server URLs (instances of one control service)`);
  const urls = parts.map((p) => normalizeControlUrl(p));
  if (new Set(urls).size !== urls.length) throw invalidArgument('the control server list names one URL twice');
  return urls;
}

export const formatControlUrls = (urls: readonly string[]): string => urls.join(',');
