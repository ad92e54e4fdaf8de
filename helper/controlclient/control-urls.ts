import { invalidArgument } from '../core/api-error.js';
import { controlListProblem, splitControlUrls, MAX_CONTROL_URLS } from './control-url-shape.js';
import { normalizeControlUrl } from './invite.js';

// A control URL list as the helper is told it (the rules: control-url-shape.ts, shared with the PWA).

export { MAX_CONTROL_URLS };

/** "url[,url...]" → normalised origins, first first; throws with what to fix. */
export function parseControlUrls(raw: string): string[] {
  const parts = splitControlUrls(raw);
  const problem = controlListProblem(parts);
  if (problem === 'empty-entry') throw invalidArgument('the control server list has an empty entry: write URLs separated by single commas');
  if (problem === 'too-many') throw invalidArgument(`at most ${MAX_CONTROL_URLS} control server URLs (instances of one control service)`);
  const urls = parts.map((p) => normalizeControlUrl(p));
  if (new Set(urls).size !== urls.length) throw invalidArgument('the control server list names one URL twice');
  return urls;
}

export const formatControlUrls = (urls: readonly string[]): string => urls.join(',');
