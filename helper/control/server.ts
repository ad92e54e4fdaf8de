import { readFileSync } from 'node:fs';
import { setMaxListeners } from 'node:events';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { Logger } from '../core/log.js';
import { wrapService } from '../api/wrap.js';
import type { Clock } from '../core/clock.js';
import { ControlPlane } from './control-plane.js';
import { describeRelays, type RelayConfig } from './relay-config.js';
import { controlDefinition, controlHandlers } from './service.js';
import { SqliteControlStore } from './sqlite-store.js';
import { PostgresControl } from './pg-control.js';
import type { ControlStore } from './store.js';
import { startStunResponder, type StunResponder } from './stun-responder.js';
import { watchLoad } from './load-log.js';
import { debugEnabled } from '../core/log.js';

export const CONTROL_MAX_MESSAGE_BYTES = 64 * 1024;

export interface ControlServerOptions {
  host: string;
  grpcPort: number;
  /** STUN answers on this port and the next one (0: any free pair). */
  stunPort: number;
  dbFile: string;
  /** postgres://… : the control store on PostgreSQL, shared with other instances (dbFile unused). */
  dbUrl?: string;
  tls?: { certFile: string; keyFile: string };
  log: Logger;
  /** The address put in stun_servers (e.g. the public IP behind a port forward); see stunHost(). */
  advertiseHost?: string;
  /** TURN relays handed to party members (GetRelays); none when undefined. */
  relays?: RelayConfig;
  /** STUN's own listening address (default: host). Must be a specific IPv4 with stunAltHost. */
  stunHost?: string;
  /** A second IPv4 address: STUN then answers RFC 5780 CHANGE-REQUEST (see stun-responder.ts). */
  stunAltHost?: string;
  /** For tests: shorter presence timers, a manual clock. */
  awayAfterMs?: number;
  dropAfterMs?: number;
  clock?: Clock;
}

export interface ControlServer {
  grpcPort: number;
  stunPorts: [number, number];
  /** [primary] or [primary, alternate]. */
  stunHosts: string[];
  close(): Promise<void>;
}

export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  const log = opts.log.child({ part: 'control' });
  // Read the TLS files first: a typo in a path should fail before anything listens.
  const credentials = opts.tls
    ? ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(opts.tls.certFile), private_key: readFileSync(opts.tls.keyFile) }], false)
    : ServerCredentials.createInsecure();
  const pgc = opts.dbUrl !== undefined ? await PostgresControl.open({ url: opts.dbUrl, log }) : undefined;
  const store: ControlStore = pgc?.store ?? SqliteControlStore.open(opts.dbFile);
  const closeStore = async (): Promise<void> => (pgc ? pgc.closeGracefully() : store.close());
  const plane = new ControlPlane({
    store,
    ...(pgc && { bus: pgc }),
    log,
    ...(opts.clock && { clock: opts.clock }),
    ...(opts.awayAfterMs !== undefined && { awayAfterMs: opts.awayAfterMs }),
    ...(opts.dropAfterMs !== undefined && { dropAfterMs: opts.dropAfterMs }),
    ...(opts.relays && { relays: opts.relays }),
  });
  const shutdown = new AbortController();
  // One listener per open Session stream: a party of more than 10 is normal, not a leak.
  setMaxListeners(0, shutdown.signal);
  let stun: StunResponder | undefined;
  const server = new Server({
    'grpc.max_receive_message_length': CONTROL_MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': 4 * 1024 * 1024,
    // Pings find helpers that vanished without closing their connection, so presence is right.
    'grpc.keepalive_time_ms': 15_000,
    'grpc.keepalive_timeout_ms': 10_000,
  });
  try {
    const stunBind = opts.stunHost ?? opts.host;
    stun = await startStunResponder({ host: stunBind, port: opts.stunPort, log, ...(opts.stunAltHost && { altHost: opts.stunAltHost }) });
    // With two STUN addresses the sockets sit on specific IPs: name the primary one, not whatever
    // address a client happened to use for gRPC (it may not be a STUN address at all).
    const advertiseHost = opts.advertiseHost ?? (opts.stunAltHost || opts.stunHost ? stunBind : undefined);
    // Calls by method feed the debug load records only.
    const calls = debugEnabled() ? new Map<string, number>() : undefined;
    const { definition, implementation } = wrapService(
      controlDefinition,
      controlHandlers({ plane, log, ...(calls && { calls }), ...(pgc && { durable: () => pgc.durable() }), stunPorts: stun.ports, bindHost: opts.host, shutdown: shutdown.signal, ...(advertiseHost && { advertiseHost }) }),
      // Authentication is per device (session tokens), done by the handlers, not the install token.
      { token: '', log, mutating: new Set() },
    );
    server.addService(definition, implementation);
    const grpcPort = await new Promise<number>((resolve, reject) => {
      const target = opts.host.includes(':') ? `[${opts.host}]:${opts.grpcPort}` : `${opts.host}:${opts.grpcPort}`;
      server.bindAsync(target, credentials, (err, p) => (err ? reject(err) : resolve(p)));
    });
    const stunPorts = stun.ports;
    const stunHosts = [...stun.hosts];
    log.info('control server ready', {
      host: opts.host,
      grpcPort,
      stunPorts,
      stunHosts,
      tls: !!opts.tls,
      store: pgc ? `postgresql (instance ${pgc.instanceId})` : 'sqlite',
      relays: opts.relays ? describeRelays(opts.relays) : [],
      ...(opts.relays && { turnTtlSeconds: opts.relays.ttlSeconds, turnRealm: opts.relays.realm }),
    });
    // Its loop-delay histogram samples every 10 ms: only when the debug records it feeds are written.
    const stopLoad = debugEnabled() ? watchLoad(plane, log, calls) : () => {};
    let closing: Promise<void> | undefined;
    return {
      grpcPort,
      stunPorts,
      stunHosts,
      close: () =>
        (closing ??= (async () => {
          stopLoad();
          plane.close();
          shutdown.abort();
          await new Promise<void>((resolve) => {
            const force = setTimeout(() => {
              server.forceShutdown();
              resolve();
            }, 1000);
            server.tryShutdown(() => {
              clearTimeout(force);
              resolve();
            });
          });
          await stun?.close();
          await closeStore();
        })()),
    };
  } catch (err) {
    plane.close();
    server.forceShutdown();
    await stun?.close();
    await closeStore();
    throw err;
  }
}
