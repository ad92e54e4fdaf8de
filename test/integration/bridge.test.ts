import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../helper/core/log.js';
import {
  decodeBase64Chunks,
  decodeFrames,
  parseTrailerBlock,
  percentDecodeGrpcMessage,
  type Frame,
} from '../../helper/web/grpc-web-frames.js';
import { startHttpServer, type HttpServerHandle } from '../../helper/web/server.js';

// A real grpc-js server with a byte-level echo service, the bridge in front of it, and Node's http
// client playing the browser.

const TOKEN = 'test-token-0123456789abcdefghijklmnopqrstuvwxyz';
const MAX = 4096;
const STREAM_COUNT = 5;
const STREAM_GAP_MS = 150;

const id = (b: Buffer): Buffer => b;
function method(name: string, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> {
  return { path: `/test.Echo/${name}`, requestStream: false, responseStream, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id };
}
const service: grpc.ServiceDefinition = {
  Unary: method('Unary', false),
  Stream: method('Stream', true),
  Forever: method('Forever', true),
  Slow: method('Slow', false),
  Fail: method('Fail', false),
  Flood: method('Flood', true),
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
// A deadline for waiting on an event that must not keep the test process alive on success.
const within = <T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(() => resolve('timeout'), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e: unknown) => { clearTimeout(t); reject(e instanceof Error ? e : new Error(String(e))); });
  });

// What the upstream saw.
const seen = {
  calls: 0,
  lastMetadata: {} as Record<string, grpc.MetadataValue>,
  lastRequest: Buffer.alloc(0) as Buffer,
  streamLastSentAt: 0,
  floodSent: 0,
  cancelled: [] as string[],
};
let onCancelled: ((name: string) => void) | null = null;

function noteCancel(name: string, call: { on(ev: 'cancelled', f: () => void): unknown }): void {
  call.on('cancelled', () => {
    seen.cancelled.push(name);
    onCancelled?.(name);
  });
}

const impl: grpc.UntypedServiceImplementation = {
  Unary: ((call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    seen.calls++;
    seen.lastMetadata = call.metadata.getMap();
    seen.lastRequest = call.request;
    cb(null, Buffer.concat([Buffer.from('echo:'), call.request]));
  }) as grpc.handleUnaryCall<Buffer, Buffer>,
  Stream: (async (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
    seen.calls++;
    for (let i = 0; i < STREAM_COUNT; i++) {
      if (i > 0) await sleep(STREAM_GAP_MS);
      if (i === STREAM_COUNT - 1) seen.streamLastSentAt = Date.now();
      call.write(Buffer.from(`${call.request.toString()}#${i}`));
    }
    call.end();
  }) as grpc.handleServerStreamingCall<Buffer, Buffer>,
  Forever: ((call: grpc.ServerWritableStream<Buffer, Buffer>) => {
    seen.calls++;
    const timer = setInterval(() => call.write(Buffer.from('tick')), 50);
    call.on('cancelled', () => clearInterval(timer));
    noteCancel('Forever', call);
  }) as grpc.handleServerStreamingCall<Buffer, Buffer>,
  Slow: ((call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    seen.calls++;
    // Far beyond any deadline a test sets, so that an answer before it can only be the deadline's.
    const timer = setTimeout(() => cb(null, Buffer.from('late')), 30_000);
    call.on('cancelled', () => clearTimeout(timer));
    noteCancel('Slow', call);
  }) as grpc.handleUnaryCall<Buffer, Buffer>,
  // Writes 64 KiB messages as fast as HTTP/2 flow control lets it.
  Flood: (async (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
    seen.calls++;
    const chunk = Buffer.alloc(64 * 1024, 0x66);
    let stop = false;
    call.on('cancelled', () => (stop = true));
    while (!stop && seen.floodSent < 5000) {
      seen.floodSent++;
      if (!call.write(chunk)) await new Promise((r) => call.once('drain', r));
    }
    call.end();
  }) as grpc.handleServerStreamingCall<Buffer, Buffer>,
  Fail: ((_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    seen.calls++;
    const md = new grpc.Metadata();
    md.set('x-reason', 'full');
    cb({ code: grpc.status.FAILED_PRECONDITION, details: 'party is full — ask the host (100%)', metadata: md });
  }) as grpc.handleUnaryCall<Buffer, Buffer>,
};

interface Resp {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

interface Req {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  chunked?: boolean;
}

let grpcServer: grpc.Server;
let web: HttpServerHandle;
let tmp: string;
let staticDir: string;
let hostHeader: string;
let ownOrigin: string;

function request(req: Req): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const body = req.body === undefined ? undefined : Buffer.from(req.body);
    const headers: Record<string, string> = { host: hostHeader, ...req.headers };
    if (body !== undefined && !req.chunked) headers['content-length'] = String(body.length);
    const r = http.request({ host: '127.0.0.1', port: web.port, method: req.method ?? 'GET', path: req.path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    r.on('error', reject);
    if (body !== undefined && req.chunked) {
      // Several writes without a length: the server has to count as it reads.
      for (let off = 0; off < body.length; off += 1000) r.write(body.subarray(off, off + 1000));
      r.end();
    } else {
      r.end(body);
    }
  });
}

function frame(message: Buffer | string, flag = 0): Buffer {
  const m = Buffer.from(message);
  const head = Buffer.alloc(5);
  head[0] = flag;
  head.writeUInt32BE(m.length, 1);
  return Buffer.concat([head, m]);
}

function grpcWeb(path: string, body: Buffer, headers: Record<string, string> = {}, text = false): Promise<Resp> {
  return request({
    method: 'POST',
    path,
    headers: { 'content-type': text ? 'application/grpc-web-text' : 'application/grpc-web+proto', origin: ownOrigin, 'x-grpc-web': '1', ...headers },
    body: text ? Buffer.from(body.toString('base64')) : body,
  });
}

interface Decoded {
  messages: string[];
  trailers: Map<string, string>;
}

function decodeResponse(resp: Resp): Decoded {
  const text = String(resp.headers['content-type']).startsWith('application/grpc-web-text');
  const bytes = text ? decodeBase64Chunks(resp.body.toString('latin1')) : resp.body;
  assert.ok(bytes, 'response body is valid base64');
  const { frames, rest } = decodeFrames(bytes);
  assert.equal(rest.length, 0, 'no partial frame at the end');
  const last = frames[frames.length - 1];
  assert.equal(last?.flag, 0x80, 'the last frame is the trailer frame');
  assert.ok(frames.slice(0, -1).every((f) => f.flag === 0), 'all other frames are data frames');
  return { messages: frames.slice(0, -1).map((f) => f.payload.toString()), trailers: parseTrailerBlock(last.payload) };
}

before(async () => {
  grpcServer = new grpc.Server();
  grpcServer.addService(service, impl);
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  tmp = await mkdtemp(join(tmpdir(), 'lanrage-web-'));
  staticDir = join(tmp, 'www');
  await mkdir(join(staticDir, 'assets'), { recursive: true });
  await writeFile(join(tmp, 'package.json'), '{"secret":"OUTSIDE-THE-ROOT"}');
  await writeFile(join(staticDir, 'index.html'), '<!doctype html><title>LANrage app shell</title>');
  await writeFile(join(staticDir, 'sw.js'), 'self.addEventListener("fetch", () => {});');
  await writeFile(join(staticDir, 'manifest.webmanifest'), '{"name":"LANrage"}');
  await writeFile(join(staticDir, 'assets', 'index-3f2a9c.js'), 'console.log("app")');
  await symlink(join(tmp, 'package.json'), join(staticDir, 'escape.json'));
  web = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    grpcTarget: `127.0.0.1:${grpcPort}`,
    staticDir,
    allowedHosts: [],
    token: TOKEN,
    log: createLogger({}, () => undefined),
    maxMessageBytes: MAX,
  });
  hostHeader = `127.0.0.1:${web.port}`;
  ownOrigin = `http://${hostHeader}`;
});

after(async () => {
  await web?.close();
  // forceShutdown: a call the bridge failed to cancel must fail its test, not hang the run.
  grpcServer?.forceShutdown();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('gRPC-Web bridge', () => {
  it('unary call, binary', async () => {
    const resp = await grpcWeb('/test.Echo/Unary', frame('hello'));
    assert.equal(resp.status, 200);
    assert.equal(resp.headers['content-type'], 'application/grpc-web+proto');
    assert.equal(resp.headers['x-content-type-options'], 'nosniff');
    assert.equal(resp.headers['cache-control'], 'no-store');
    const d = decodeResponse(resp);
    assert.deepEqual(d.messages, ['echo:hello']);
    assert.equal(d.trailers.get('grpc-status'), '0');
    assert.equal(seen.lastRequest.toString(), 'hello');
  });

  it('unary call, text (base64)', async () => {
    const payload = Buffer.from([0, 1, 2, 250, 255]);
    const resp = await grpcWeb('/test.Echo/Unary', frame(payload), {}, true);
    assert.equal(resp.status, 200);
    assert.equal(resp.headers['content-type'], 'application/grpc-web-text+proto');
    assert.match(resp.body.toString('latin1'), /^[A-Za-z0-9+/=]+$/);
    const d = decodeResponse(resp);
    assert.deepEqual([...seen.lastRequest], [...payload]);
    assert.equal(d.trailers.get('grpc-status'), '0');
    const bytes = decodeBase64Chunks(resp.body.toString('latin1'));
    const first = bytes ? decodeFrames(bytes).frames[0] : undefined;
    assert.deepEqual([...(first?.payload ?? [])], [...Buffer.from('echo:'), ...payload]);
  });

  it('server stream arrives message by message (text mode)', async () => {
    const arrivals: Array<{ at: number; frame: Frame }> = [];
    await new Promise<void>((resolve, reject) => {
      const body = Buffer.from(frame('s').toString('base64'));
      const r = http.request(
        {
          host: '127.0.0.1', port: web.port, method: 'POST', path: '/test.Echo/Stream', agent: false,
          headers: { host: hostHeader, origin: ownOrigin, 'content-type': 'application/grpc-web-text', 'content-length': String(body.length) },
        },
        (res) => {
          let text = '';
          let consumed = 0;
          res.setEncoding('latin1');
          res.on('data', (chunk: string) => {
            text += chunk;
            // Only whole base64 quartets can be decoded; frames are separately padded, so any
            // quartet boundary is a safe place to stop.
            const usable = text.length - (text.length % 4);
            const bytes = decodeBase64Chunks(text.slice(0, usable));
            if (!bytes) return reject(new Error('bad base64 in stream'));
            const { frames } = decodeFrames(bytes);
            for (const f of frames.slice(consumed)) arrivals.push({ at: Date.now(), frame: f });
            consumed = frames.length;
          });
          res.on('end', () => resolve());
          res.on('error', reject);
        },
      );
      r.on('error', reject);
      r.end(body);
    });
    const data = arrivals.filter((a) => a.frame.flag === 0);
    assert.deepEqual(data.map((a) => a.frame.payload.toString()), ['s#0', 's#1', 's#2', 's#3', 's#4']);
    assert.equal(arrivals[arrivals.length - 1]?.frame.flag, 0x80);
    const firstAt = data[0]?.at ?? Infinity;
    assert.ok(firstAt < seen.streamLastSentAt, `first frame (${firstAt}) must arrive before the last was sent (${seen.streamLastSentAt})`);
    assert.ok(seen.streamLastSentAt - firstAt >= STREAM_GAP_MS, 'the first frame was not held back');
  });

  it('a client that stops reading slows the upstream down (backpressure)', async () => {
    const body = frame('');
    const r = http.request({
      host: '127.0.0.1', port: web.port, method: 'POST', path: '/test.Echo/Flood', agent: false,
      headers: { host: hostHeader, origin: ownOrigin, 'content-type': 'application/grpc-web', 'content-length': String(body.length) },
    });
    r.on('error', () => undefined);
    const got = new Promise<void>((resolve) => r.on('response', (res) => {
      res.on('error', () => undefined);
      res.pause();
      resolve();
    }));
    r.end(body);
    try {
      await got;
      await sleep(1000);
      // Without backpressure the bridge drains all 5000 messages (~320 MiB) into memory.
      assert.ok(seen.floodSent > 0, 'the upstream started');
      assert.ok(seen.floodSent < 1000, `upstream sent ${seen.floodSent} messages to a client that reads nothing`);
    } finally {
      r.destroy();
    }
  });

  it('honours grpc-timeout', async () => {
    const t0 = Date.now();
    const resp = await grpcWeb('/test.Echo/Slow', frame('x'), { 'grpc-timeout': '200m' });
    const elapsed = Date.now() - t0;
    const d = decodeResponse(resp);
    assert.equal(d.trailers.get('grpc-status'), String(grpc.status.DEADLINE_EXCEEDED));
    assert.deepEqual(d.messages, []);
    assert.ok(elapsed < 30_000, `answered after ${elapsed} ms: when the handler finished, not on the 200 ms deadline`);
  });

  it('rejects a malformed grpc-timeout', async () => {
    const before = seen.calls;
    const resp = await grpcWeb('/test.Echo/Unary', frame('x'), { 'grpc-timeout': '10 seconds' });
    assert.equal(resp.headers['grpc-status'], '3');
    assert.equal(seen.calls, before);
  });

  it('cancels the upstream call when the client goes away', async () => {
    const cancelled = new Promise<string>((resolve) => {
      onCancelled = resolve;
    });
    const body = frame('f');
    const r = http.request({
      host: '127.0.0.1', port: web.port, method: 'POST', path: '/test.Echo/Forever', agent: false,
      headers: { host: hostHeader, origin: ownOrigin, 'content-type': 'application/grpc-web+proto', 'content-length': String(body.length) },
    });
    r.on('error', () => undefined);
    r.on('response', (res) => {
      res.on('error', () => undefined);
      res.once('data', () => r.destroy());
    });
    r.end(body);
    const which = await within(cancelled, 3000);
    onCancelled = null;
    assert.equal(which, 'Forever');
  });

  it('forwards authorization and nothing else from the request headers', async () => {
    const resp = await grpcWeb('/test.Echo/Unary', frame('m'), {
      authorization: 'Bearer abc123',
      cookie: 'session=1',
      'x-custom': 'nope',
      'x-user-agent': 'grpc-web-javascript/0.1',
    });
    assert.equal(decodeResponse(resp).trailers.get('grpc-status'), '0');
    assert.equal(seen.lastMetadata['authorization'], 'Bearer abc123');
    for (const k of ['cookie', 'x-custom', 'x-user-agent', 'x-grpc-web', 'origin', 'host']) {
      assert.equal(seen.lastMetadata[k], undefined, `${k} must not be forwarded`);
    }
  });

  it('passes upstream errors in the trailer frame', async () => {
    const d = decodeResponse(await grpcWeb('/test.Echo/Fail', frame('x')));
    assert.deepEqual(d.messages, []);
    assert.equal(d.trailers.get('grpc-status'), String(grpc.status.FAILED_PRECONDITION));
    assert.equal(percentDecodeGrpcMessage(d.trailers.get('grpc-message') ?? ''), 'party is full — ask the host (100%)');
    assert.equal(d.trailers.get('x-reason'), 'full');
  });

  it('unknown method → UNIMPLEMENTED from upstream', async () => {
    const d = decodeResponse(await grpcWeb('/test.Echo/Nope', frame('x')));
    assert.equal(d.trailers.get('grpc-status'), String(grpc.status.UNIMPLEMENTED));
  });

  it('malformed frames → trailers-only INVALID_ARGUMENT / UNIMPLEMENTED, upstream untouched', async () => {
    const before = seen.calls;
    const truncated = Buffer.concat([Buffer.from([0, 0, 0, 0, 20]), Buffer.from('short')]);
    const r1 = await grpcWeb('/test.Echo/Unary', truncated);
    assert.equal(r1.status, 200);
    assert.equal(r1.headers['content-type'], 'application/grpc-web+proto');
    assert.equal(r1.headers['grpc-status'], '3');
    assert.match(percentDecodeGrpcMessage(String(r1.headers['grpc-message'])), /declares 20 message bytes but only 5/);
    assert.equal(r1.body.length, 0);

    const r2 = await grpcWeb('/test.Echo/Unary', frame('x', 1));
    assert.equal(r2.headers['grpc-status'], '12');

    const r3 = await request({ method: 'POST', path: '/test.Echo/Unary', headers: { origin: ownOrigin, 'content-type': 'application/grpc-web-text' }, body: 'AAAA!!!!' });
    assert.equal(r3.headers['content-type'], 'application/grpc-web-text+proto');
    assert.equal(r3.headers['grpc-status'], '3');
    assert.match(String(r3.headers['grpc-message']), /base64/);

    const r4 = await grpcWeb('/test.Echo/Unary', Buffer.concat([frame('a'), frame('b')]));
    assert.equal(r4.headers['grpc-status'], '3');
    assert.equal(seen.calls, before);
  });

  it('oversized body → RESOURCE_EXHAUSTED, the method never runs', async () => {
    const before = seen.calls;
    const big = frame(Buffer.alloc(MAX + 1, 0x61));
    const r1 = await grpcWeb('/test.Echo/Unary', big);
    assert.equal(r1.headers['grpc-status'], '8');
    const r2 = await request({ method: 'POST', path: '/test.Echo/Unary', headers: { origin: ownOrigin, 'content-type': 'application/grpc-web' }, body: frame(Buffer.alloc(MAX * 3, 0x62)), chunked: true });
    assert.equal(r2.headers['grpc-status'], '8');
    const r3 = await grpcWeb('/test.Echo/Unary', big, {}, true);
    assert.equal(r3.headers['grpc-status'], '8');
    assert.equal(r3.headers['content-type'], 'application/grpc-web-text+proto');
    assert.equal(seen.calls, before);
    // Exactly at the limit still works.
    const ok = decodeResponse(await grpcWeb('/test.Echo/Unary', frame(Buffer.alloc(MAX, 0x63)), {}, true));
    assert.equal(ok.trailers.get('grpc-status'), '0');
    assert.equal(seen.calls, before + 1);
  });

  it('answers an oversized upload without waiting for its end', async () => {
    let req: http.ClientRequest | undefined;
    const answered = new Promise<Resp>((resolve, reject) => {
      req = http.request(
        {
          host: '127.0.0.1', port: web.port, method: 'POST', path: '/test.Echo/Unary', agent: false,
          headers: { host: hostHeader, origin: ownOrigin, 'content-type': 'application/grpc-web' },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        },
      );
      req.on('error', reject);
      // Chunked and never ended: only a server that counts while reading can answer.
      req.write(Buffer.alloc(MAX * 2, 0x64));
    });
    try {
      const r = await within(answered, 2000);
      assert.notEqual(r, 'timeout', 'the server waited for the end of an oversized body');
      if (r !== 'timeout') assert.equal(r.headers['grpc-status'], '8');
    } finally {
      req?.destroy();
    }
  });

  it('wrong content type → 415 with grpc-status 3', async () => {
    const before = seen.calls;
    const r = await request({ method: 'POST', path: '/test.Echo/Unary', headers: { origin: ownOrigin, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(r.status, 415);
    assert.equal(r.headers['grpc-status'], '3');
    assert.ok(r.headers['grpc-message']);
    assert.equal(seen.calls, before);
  });
});

describe('guards', () => {
  it('unknown Host → 421, nothing reaches the server', async () => {
    const before = seen.calls;
    for (const host of ['evil.com', `localhost:${web.port}.evil.com`, '127.0.0.1:1']) {
      const r = await grpcWeb('/test.Echo/Unary', frame('x'), { host, origin: `http://${host}` });
      assert.equal(r.status, 421, host);
      assert.match(r.body.toString(), new RegExp(`localhost:${web.port}`));
    }
    const page = await request({ path: '/', headers: { host: 'rebind.attacker.example' } });
    assert.equal(page.status, 421);
    assert.equal(seen.calls, before);
  });

  it('accepts the other loopback names', async () => {
    for (const host of [`localhost:${web.port}`, `[::1]:${web.port}`]) {
      const r = await grpcWeb('/test.Echo/Unary', frame('h'), { host, origin: `http://${host}` });
      assert.equal(r.status, 200, host);
      assert.equal(decodeResponse(r).trailers.get('grpc-status'), '0');
    }
  });

  it('foreign Origin or cross-site fetch → 403, nothing reaches the server', async () => {
    const before = seen.calls;
    for (const origin of ['http://evil.com', 'null', `http://localhost:3000`]) {
      const r = await grpcWeb('/test.Echo/Unary', frame('x'), { origin });
      assert.equal(r.status, 403, origin);
      assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(r.headers['access-control-allow-origin'], undefined);
    }
    for (const site of ['cross-site', 'same-site']) {
      const r = await grpcWeb('/test.Echo/Unary', frame('x'), { 'sec-fetch-site': site });
      assert.equal(r.status, 403, site);
    }
    const preflight = await request({ method: 'OPTIONS', path: '/test.Echo/Unary', headers: { origin: 'http://evil.com', 'access-control-request-method': 'POST' } });
    assert.equal(preflight.status, 403);
    assert.equal(preflight.headers['access-control-allow-origin'], undefined);
    assert.equal(seen.calls, before);
  });

  it('/api/session gives the token to our own origin only', async () => {
    const own = await request({ path: '/api/session', headers: { origin: ownOrigin, 'sec-fetch-site': 'same-origin' } });
    assert.equal(own.status, 200);
    assert.equal(own.headers['cache-control'], 'no-store');
    assert.match(String(own.headers['content-type']), /^application\/json/);
    assert.deepEqual(JSON.parse(own.body.toString()), { token: TOKEN });
    assert.equal(own.headers['access-control-allow-origin'], undefined);

    const refused: Array<Record<string, string>> = [{ origin: 'http://evil.com' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }];
    for (const headers of refused) {
      const r = await request({ path: '/api/session', headers });
      assert.equal(r.status, 403, JSON.stringify(headers));
      assert.equal(r.body.includes(TOKEN), false);
    }
    const rebound = await request({ path: '/api/session', headers: { host: 'evil.com' } });
    assert.equal(rebound.status, 421);
    assert.equal(rebound.body.includes(TOKEN), false);
    const post = await request({ method: 'POST', path: '/api/session', headers: { origin: ownOrigin }, body: '' });
    assert.equal(post.status, 405);
  });
});

describe('static files', () => {
  it('serves the app shell with security headers', async () => {
    const r = await request({ path: '/' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(r.body.toString(), /LANrage app shell/);
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['referrer-policy'], 'no-referrer');
    assert.equal(
      r.headers['content-security-policy'],
      "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    );
  });

  it('content types and caching', async () => {
    const js = await request({ path: '/assets/index-3f2a9c.js' });
    assert.equal(js.status, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.match(String(js.headers['cache-control']), /max-age=31536000, immutable/);
    assert.equal(js.body.toString(), 'console.log("app")');
    const sw = await request({ path: '/sw.js' });
    assert.equal(sw.headers['cache-control'], 'no-cache');
    const mf = await request({ path: '/manifest.webmanifest' });
    assert.equal(mf.headers['content-type'], 'application/manifest+json; charset=utf-8');
    assert.equal(mf.headers['cache-control'], 'no-cache');
    const head = await request({ method: 'HEAD', path: '/sw.js' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['content-length'], String(sw.body.length));
  });

  it('SPA fallback for extensionless routes, 404 for missing files', async () => {
    const route = await request({ path: '/party/join?code=abc' });
    assert.equal(route.status, 200);
    assert.match(route.body.toString(), /LANrage app shell/);
    const missing = await request({ path: '/assets/missing-0000.js' });
    assert.equal(missing.status, 404);
    assert.doesNotMatch(missing.body.toString(), /app shell/);
    const api = await request({ path: '/api/unknown' });
    assert.equal(api.status, 404);
  });

  it('refuses path traversal and symlinks out of the root', async () => {
    for (const path of ['/../package.json', '/%2e%2e/package.json', '/assets/..%2f..%2fpackage.json', '/%2E%2E%2Fpackage.json', '/escape.json', '/x%00.js']) {
      const r = await request({ path });
      assert.ok(r.status === 400 || r.status === 404, `${path} → ${r.status}`);
      assert.equal(r.body.toString().includes('OUTSIDE-THE-ROOT'), false, path);
    }
  });

  it('other methods → 405', async () => {
    const r = await request({ method: 'PUT', path: '/index.html', headers: { origin: ownOrigin }, body: 'x' });
    assert.equal(r.status, 405);
    const post = await request({ method: 'POST', path: '/not/a-grpc-path', headers: { origin: ownOrigin, 'content-type': 'application/grpc-web' }, body: 'x' });
    assert.equal(post.status, 404);
  });
});
