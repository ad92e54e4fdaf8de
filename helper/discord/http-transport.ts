import type { WebhookAnswer } from './rate-limit.js';
import type { WebhookTransport } from './webhook-queue.js';

// POSTs messages to one webhook with Node's fetch. `wait=true` makes Discord answer after the
// message is stored, so a 2xx means the channel has it. Mentions are switched off: names come
// from other players and must never ping anyone. A request that takes longer than timeoutMs is
// abandoned and retried by the queue (Discord may have stored it: a rare duplicate beats a loss).

export const USER_AGENT = 'LANrage (https://github.com/lanrage/lanrage, 0.1)';
const MAX_ANSWER_BYTES = 64 * 1024;

export function httpWebhookTransport(url: string, opts: { timeoutMs?: number; username?: string } = {}): WebhookTransport {
  const target = `${url}?wait=true`;
  return {
    async post(content: string): Promise<WebhookAnswer> {
      const res = await fetch(target, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': USER_AGENT },
        body: JSON.stringify({ content, allowed_mentions: { parse: [] }, ...(opts.username && { username: opts.username }) }),
        redirect: 'error',
        signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
      });
      const text = await res.text();
      let body: unknown;
      if (text.length > 0 && text.length <= MAX_ANSWER_BYTES) {
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
      }
      return { status: res.status, header: (n) => res.headers.get(n), body };
    },
  };
}
