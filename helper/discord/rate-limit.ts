// What to do after each answer from a webhook, following Discord's documented rate-limit
// headers (https://discord.com/developers/docs/topics/rate-limits): X-RateLimit-Remaining and
// X-RateLimit-Reset-After on every answer, and on 429 the body's retry_after (seconds, float).
// No limit is hard-coded: the headers say when the next request may go. Waits are capped,
// because clients have seen absurd retry_after values; after a capped wait the request is simply
// tried again and Discord answers with the real limit.

export const MAX_WAIT_MS = 60_000;
const MAX_BACKOFF_MS = 60_000;

export interface WebhookAnswer {
  status: number;
  /** Header lookup, case-insensitive (as fetch's Headers.get). */
  header(name: string): string | null;
  /** Parsed JSON body, when there was one. */
  body: unknown;
}

export type Verdict =
  /** Accepted. The next request may go after waitMs (0: now). */
  | { kind: 'sent'; waitMs: number }
  /** Not accepted; keep the message and try again after waitMs. */
  | { kind: 'retry'; waitMs: number; rateLimited: boolean; why: string }
  /** The webhook is gone or its token is wrong: stop using it. */
  | { kind: 'disabled'; why: string }
  /** Discord refused this message (400): drop it, keep the webhook. */
  | { kind: 'rejected'; why: string };

/** Seconds (float) as Discord writes them → ms, capped; undefined when absent or not a number. */
export function secondsToMs(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n) || n < 0) return undefined;
  return Math.min(MAX_WAIT_MS, Math.ceil(n * 1000));
}

export const backoffMs = (attempt: number): number => Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(attempt, 10));

function retryAfterOf(a: WebhookAnswer): number | undefined {
  const body = a.body;
  const fromBody = typeof body === 'object' && body !== null ? secondsToMs((body as Record<string, unknown>)['retry_after']) : undefined;
  return fromBody ?? secondsToMs(a.header('retry-after')) ?? secondsToMs(a.header('x-ratelimit-reset-after'));
}

/** `attempt`: how many times this message failed before (for the backoff of server errors). */
export function judgeAnswer(a: WebhookAnswer, attempt: number): Verdict {
  if (a.status >= 200 && a.status < 300) {
    const remaining = Number(a.header('x-ratelimit-remaining') ?? 'NaN');
    const reset = secondsToMs(a.header('x-ratelimit-reset-after'));
    return { kind: 'sent', waitMs: remaining === 0 && reset !== undefined ? reset : 0 };
  }
  if (a.status === 429) {
    const wait = retryAfterOf(a) ?? backoffMs(attempt);
    return { kind: 'retry', waitMs: wait, rateLimited: true, why: `Discord asked to wait ${(wait / 1000).toFixed(1)} s (rate limit)` };
  }
  if (a.status === 404) return { kind: 'disabled', why: 'Discord says this webhook does not exist any more (404): it was deleted. Create a new webhook and connect it again.' };
  if (a.status === 401 || a.status === 403) return { kind: 'disabled', why: `Discord refused the webhook's token (${a.status}): copy the webhook URL again and connect it again.` };
  if (a.status >= 400 && a.status < 500) return { kind: 'rejected', why: `Discord refused a message (${a.status})` };
  return { kind: 'retry', waitMs: backoffMs(attempt), rateLimited: false, why: `Discord answered ${a.status}; retrying` };
}

export const judgeFailure = (err: string, attempt: number): Verdict => ({
  kind: 'retry',
  waitMs: backoffMs(attempt),
  rateLimited: false,
  why: `Discord could not be reached (${err}); retrying`,
});
