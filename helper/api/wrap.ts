import {
  status as Status,
  Metadata,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  type ServiceDefinition,
  type UntypedServiceImplementation,
  type MethodDefinition,
} from '@grpc/grpc-js';
import { ApiError } from '../core/api-error.js';
import type { Logger } from '../core/log.js';
import { bearerToken, tokenMatches } from '../core/token.js';
import type { Decision, Need } from '../authz/authz.js';
import { redactsSecrets } from './redact.js';

// Turns plain async handlers into grpc-js handlers with the rules every method shares:
// - a request that does not decode gets INVALID_ARGUMENT (grpc-js alone would say INTERNAL);
// - mutating methods need the install token (metadata "authorization: Bearer <token>");
// - ApiError becomes its status; anything else becomes INTERNAL without internals.

export interface CallContext {
  metadata: Metadata;
  /** Aborted when the client cancels or the deadline passes. */
  signal: AbortSignal;
  /** The caller is a paired device with a view token: answers go without join secrets (api/redact.ts). */
  redactSecrets: boolean;
}

export type UnaryHandler<Req, Res> = (req: Req, ctx: CallContext) => Promise<Res> | Res;
export type StreamHandler<Req, Res> = (req: Req, ctx: CallContext, call: ServerWritableStream<Req, Res>) => Promise<void>;
export type Handler = UnaryHandler<never, unknown> | StreamHandler<never, unknown>;

export interface WrapOptions {
  token: string;
  log: Logger;
  /** Method names (as in the generated definition, e.g. "updateSettings") that need the token. */
  mutating: ReadonlySet<string>;
  /** Per-method needs beyond read/control ('admin', 'pair'); they win over `mutating`. */
  needs?: Readonly<Record<string, Need>>;
  /** Who may call (helper/authz): replaces the bare token check when given; every call asks it. */
  authorize?: (call: { getPeer(): string; metadata: Metadata }, need: Need) => Promise<Decision>;
}

const MALFORMED = Symbol('malformed');
interface Malformed {
  [MALFORMED]: string;
}
const isMalformed = (x: unknown): x is Malformed => typeof x === 'object' && x !== null && MALFORMED in x;

type AnyDef = MethodDefinition<unknown, unknown>;

export function wrapService(
  def: ServiceDefinition,
  handlers: Record<string, Handler>,
  opts: WrapOptions,
): { definition: ServiceDefinition; implementation: UntypedServiceImplementation } {
  const definition: Record<string, AnyDef> = {};
  const implementation: UntypedServiceImplementation = {};
  for (const [name, m] of Object.entries(def as Record<string, AnyDef>)) {
    const handler = handlers[name];
    if (!handler) throw new Error(`no handler for ${m.path}`);
    definition[name] = {
      ...m,
      requestDeserialize: (buf: Buffer): unknown => {
        try {
          return m.requestDeserialize(buf);
        } catch (err) {
          return { [MALFORMED]: (err as Error).message } satisfies Malformed;
        }
      },
    };
    const log = opts.log.child({ method: m.path });
    const need: Need = opts.needs?.[name] ?? (opts.mutating.has(name) ? 'control' : 'read');
    /** Authorizes the call once and returns whether its answers must be redacted. */
    const check = async (req: unknown, call: { getPeer(): string; metadata: Metadata }): Promise<boolean> => {
      const md = call.metadata;
      let redact = false;
      if (opts.authorize) {
        const d = await opts.authorize(call, need);
        if (!d.ok) throw new ApiError(d.reason === 'unauthenticated' ? Status.UNAUTHENTICATED : Status.PERMISSION_DENIED, d.message);
        redact = redactsSecrets(d.identity);
      }
      if (isMalformed(req)) throw new ApiError(Status.INVALID_ARGUMENT, `request is not a valid ${m.path} message: ${req[MALFORMED]}`);
      if (!opts.authorize && (need === 'control' || need === 'admin')) {
        const presented = bearerToken(md.get('authorization')[0]?.toString());
        if (!tokenMatches(opts.token, presented)) {
          throw new ApiError(
            Status.UNAUTHENTICATED,
            presented === undefined
              ? 'this call changes the helper and needs the install token: send metadata "authorization: Bearer <token>" (the token is in the helper state directory, file api-token)'
              : 'the install token is wrong',
          );
        }
      }
      return redact;
    };
    implementation[name] = m.responseStream
      ? async (call: ServerWritableStream<unknown, unknown>) => {
          const ac = new AbortController();
          call.on('cancelled', () => ac.abort());
          try {
            const redactSecrets = await check(call.request, call);
            await (handler as StreamHandler<unknown, unknown>)(call.request, { metadata: call.metadata, signal: ac.signal, redactSecrets }, call);
            if (!call.cancelled) call.end();
          } catch (err) {
            if (!call.cancelled) call.emit('error', toServiceError(err, log));
          }
        }
      : async (call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => {
          const ac = new AbortController();
          call.on('cancelled', () => ac.abort());
          try {
            const redactSecrets = await check(call.request, call);
            cb(null, await (handler as UnaryHandler<unknown, unknown>)(call.request, { metadata: call.metadata, signal: ac.signal, redactSecrets }));
          } catch (err) {
            cb(toServiceError(err, log));
          }
        };
  }
  return { definition: definition as ServiceDefinition, implementation };
}

function toServiceError(err: unknown, log: Logger): { code: Status; details: string } {
  if (err instanceof ApiError) {
    log.debug('call refused', { code: Status[err.code], details: err.message });
    return { code: err.code, details: err.message };
  }
  log.error('handler failed', { err: err instanceof Error ? err.stack ?? err.message : String(err) });
  return { code: Status.INTERNAL, details: 'internal error; the server log has the details' };
}

