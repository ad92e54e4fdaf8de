import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Clock } from '../../helper/discord/clock.js';
import type { DiscordEvent } from '../../helper/discord/events.js';
import { judgeAnswer, MAX_WAIT_MS, type WebhookAnswer } from '../../helper/discord/rate-limit.js';
import { WebhookQueue } from '../../helper/discord/webhook-queue.js';

// The queue against a scripted Discord and a manual clock: what gets sent, when, in what order.

class FakeClock implements Clock {
  t = 1_000_000;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private next = 0;
  now(): number {
    return this.t;
  }
  after(ms: number, fn: () => void): () => void {
    const id = this.next++;
    this.timers.push({ at: this.t + Math.max(0, ms), fn, id });
    return () => (this.timers = this.timers.filter((x) => x.id !== id));
  }
  /** Runs timers up to t+ms, letting the queue's promises settle between them. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await new Promise((r) => setImmediate(r));
      this.timers.sort((a, b) => a.at - b.at);
      const first = this.timers[0];
      if (!first || first.at > end) break;
      this.timers.shift();
      this.t = first.at;
      first.fn();
    }
    this.t = end;
    await new Promise((r) => setImmediate(r));
  }
}

const answer = (status: number, headers: Record<string, string> = {}, body?: unknown): WebhookAnswer => ({
  status,
  header: (n) => headers[n.toLowerCase()] ?? null,
  body,
});

function setup(script: (n: number) => WebhookAnswer) {
  const clock = new FakeClock();
  const sent: { at: number; content: string }[] = [];
  const attempts: number[] = [];
  let disabled = '';
  const q = new WebhookQueue({
    clock,
    mergeWindowMs: 1000,
    transport: {
      post: async (content) => {
        attempts.push(clock.now());
        const a = script(attempts.length);
        if (a.status < 300) sent.push({ at: clock.now(), content });
        return a;
      },
    },
    onDisabled: (why) => (disabled = why),
  });
  return { clock, q, sent, attempts, disabled: () => disabled };
}

const join = (p: string): DiscordEvent => ({ kind: 'player-joined', party: 'P', player: p });

test('a burst of 16 joins within the merge window is one message', async () => {
  const s = setup(() => answer(204, { 'x-ratelimit-remaining': '4', 'x-ratelimit-reset-after': '2' }));
  for (let i = 0; i < 16; i++) {
    s.q.push(join(`P${i}`));
    await s.clock.advance(50);
  }
  await s.clock.advance(2000);
  assert.equal(s.sent.length, 1);
  for (let i = 0; i < 16; i++) assert.ok(s.sent[0]!.content.includes(`**P${i}**`));
});

test('remaining 0: the next message waits for reset-after, never earlier', async () => {
  const s = setup(() => answer(204, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset-after': '2.5' }));
  s.q.push(join('A'));
  await s.clock.advance(1100);
  assert.equal(s.sent.length, 1);
  s.q.push(join('B'));
  await s.clock.advance(2300);
  assert.equal(s.sent.length, 1, 'sent before the reset');
  await s.clock.advance(300);
  assert.equal(s.sent.length, 2);
  assert.ok(s.sent[1]!.at - s.sent[0]!.at >= 2500);
});

test('a 429 storm: every retry waits retry_after, events that arrive meanwhile merge, nothing is lost or reordered', async () => {
  // Discord answers 429 five times, then accepts.
  const s = setup((n) => (n <= 5 ? answer(429, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset-after': '3.2', 'retry-after': '4' }, { message: 'You are being rate limited.', retry_after: 3.2, global: false }) : answer(204)));
  s.q.push(join('A'));
  for (let i = 0; i < 20; i++) {
    await s.clock.advance(900);
    s.q.push(join(`B${i}`));
  }
  await s.clock.advance(30_000);
  for (let i = 1; i < s.attempts.length && i <= 5; i++) assert.ok(s.attempts[i]! - s.attempts[i - 1]! >= 3200, `attempt ${i} came ${s.attempts[i]! - s.attempts[i - 1]!} ms after a 429 asking 3.2 s`);
  const text = s.sent.map((m) => m.content).join('\n');
  const order = ['A', ...Array.from({ length: 20 }, (_, i) => `B${i}`)].map((p) => text.indexOf(`**${p}**`));
  assert.ok(order.every((x) => x >= 0), 'an event was lost');
  assert.deepEqual([...order].sort((a, b) => a - b), order, 'events out of order');
  assert.ok(s.sent.length <= 3, `${s.sent.length} messages for 21 events`);
  assert.equal(s.q.status().pending, 0);
});

test('an absurd retry_after is capped; the request is tried again after the cap', async () => {
  const s = setup((n) => (n === 1 ? answer(429, {}, { retry_after: 1e9 }) : answer(204)));
  s.q.push(join('A'));
  await s.clock.advance(1000);
  assert.equal(s.attempts.length, 1);
  assert.equal(s.q.status().state, 'rate-limited');
  await s.clock.advance(MAX_WAIT_MS - 10);
  assert.equal(s.attempts.length, 1);
  await s.clock.advance(20);
  assert.equal(s.sent.length, 1);
  assert.equal(s.q.status().state, 'ok');
});

test('a 404 disables the webhook, drops what waits, says why and sends nothing more', async () => {
  const s = setup(() => answer(404, {}, { message: 'Unknown Webhook', code: 10015 }));
  s.q.push(join('A'));
  await s.clock.advance(1100);
  assert.equal(s.q.status().state, 'disabled');
  assert.match(s.disabled(), /does not exist.*Create a new webhook/);
  s.q.push(join('B'));
  await s.clock.advance(120_000);
  assert.equal(s.attempts.length, 1);
});

test('network errors back off and retry; the message arrives once Discord answers', async () => {
  const clock = new FakeClock();
  let n = 0;
  const sent: string[] = [];
  const q = new WebhookQueue({
    clock,
    mergeWindowMs: 0,
    transport: {
      post: async (c) => {
        if (++n <= 3) throw new Error('ECONNREFUSED');
        sent.push(c);
        return answer(204);
      },
    },
  });
  q.push(join('A'));
  await clock.advance(1);
  assert.equal(q.status().state, 'retrying');
  await clock.advance(1000 + 2000 + 4000 + 10);
  assert.equal(sent.length, 1);
});

test('judgeAnswer reads the documented headers', () => {
  assert.deepEqual(judgeAnswer(answer(204, { 'x-ratelimit-remaining': '3', 'x-ratelimit-reset-after': '1' }), 0), { kind: 'sent', waitMs: 0 });
  assert.deepEqual(judgeAnswer(answer(200, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset-after': '0.4' }), 0), { kind: 'sent', waitMs: 400 });
  const r = judgeAnswer(answer(429, { 'retry-after': '7' }, { retry_after: 'garbage' }), 0);
  assert.equal(r.kind === 'retry' && r.waitMs, 7000);
  assert.equal(judgeAnswer(answer(400), 0).kind, 'rejected');
  assert.equal(judgeAnswer(answer(401), 0).kind, 'disabled');
  assert.equal(judgeAnswer(answer(503), 2).kind, 'retry');
});
