// GET /metrics: Prometheus' text format. Who may scrape is helper/authz's 'read' decision, made by
// the caller (server.ts, the phone listener): locally root and the operator (named by the kernel,
// no token needed) or a holder of the install token; on the phone listener a paired device's
// token, view or control, since the figures are what its Watch stream shows anyway.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { Decision } from '../authz/authz.js';
import { sendPlain } from './respond.js';

export interface MetricsEndpoint {
  registry: Registry;
}

export async function serveMetrics(req: IncomingMessage, res: ServerResponse, ep: MetricsEndpoint, may: Decision): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendPlain(res, 405, 'Method not allowed.', { allow: 'GET, HEAD' });
    return;
  }
  if (!may.ok) {
    const status = may.reason === 'unauthenticated' ? 401 : 403;
    sendPlain(res, status, `No metrics for you: ${may.message}.`, status === 401 ? { 'www-authenticate': 'Bearer realm="lanrage"' } : {});
    return;
  }
  const body = await ep.registry.metrics();
  res.writeHead(200, { 'content-type': ep.registry.contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}
