// Who may talk to the helper's HTTP port. The helper is privileged and listens on loopback, so the
// threats are web pages in the user's own browser: DNS rebinding (a foreign name resolving to
// 127.0.0.1 — caught by the Host check) and cross-origin requests from other sites or from other
// local ports (caught by the Origin and Sec-Fetch-Site checks). Pure decisions, and admit(): the
// prologue both HTTP doors run before anything else (server.ts on loopback, remote/listener.ts
// for phones).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../core/log.js';
import { sendPlain } from './respond.js';

export type GuardDecision = { ok: true } | { ok: false; status: 403 | 421; reason: string };

const OK: GuardDecision = { ok: true };

// Host values we answer to, lower-cased. Browsers omit the port only when it is the default one.
export function acceptedHosts(port: number, allowedHosts: readonly string[]): string[] {
  const names = ['localhost', '127.0.0.1', '[::1]'];
  const hosts = names.map((n) => `${n}:${port}`);
  if (port === 80) hosts.push(...names);
  for (const h of allowedHosts) {
    const v = h.trim().toLowerCase();
    if (v !== '' && !hosts.includes(v)) hosts.push(v);
  }
  return hosts;
}

export function checkHost(host: string | undefined, accepted: readonly string[]): GuardDecision {
  if (host !== undefined && accepted.includes(host.trim().toLowerCase())) return OK;
  return {
    ok: false,
    status: 421,
    reason: `This LANrage helper answers only to the host names ${accepted.join(', ')}; open it through one of them.`,
  };
}

// Only our own origin: an Origin header that is present must be exactly <scheme>://<Host> (https
// on the phone listener, http on loopback). 'null' (sandboxed frames, file: pages, some
// redirects) is foreign too.
export function checkOrigin(origin: string | undefined, host: string, scheme: 'http' | 'https' = 'http'): GuardDecision {
  if (origin === undefined) return OK;
  if (origin.trim().toLowerCase() === `${scheme}://${host.trim().toLowerCase()}`) return OK;
  return { ok: false, status: 403, reason: 'Cross-origin requests are not allowed; use the LANrage app served by this helper.' };
}

// Sec-Fetch-Site backs up the Origin check on the API. 'same-site' is not enough: every port on
// localhost is the same site, so a dev server on localhost:3000 would pass. 'none' is a request the
// user made directly (address bar, bookmark).
export function checkFetchSite(secFetchSite: string | undefined, sensitive: boolean): GuardDecision {
  if (!sensitive || secFetchSite === undefined) return OK;
  const v = secFetchSite.trim().toLowerCase();
  if (v === 'same-origin' || v === 'none') return OK;
  return { ok: false, status: 403, reason: `Requests from other sites are not allowed (Sec-Fetch-Site: ${v === '' ? 'empty' : v.slice(0, 32)}).` };
}

export interface GuardInput {
  host: string | undefined;
  origin: string | undefined;
  secFetchSite: string | undefined;
  // True for the API: /api/* and anything that is not a plain GET/HEAD.
  sensitive: boolean;
}

export function guardRequest(input: GuardInput, accepted: readonly string[], scheme: 'http' | 'https' = 'http'): GuardDecision {
  const host = checkHost(input.host, accepted);
  if (!host.ok || input.host === undefined) return host;
  const origin = checkOrigin(input.origin, input.host, scheme);
  if (!origin.ok) return origin;
  return checkFetchSite(input.secFetchSite, input.sensitive);
}

// Which requests count as API calls for the Sec-Fetch-Site check. Navigations (GET/HEAD of the
// app's pages) stay open so that a link to the app from elsewhere still works.
export function isSensitive(method: string, pathname: string): boolean {
  return pathname === '/api' || pathname.startsWith('/api/') || (method !== 'GET' && method !== 'HEAD');
}

/** A header's first value (node gives repeated headers as arrays). */
export const oneHeader = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/**
 * Lets a request in, or answers it (400 for a request target that is not a path, else the guard's
 * refusal) and returns null. `log` hears of refusals at debug level.
 */
export function admit(req: IncomingMessage, res: ServerResponse, accepted: readonly string[], scheme: 'http' | 'https' = 'http', log?: Logger): { method: string; pathname: string } | null {
  const method = req.method ?? '';
  const url = req.url ?? '';
  // Origin-form targets only; absolute-form and '*' have no business here.
  if (!url.startsWith('/')) {
    sendPlain(res, 400, 'Bad request target.');
    return null;
  }
  const pathname = url.split('?', 1)[0] ?? '/';
  const host = oneHeader(req.headers.host);
  const origin = oneHeader(req.headers.origin);
  const verdict = guardRequest({ host, origin, secFetchSite: oneHeader(req.headers['sec-fetch-site']), sensitive: isSensitive(method, pathname) }, accepted, scheme);
  if (!verdict.ok) {
    log?.debug('request refused', { status: verdict.status, method, path: pathname.slice(0, 200), host: host?.slice(0, 100), origin: origin?.slice(0, 100) });
    sendPlain(res, verdict.status, verdict.reason);
    return null;
  }
  return { method, pathname };
}
