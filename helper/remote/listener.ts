import * as grpc from '@grpc/grpc-js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { authorize, encodeForwarded, type Identity, type Policy } from '../authz/authz.js';
import type { Logger } from '../core/log.js';
import { bearerToken } from '../core/token.js';
import { handleGrpcWeb, refuseGrpcWeb } from '../web/bridge.js';
import { isGrpcWebPath } from '../web/grpc-web-frames.js';
import { status as Code } from '@grpc/grpc-js';
import { admit, oneHeader } from '../web/guard.js';
import { closeServer, listenOn } from '../web/listen.js';
import { serveMetrics, type MetricsEndpoint } from '../web/metrics-endpoint.js';
import { sendPlain } from '../web/respond.js';
import { serveStatic } from '../web/static.js';
import type { AttemptLimiter } from './rate-limit.js';

// The phone door: HTTPS on a LAN address, serving the PWA and the gRPC-Web bridge to paired
// devices. Every API request carries a device token (Bearer); the listener names the device to
// the native gRPC server (FORWARDED_METADATA) and helper/authz decides what its scope allows.
// Without a token only Pair goes through, rate-limited and with a tiny body. The install token
// is never served here (no /api/session).

export const PAIR_PATH = '/lanrage.v1.RemotePairingService/Pair';
const PAIR_MAX_BYTES = 512;
const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

export interface RemoteListenerOptions {
  address: string;
  port: number;
  cert: string;
  key: string;
  grpcTarget: string;
  staticDir: string | null;
  policy: Policy;
  /** The paired device a bearer token belongs to, or undefined. */
  deviceFor(token: string): { deviceId: string; scope: 'view' | 'control' } | undefined;
  limiter: AttemptLimiter;
  metrics?: MetricsEndpoint | undefined;
  log: Logger;
}

export interface RemoteListener {
  port: number;
  /** Ends every open request of the device at once (after its token was revoked). */
  endDevice(deviceId: string): number;
  close(): Promise<void>;
}


export function hostPort(address: string, port: number): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`;
}

export async function startRemoteListener(opts: RemoteListenerOptions): Promise<RemoteListener> {
  const log = opts.log.child({ component: 'remote' });
  const client = new grpc.Client(opts.grpcTarget, grpc.credentials.createInsecure());
  const live = new Map<string, Set<ServerResponse>>();
  let accepted: string[] = [];

  const track = (deviceId: string, res: ServerResponse): void => {
    let set = live.get(deviceId);
    if (!set) live.set(deviceId, (set = new Set()));
    set.add(res);
    res.on('close', () => {
      set.delete(res);
      if (set.size === 0 && live.get(deviceId) === set) live.delete(deviceId);
    });
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const admitted = admit(req, res, accepted, 'https');
    if (!admitted) return;
    const { method, pathname } = admitted;
    const presented = bearerToken(oneHeader(req.headers.authorization));
    const device = presented === undefined ? undefined : opts.deviceFor(presented);
    const id: Identity = device ? { kind: 'remote', scope: device.scope, deviceId: device.deviceId } : { kind: 'pairing' };
    if (pathname === '/metrics' && opts.metrics) {
      await serveMetrics(req, res, opts.metrics, authorize(id, 'read', opts.policy));
      return;
    }
    if (method === 'POST' && isGrpcWebPath(pathname)) {
      if (presented !== undefined && !device) {
        refuseGrpcWeb(req, res, Code.UNAUTHENTICATED, 'this device token is not valid (revoked, or from another helper): pair again by scanning the QR code in LANrage on the desktop');
        return;
      }
      if (!device && pathname !== PAIR_PATH) {
        refuseGrpcWeb(req, res, Code.UNAUTHENTICATED, 'this device is not paired: scan the pairing QR code shown in LANrage on the desktop (Settings, Phone)');
        return;
      }
      if (!device && !opts.limiter.take(req.socket.remoteAddress ?? '?')) {
        log.info('pairing attempt refused: too many', { from: req.socket.remoteAddress });
        refuseGrpcWeb(req, res, Code.RESOURCE_EXHAUSTED, 'too many pairing attempts: wait a minute and scan a fresh QR code');
        return;
      }
      if (device) track(device.deviceId, res);
      // The device token means nothing to the native server; the forwarded identity says it all.
      delete req.headers.authorization;
      await handleGrpcWeb(req, res, pathname, { client, maxMessageBytes: device ? DEFAULT_MAX_MESSAGE_BYTES : PAIR_MAX_BYTES, log }, encodeForwarded(id));
      return;
    }
    if ((method === 'GET' || method === 'HEAD') && opts.staticDir !== null && !pathname.startsWith('/api')) {
      await serveStatic(req, res, opts.staticDir, pathname, log);
      return;
    }
    sendPlain(res, 404, 'Not found.');
  };

  const server = createServer({ cert: opts.cert, key: opts.key, minVersion: 'TLSv1.2' }, (req, res) => {
    route(req, res).catch((err: unknown) => {
      log.debug('request failed', { err: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent) sendPlain(res, 500, 'Internal error.');
      else res.destroy();
    });
  });
  // A phone that gives up on the certificate warning leaves a failed handshake: not our error.
  server.on('tlsClientError', (err) => log.debug('tls handshake failed', { err: err.message }));
  const port = await listenOn(server, opts.port, opts.address, () => client.close());
  server.on('error', (err) => log.warn('remote listener error', { err }));
  accepted = [hostPort(opts.address, port).toLowerCase()];
  log.info('remote access listening', { address: opts.address, port });

  return {
    port,
    endDevice(deviceId) {
      const set = live.get(deviceId);
      if (!set) return 0;
      const n = set.size;
      for (const res of [...set]) res.destroy();
      live.delete(deviceId);
      return n;
    },
    close: () => closeServer(server, () => client.close()),
  };
}
