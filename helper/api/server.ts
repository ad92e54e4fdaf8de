import { Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import type { Need } from '../authz/authz.js';
import type { Logger } from '../core/log.js';
import { addReflection } from './reflection.js';
import { wrapService, type Handler, type WrapOptions } from './wrap.js';

export const MAX_MESSAGE_BYTES = 1024 * 1024;

export interface ServiceEntry {
  definition: ServiceDefinition;
  handlers: Record<string, Handler>;
  /** Methods that change state or send packets: they need the install token. */
  mutating: ReadonlySet<string>;
  /** Per-method needs beyond read/control (helper/authz: 'admin', 'pair'). */
  needs?: Readonly<Record<string, Need>>;
}

export interface GrpcServerHandle {
  port: number;
  /** Graceful: lets calls finish for up to graceMs, then cancels the rest. */
  close(graceMs?: number): Promise<void>;
}

export async function startGrpcServer(opts: { host: string; port: number; token: string; log: Logger; services: ServiceEntry[]; authorize?: WrapOptions['authorize'] }): Promise<GrpcServerHandle> {
  const server = new Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': 4 * MAX_MESSAGE_BYTES,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_permit_without_calls': 1,
  });
  for (const s of opts.services) {
    const { definition, implementation } = wrapService(s.definition, s.handlers, { token: opts.token, log: opts.log, mutating: s.mutating, ...(s.needs && { needs: s.needs }), ...(opts.authorize && { authorize: opts.authorize }) });
    server.addService(definition, implementation);
  }
  addReflection(server, opts.log);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${opts.host}:${opts.port}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    port,
    close: (graceMs = 2000) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
