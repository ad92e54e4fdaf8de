import * as grpc from '@grpc/grpc-js';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from '../core/log.js';
import { authorize, encodeForwarded, type Decision } from '../authz/authz.js';
import { bearerToken, tokenMatches } from '../core/token.js';
import { closeServer, listenOn } from './listen.js';
import { httpCaller, type LocalDoor } from '../authz/caller.js';
import { handleGrpcWeb } from './bridge.js';
import { isGrpcWebPath } from './grpc-web-frames.js';
import { acceptedHosts, admit, oneHeader } from './guard.js';
import { sendJson, sendPlain } from './respond.js';
import { serveStatic } from './static.js';
import { serveMetrics, type MetricsEndpoint } from './metrics-endpoint.js';

// The helper's HTTP port: the PWA's files, the session endpoint that hands the same-origin app its
// token, and the gRPC-Web bridge, all behind the Host/Origin guards.

export interface HttpServerOptions {
  host: string;              // bind address, '127.0.0.1' by default in the helper
  port: number;              // 8666 in production; 0 in tests (ephemeral)
  grpcTarget: string;        // 'host:port' of the helper's native grpc-js server (insecure, loopback)
  staticDir: string | null;  // directory with the built PWA (index.html, assets, sw.js, manifest); null = none
  allowedHosts: string[];    // extra Host header values to accept besides localhost/127.0.0.1/[::1] with the bound port
  token: string;             // per-install API token
  log: Logger;
  maxMessageBytes?: number;  // max gRPC-Web request body; default 1 MiB
  /** Who is calling (helper/authz): when given, /api/session and the bridge name the kernel's caller. */
  door?: LocalDoor;
  metrics?: MetricsEndpoint; // GET /metrics (Prometheus), when given
}

export interface HttpServerHandle { port: number; close(): Promise<void>; }

const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;


export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServerHandle> {
  const log = opts.log.child({ component: 'http' });
  const maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  // One channel for every call: grpc-js multiplexes them over one HTTP/2 connection.
  const client = new grpc.Client(opts.grpcTarget, grpc.credentials.createInsecure());
  let accepted: string[] = [];

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const admitted = admit(req, res, accepted, 'http', log);
    if (!admitted) return;
    const { method, pathname } = admitted;

    const door = opts.door;
    const who = async () => (door ? httpCaller(door, req.socket, oneHeader(req.headers.authorization)) : undefined);
    if (pathname === '/api/session') {
      const caller = await who();
      if (method !== 'GET' && method !== 'HEAD') {
        sendPlain(res, 405, 'Method not allowed.', { allow: 'GET, HEAD' });
        return;
      }
      // The token goes only to a caller who would have control with it (root, the operator).
      const may = door && caller ? authorize({ ...caller, tokenOk: true }, 'control', door.policy) : { ok: true as const };
      if (!may.ok) {
        log.info('session refused', { uid: caller?.uid });
        sendPlain(res, 403, `No session for you: ${may.message}.`);
        return;
      }
      sendJson(res, 200, { token: opts.token });
      return;
    }
    if (pathname === '/metrics' && opts.metrics) {
      const caller = await who();
      // Without a door (some tests) only the install token opens it.
      const may: Decision = door && caller ? authorize(caller, 'read', door.policy) : tokenMatches(opts.token, bearerToken(oneHeader(req.headers.authorization))) ? { ok: true } : { ok: false, reason: 'unauthenticated', message: 'send "Authorization: Bearer <install token>"' };
      await serveMetrics(req, res, opts.metrics, may);
      return;
    }
    if (pathname === '/api' || pathname.startsWith('/api/')) {
      sendPlain(res, 404, 'Not found.');
      return;
    }
    if (method === 'POST') {
      if (!isGrpcWebPath(pathname)) {
        sendPlain(res, 404, 'Not found.');
        return;
      }
      const caller = await who();
      await handleGrpcWeb(req, res, pathname, { client, maxMessageBytes, log }, caller && encodeForwarded(caller));
      return;
    }
    if (method === 'GET' || method === 'HEAD') {
      if (opts.staticDir === null) {
        sendPlain(res, 404, 'Not found.');
        return;
      }
      await serveStatic(req, res, opts.staticDir, pathname, log);
      return;
    }
    sendPlain(res, 405, 'Method not allowed.', { allow: 'GET, HEAD, POST' });
  };

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      log.debug('request failed', { err: err instanceof Error ? err.message : String(err), path: req.url?.slice(0, 200) });
      if (!res.headersSent) sendPlain(res, 500, 'Internal error.');
      else res.destroy();
    });
  });
  const port = await listenOn(server, opts.port, opts.host, () => client.close());
  server.on('error', (err) => log.warn('http server error', { err }));
  accepted = acceptedHosts(port, opts.allowedHosts);
  log.info('http listening', { host: opts.host, port, staticDir: opts.staticDir });

  let closing: Promise<void> | null = null;
  return {
    port,
    close(): Promise<void> {
      closing ??= closeServer(server, () => client.close());
      return closing;
    },
  };
}
