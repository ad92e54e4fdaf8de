import * as grpc from '@grpc/grpc-js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../core/log.js';
import { FORWARDED_METADATA } from '../authz/authz.js';
import {
  Code,
  classifyContentType,
  encodeDataFrame,
  encodeForWire,
  encodeTrailerFrame,
  maxRequestBodyBytes,
  parseGrpcTimeout,
  parseRequestBody,
  percentEncodeGrpcMessage,
  safeTrailerMetadata,
  type WireFormat,
} from './grpc-web-frames.js';

// gRPC-Web → native gRPC, in process (Envoy is not available here). One request message in, each
// response message out as soon as it arrives, status in a trailer frame. Unary and server-streaming
// calls are the same on the wire, so every call is made as a server-streaming one.

export interface BridgeOptions {
  client: grpc.Client;
  maxMessageBytes: number;
  log: Logger;
}

// How much of an oversized body we still swallow after answering, so that a well-meaning client
// finishing its upload reads our answer instead of a connection reset. Beyond it, we hang up.
const DISCARD_LIMIT_BYTES = 8 * 1024 * 1024;

const identity = (b: Buffer): Buffer => b;

function baseHeaders(contentType: string): Record<string, string> {
  return { 'content-type': contentType, 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' };
}

// An error before any response exists: grpc-web's "trailers-only" form, status in the headers.
function trailersOnly(res: ServerResponse, contentType: string, code: number, message: string): void {
  res.writeHead(200, {
    ...baseHeaders(contentType),
    'grpc-status': String(code),
    'grpc-message': percentEncodeGrpcMessage(message),
    'content-length': '0',
  });
  res.end();
}

/** A gRPC-Web refusal before any call is made (the phone listener's token and rate checks). */
export function refuseGrpcWeb(req: IncomingMessage, res: ServerResponse, code: number, message: string): void {
  const ct = classifyContentType(req.headers['content-type']);
  discardRest(req);
  trailersOnly(res, ct?.responseContentType ?? 'application/grpc-web-text+proto', code, message);
}

type BodyResult = { ok: true; body: Buffer } | { ok: false; reason: 'too-large' | 'aborted' };

function discardRest(req: IncomingMessage): void {
  let discarded = 0;
  req.removeAllListeners('data');
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > DISCARD_LIMIT_BYTES) req.socket.destroy();
  });
  req.resume();
}

// Reads at most `limit` bytes; the cap is checked against Content-Length up front and against the
// running total, so an oversized body is never buffered.
function readBody(req: IncomingMessage, limit: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > limit) {
      discardRest(req);
      resolve({ ok: false, reason: 'too-large' });
      return;
    }
    const chunks: Buffer[] = [];
    let total = 0;
    let settled = false;
    const settle = (r: BodyResult): void => {
      if (settled) return;
      settled = true;
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onAbort);
      resolve(r);
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > limit) {
        chunks.length = 0;
        discardRest(req);
        settle({ ok: false, reason: 'too-large' });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => settle({ ok: true, body: Buffer.concat(chunks, total) });
    const onAbort = (): void => settle({ ok: false, reason: 'aborted' });
    const onClose = (): void => {
      if (!req.complete) onAbort();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    req.on('error', onAbort);
  });
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** `forwardedFor`: the caller's identity as established on the HTTP socket (helper/authz), sent on. */
export async function handleGrpcWeb(req: IncomingMessage, res: ServerResponse, path: string, opts: BridgeOptions, forwardedFor?: string): Promise<void> {
  const log = opts.log;
  const ct = classifyContentType(req.headers['content-type']);
  if (ct === null) {
    const msg = 'content-type must be application/grpc-web, application/grpc-web+proto, application/grpc-web-text or application/grpc-web-text+proto';
    log.debug('grpc-web: unsupported content-type', { path, contentType: String(req.headers['content-type'] ?? '').slice(0, 100) });
    res.writeHead(415, {
      'content-type': 'text/plain; charset=utf-8',
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-store',
      'grpc-status': String(Code.INVALID_ARGUMENT),
      'grpc-message': percentEncodeGrpcMessage(msg),
    });
    res.end(msg + '\n');
    return;
  }
  const contentType = ct.responseContentType;

  let deadline: number | undefined;
  const timeoutHeader = headerValue(req.headers['grpc-timeout']);
  if (timeoutHeader !== undefined) {
    const ms = parseGrpcTimeout(timeoutHeader);
    if (ms === null) {
      trailersOnly(res, contentType, Code.INVALID_ARGUMENT, 'grpc-timeout must be 1 to 8 digits followed by one of H M S m u n, e.g. 500m');
      return;
    }
    deadline = Date.now() + ms;
  }

  const body = await readBody(req, maxRequestBodyBytes(opts.maxMessageBytes, ct.format));
  if (!body.ok) {
    if (body.reason === 'aborted') {
      log.debug('grpc-web: request aborted while reading the body', { path });
      res.destroy();
      return;
    }
    log.debug('grpc-web: request body too large', { path, limit: opts.maxMessageBytes });
    trailersOnly(res, contentType, Code.RESOURCE_EXHAUSTED, `request message exceeds the limit of ${opts.maxMessageBytes} bytes`);
    return;
  }
  const parsed = parseRequestBody(body.body, ct.format, opts.maxMessageBytes);
  if (!parsed.ok) {
    log.debug('grpc-web: malformed request', { path, code: parsed.code, reason: parsed.message });
    trailersOnly(res, contentType, parsed.code, parsed.message);
    return;
  }
  if (res.destroyed) return;

  const metadata = new grpc.Metadata();
  const authorization = headerValue(req.headers.authorization);
  if (authorization !== undefined) metadata.set('authorization', authorization);
  if (forwardedFor !== undefined) metadata.set(FORWARDED_METADATA, forwardedFor);

  forward(res, path, parsed.message, metadata, deadline, ct.format, contentType, opts);
}

function forward(
  res: ServerResponse,
  path: string,
  message: Buffer,
  metadata: grpc.Metadata,
  deadline: number | undefined,
  format: WireFormat,
  contentType: string,
  opts: BridgeOptions,
): void {
  const call = opts.client.makeServerStreamRequest<Buffer, Buffer>(
    path,
    identity,
    identity,
    message,
    metadata,
    deadline === undefined ? {} : { deadline },
  );
  // Headers go out at once so a browser sees a live stream start even before the first message.
  res.writeHead(200, baseHeaders(contentType));
  res.flushHeaders();

  let done = false;
  let ended = false;
  let status: grpc.StatusObject | null = null;

  // grpc-js reports the status while messages may still sit in the (paused) stream's buffer;
  // the trailer frame goes out only once both the status and the last message are through.
  const finish = (): void => {
    if (done || status === null || !ended) return;
    done = true;
    if (res.destroyed || res.writableEnded) return;
    const trailers = safeTrailerMetadata(status.metadata.toJSON());
    res.end(encodeForWire(encodeTrailerFrame(status.code, status.details, trailers), format));
  };

  call.on('data', (msg: Buffer) => {
    if (res.destroyed) return;
    if (!res.write(encodeForWire(encodeDataFrame(msg), format))) {
      call.pause();
      res.once('drain', () => call.resume());
    }
  });
  call.on('end', () => {
    ended = true;
    finish();
  });
  call.on('status', (s: grpc.StatusObject) => {
    status = s;
    if (s.code !== grpc.status.OK) opts.log.debug('grpc-web: call ended with an error', { path, code: s.code });
    finish();
  });
  // Non-OK statuses also arrive as 'error'; the 'status' event carries the same facts.
  call.on('error', () => undefined);

  res.on('close', () => {
    if (done) return;
    done = true;
    opts.log.debug('grpc-web: client went away; cancelling the call', { path });
    call.cancel();
  });
}
