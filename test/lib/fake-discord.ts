import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// A local HTTP server that answers as Discord's webhook endpoint does (Discord's servers cannot be
// reached from tests): POST /api/webhooks/{id}/{token}[?wait=true] with a JSON body, 204/200 with
// the X-RateLimit-* headers of a bucket of `limit` requests per `windowMs`, 429 with the documented
// body {message, retry_after, global} when the bucket is empty, 404 {code: 10015} for an unknown
// webhook. It records every request, and counts requests that came while Discord had said to wait.

export interface FakeMessage {
  at: number;
  content: string;
  body: Record<string, unknown>;
}

export interface Override {
  status: number;
  retryAfterS?: number;
  delayMs?: number;
}

export class FakeDiscord {
  readonly messages: FakeMessage[] = [];
  readonly requests: { at: number; status: number }[] = [];
  /** Requests that arrived before a wait Discord had announced was over (a client bug). */
  early = 0;
  limit = 5;
  windowMs = 2000;
  /** Answers for the next requests, in order, before the normal bucket logic. */
  script: Override[] = [];
  /** Webhook ids that exist; any other id gets 404 Unknown Webhook. */
  readonly webhooks = new Set<string>();
  private remaining = 0;
  private resetAt = 0;
  private waitUntil = 0;
  private server: Server | undefined;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }

  url(id: string, token = 'fake-token_0123456789abcdefghijkl'): string {
    return `http://127.0.0.1:${this.port}/api/webhooks/${id}/${token}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  async waitFor(pred: (msgs: FakeMessage[]) => boolean, timeoutMs = 20_000, what = 'messages'): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!pred(this.messages)) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; got:\n${this.messages.map((m) => m.content).join('\n---\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const now = Date.now();
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const m = /^\/api\/webhooks\/(\d+)\/([A-Za-z0-9_-]+)(\?wait=true)?$/.exec(req.url ?? '');
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      this.requests.push({ at: now, status });
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    if (req.method !== 'POST' || !m) return reply(405, { message: '405: Method Not Allowed', code: 0 });
    if (!this.webhooks.has(m[1]!)) return reply(404, { message: 'Unknown Webhook', code: 10015 });
    if (now < this.waitUntil) this.early++;
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch {
      return reply(400, { message: 'The request body contains invalid JSON.', code: 50109 });
    }
    const over = this.script.shift();
    if (over?.delayMs) await new Promise((r) => setTimeout(r, over.delayMs));
    if (over && over.status === 429) {
      const s = over.retryAfterS ?? 1;
      this.waitUntil = Date.now() + s * 1000;
      return reply(429, { message: 'You are being rate limited.', retry_after: s, global: false }, { 'retry-after': String(Math.ceil(s)), 'x-ratelimit-limit': String(this.limit), 'x-ratelimit-remaining': '0', 'x-ratelimit-reset-after': String(s), 'x-ratelimit-bucket': 'fakebucket', 'x-ratelimit-scope': 'shared' });
    }
    if (over && over.status !== 204 && over.status !== 200) return reply(over.status, { message: 'scripted', code: 0 });
    const t = Date.now();
    if (t >= this.resetAt) {
      this.remaining = this.limit;
      this.resetAt = t + this.windowMs;
    }
    const resetAfter = ((this.resetAt - t) / 1000).toFixed(3);
    if (this.remaining === 0) {
      this.waitUntil = this.resetAt;
      return reply(429, { message: 'You are being rate limited.', retry_after: Number(resetAfter), global: false }, { 'retry-after': String(Math.ceil(Number(resetAfter))), 'x-ratelimit-limit': String(this.limit), 'x-ratelimit-remaining': '0', 'x-ratelimit-reset-after': resetAfter, 'x-ratelimit-bucket': 'fakebucket' });
    }
    this.remaining--;
    if (this.remaining === 0) this.waitUntil = this.resetAt;
    this.messages.push({ at: t, content: String(body['content'] ?? ''), body });
    const headers = { 'x-ratelimit-limit': String(this.limit), 'x-ratelimit-remaining': String(this.remaining), 'x-ratelimit-reset-after': resetAfter, 'x-ratelimit-bucket': 'fakebucket' };
    if (m[3]) return reply(200, { id: String(this.messages.length), content: body['content'] }, headers);
    return reply(204, undefined, headers);
  }
}
