// GET /metrics: Prometheus' text format, for the operator or a holder of the install token. The
// one place that decides who may scrape is authorizeMetrics (the local-user identity check will
// replace its body; its call site stays).

import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { sendPlain } from './respond.js';

export interface MetricsEndpoint {
  registry: Registry;
  token: string;
}

/** True when the request carries `Authorization: Bearer <install token>`. */
export function authorizeMetrics(req: IncomingMessage, token: string): boolean {
  const h = req.headers.authorization;
  if (typeof h !== 'string' || !h.startsWith('Bearer ')) return false;
  const got = Buffer.from(h.slice(7).trim());
  const want = Buffer.from(token);
  return got.length === want.length && timingSafeEqual(got, want);
}

export async function serveMetrics(req: IncomingMessage, res: ServerResponse, ep: MetricsEndpoint): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendPlain(res, 405, 'Method not allowed.', { allow: 'GET, HEAD' });
    return;
  }
  if (!authorizeMetrics(req, ep.token)) {
    sendPlain(res, 401, 'Metrics need the install token: send "Authorization: Bearer <token>" (the token is in api-token in the state directory).', {
      'www-authenticate': 'Bearer realm="lanrage"',
    });
    return;
  }
  const body = await ep.registry.metrics();
  res.writeHead(200, { 'content-type': ep.registry.contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}
