import { isIP } from 'node:net';
import type { ServerWritableStream } from '@grpc/grpc-js';
import { ApiError, Status } from '../core/api-error.js';
import { bearerToken } from '../core/token.js';
import {
  ControlServiceService,
  type AnnounceRequest,
  type CallMeMaybeRequest,
  type CreatePartyRequest,
  type GetChallengeResponse,
  type JoinPartyRequest,
  type KickMemberRequest,
  type RegisterRequest,
  type SessionRequest,
  type SessionResponse,
  type UpdateEndpointsRequest,
} from '../gen/lanrage/control/v1/control.js';
import type { CallContext, Handler } from '../api/wrap.js';
import type { ControlPlane } from './control-plane.js';
import type { Logger } from '../core/log.js';

export const controlDefinition = ControlServiceService;

// A Session that stops reading must not make the server buffer events without bound.
const MAX_PENDING_EVENTS = 1000;

export interface ControlServiceDeps {
  plane: ControlPlane;
  stunPorts: readonly [number, number];
  /** The address helpers should send STUN to; default: see stunHost(). */
  advertiseHost?: string;
  /** The address the server listens on. */
  bindHost: string;
  /** Resolves once the changes made so far are durable (PostgreSQL write-through); rejects if refused. */
  durable?: () => Promise<void>;
  /** Aborted when the server shuts down: Session streams end cleanly. */
  shutdown: AbortSignal;
  /** Debug timings of the calls a join makes. */
  log?: Logger;
  /** Counts calls by method (load-log.ts), when given. */
  calls?: Map<string, number>;
}

/** "host:port" from the :authority a client used; the host part, brackets removed. */
export function authorityHost(authority: string): string | undefined {
  // The :authority header is whatever the client sent; it only ever reaches that client's own
  // snapshot, but keep it to an address or a DNS name anyway.
  const m = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/.exec(authority) ?? /^([A-Za-z0-9.-]{1,253})(?::\d{1,5})?$/.exec(authority);
  return m?.[1];
}

/**
 * Where a client should send STUN: the configured address; else the IP it used to reach us;
 * else our listening address when it is a specific one; else the name it used (it resolves it).
 */
export function stunHost(authority: string, bindHost: string, advertiseHost?: string): string {
  if (advertiseHost) return advertiseHost;
  const used = authorityHost(authority);
  if (used !== undefined && isIP(used) !== 0) return used;
  if (isIP(bindHost) !== 0 && bindHost !== '0.0.0.0' && bindHost !== '::') return bindHost;
  return used ?? bindHost;
}

export function stunServersFor(host: string, ports: readonly [number, number]): string[] {
  return ports.map((p) => (isIP(host) === 6 ? `[${host}]:${p}` : `${host}:${p}`));
}

export function controlHandlers(deps: ControlServiceDeps): Record<string, Handler> {
  const { plane } = deps;
  const device = (ctx: CallContext): string => plane.authenticate(bearerToken(ctx.metadata.get('authorization')[0]?.toString()));
  // A change is answered once it is durable: on PostgreSQL, once written through.
  const durably = async <T>(res: T): Promise<T> => {
    await deps.durable?.();
    return res;
  };
  // The handlers' own time (a join storm: issue 13); the queueing before them shows in load-log.ts.
  const timed = <T>(method: string, fn: () => T): T => {
    const t0 = performance.now();
    const res = fn();
    deps.log?.debug('control call timing', { method, ms: Math.round(performance.now() - t0) });
    return res;
  };
  const handlers: Record<string, Handler> = {
    getChallenge: (): GetChallengeResponse => plane.getChallenge(),
    register: (req: RegisterRequest) => durably(timed('register', () => plane.register(req))),
    createParty: (req: CreatePartyRequest, ctx: CallContext) => durably(plane.createParty(device(ctx), req)),
    joinParty: (req: JoinPartyRequest, ctx: CallContext) => durably(timed('joinParty', () => plane.joinParty(device(ctx), req))),
    leaveParty: (_req: unknown, ctx: CallContext) => {
      plane.leaveParty(device(ctx));
      return durably({});
    },
    kickMember: (req: KickMemberRequest, ctx: CallContext) => {
      plane.kick(device(ctx), req);
      return durably({});
    },
    updateEndpoints: (req: UpdateEndpointsRequest, ctx: CallContext) => {
      plane.updateEndpoints(device(ctx), req);
      return durably({});
    },
    callMeMaybe: (req: CallMeMaybeRequest, ctx: CallContext) => plane.callMeMaybe(device(ctx), req),
    getRelays: (_req: unknown, ctx: CallContext) => plane.getRelays(device(ctx)),
    announce: (req: AnnounceRequest, ctx: CallContext) => {
      plane.announce(device(ctx), req);
      return {};
    },
    session: async (_req: SessionRequest, ctx: CallContext, call: ServerWritableStream<SessionRequest, SessionResponse>): Promise<void> => {
      const id = device(ctx);
      const host = stunHost(call.getHost(), deps.bindHost, deps.advertiseHost);
      await new Promise<void>((resolve, reject) => {
        let closeSession = (): void => {};
        const finish = (err?: Error): void => {
          ctx.signal.removeEventListener('abort', onEnd);
          deps.shutdown.removeEventListener('abort', onEnd);
          closeSession();
          if (err) reject(err);
          else resolve();
        };
        const onEnd = (): void => finish();
        ctx.signal.addEventListener('abort', onEnd);
        deps.shutdown.addEventListener('abort', onEnd);
        closeSession = timed('session', () => plane.openSession(id, stunServersFor(host, deps.stunPorts), (e) => {
          if (call.writableLength >= MAX_PENDING_EVENTS) {
            finish(new ApiError(Status.RESOURCE_EXHAUSTED, 'this Session stream is not reading its events: reconnect'));
            return;
          }
          call.write(e);
        }));
        if (ctx.signal.aborted || deps.shutdown.aborted) finish();
      });
    },
  };
  const calls = deps.calls;
  if (!calls) return handlers;
  return Object.fromEntries(
    Object.entries(handlers).map(([name, h]) => [
      name,
      // Unary (request, context) and stream (request, context, call) handlers alike.
      ((...args: unknown[]) => {
        calls.set(name, (calls.get(name) ?? 0) + 1);
        return (h as (...a: unknown[]) => unknown)(...args);
      }) as Handler,
    ]),
  );
}
