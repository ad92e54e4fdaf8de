// gRPC-Web calls to the helper, built at run time from ts-proto's generic definitions so that no
// grpc-web codegen (protoc-gen-grpc-web) is needed next to ts-proto.
import { GrpcWebClientBase, MethodDescriptor, MethodType, type Metadata, type RpcError } from 'grpc-web';
import { ApiError, Code, toApiError } from './errors.js';
import { forgetSessionToken, onRemote, sessionToken } from './session.js';

/** What ts-proto's MessageFns<T> offers that the wire needs. */
export interface Codec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
}

/** One method of a ts-proto generic service definition. */
export interface MethodDef<Req, Res> {
  readonly name: string;
  readonly requestType: Codec<Req>;
  readonly responseType: Codec<Res>;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

/** The part of a ts-proto generic service definition that names it. */
export interface ServiceDef {
  readonly fullName: string;
}

export interface CallOptions {
  /** Send the install token: every call that changes something needs it. */
  auth?: boolean;
  /** Send no token even on the phone (Pair, which trades a code for the token). */
  anonymous?: boolean;
  /** Unary calls only; milliseconds. */
  timeoutMs?: number;
}

export interface StreamHandlers<Res> {
  onMessage(message: Res): void;
  /** The server closed the stream with OK. */
  onEnd(): void;
  /** Called at most once, and then neither onEnd nor onMessage follows. */
  onError(error: ApiError): void;
}

const DEFAULT_TIMEOUT_MS = 10_000;

// Text format because binary mode buffers a server stream until it ends (STACK-NOTES.md).
const client = new GrpcWebClientBase({ format: 'text' });

// Same origin: the helper serves the PWA and gRPC-Web on one port.
const hostname = (): string => window.location.origin;

// grpc-web's typings want constructors for the message types; ts-proto messages are plain
// objects, and grpc-web never calls these, so a placeholder constructor stands in.
type Ctor<T> = new (...args: unknown[]) => T;
const placeholder = class {} as unknown as Ctor<never>;

const descriptors = new Map<string, MethodDescriptor<unknown, unknown>>();

function pathOf(service: ServiceDef, method: { readonly name: string }): string {
  return `/${service.fullName}/${method.name}`;
}

function descriptorFor<Req, Res>(service: ServiceDef, method: MethodDef<Req, Res>): MethodDescriptor<Req, Res> {
  const path = pathOf(service, method);
  let md = descriptors.get(path) as MethodDescriptor<Req, Res> | undefined;
  if (!md) {
    md = new MethodDescriptor<Req, Res>(
      path,
      method.responseStream ? MethodType.SERVER_STREAMING : MethodType.UNARY,
      placeholder as Ctor<Req>,
      placeholder as Ctor<Res>,
      (m: Req) => method.requestType.encode(m).finish(),
      (bytes: Uint8Array) => method.responseType.decode(bytes),
    );
    descriptors.set(path, md as MethodDescriptor<unknown, unknown>);
  }
  return md;
}

async function metadataFor(opts: CallOptions, unary: boolean): Promise<Metadata> {
  const md: Metadata = {};
  if (!opts.anonymous && (opts.auth || onRemote())) md['authorization'] = `Bearer ${await sessionToken()}`;
  // grpc-web turns `deadline` (epoch ms) into a grpc-timeout header and an XHR timeout.
  if (unary) md['deadline'] = String(Date.now() + (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS));
  return md;
}

/** One request, one response. Rejects with ApiError. */
export async function unary<Req, Res>(
  service: ServiceDef,
  method: MethodDef<Req, Res>,
  request: Req,
  opts: CallOptions = {},
): Promise<Res> {
  const md = descriptorFor(service, method);
  const url = hostname() + pathOf(service, method);
  const attempt = async (): Promise<Res> =>
    // unaryCall, not thenableCall: the latter is typed but missing at run time in grpc-web 2.1.1.
    client.unaryCall(url, request, await metadataFor(opts, true), md);
  try {
    return await attempt();
  } catch (err) {
    const e = toApiError(err);
    // A reinstalled helper has a new token: fetch it once more before giving up.
    if (opts.auth && e.code === Code.UNAUTHENTICATED) {
      forgetSessionToken();
      try {
        return await attempt();
      } catch (err2) {
        throw toApiError(err2);
      }
    }
    throw e;
  }
}

/** Starts a server stream; returns a function that cancels it (after which no handler is called). */
export function serverStream<Req, Res>(
  service: ServiceDef,
  method: MethodDef<Req, Res>,
  request: Req,
  handlers: StreamHandlers<Res>,
  opts: CallOptions = {},
): () => void {
  const md = descriptorFor(service, method);
  const url = hostname() + pathOf(service, method);
  let done = false;
  let cancelStream: (() => void) | undefined;

  const finish = (): boolean => {
    if (done) return false;
    done = true;
    return true;
  };

  void metadataFor(opts, false).then(
    (metadata) => {
      if (done) return;
      const stream = client.serverStreaming(url, request, metadata, md);
      cancelStream = () => stream.cancel();
      stream.on('data', (msg: Res) => {
        if (!done) handlers.onMessage(msg);
      });
      // grpc-web emits `error` and then `end` for a failed stream; `finish` keeps only the first.
      stream.on('error', (err: RpcError) => {
        if (finish()) handlers.onError(toApiError(err));
      });
      stream.on('end', () => {
        if (finish()) handlers.onEnd();
      });
    },
    (err: unknown) => {
      if (finish()) handlers.onError(toApiError(err));
    },
  );

  return () => {
    done = true;
    cancelStream?.();
  };
}

export { ApiError, Code };
