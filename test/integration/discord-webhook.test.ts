import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { realClock } from '../../helper/discord/clock.js';
import type { DiscordEvent } from '../../helper/discord/events.js';
import { httpWebhookTransport } from '../../helper/discord/http-transport.js';
import { WebhookQueue } from '../../helper/discord/webhook-queue.js';
import { FakeDiscord } from '../lib/fake-discord.js';

// The webhook queue over real HTTP against a local server that answers as Discord does: what a
// channel would show (messages, their order, every event present) and whether the client ever
// sent a request while Discord had told it to wait.

let fake: FakeDiscord;
before(async () => {
  fake = new FakeDiscord();
  await fake.start();
});
after(() => fake.stop());

let nextId = 100000000000000000n;
function fresh(): { url: string; id: string } {
  const id = String(nextId++);
  fake.webhooks.add(id);
  fake.messages.length = 0;
  fake.requests.length = 0;
  fake.early = 0;
  fake.script = [];
  return { url: fake.url(id), id };
}

const join = (i: number): DiscordEvent => ({ kind: 'player-joined', party: 'LAN night', player: `Player${i}` });
const names = (n: number) => Array.from({ length: n }, (_, i) => `**Player${i}**`);

function assertAllInOrder(text: string, expected: string[]): void {
  let at = -1;
  for (const n of expected) {
    const i = text.indexOf(n, at + 1);
    assert.ok(i > at, `${n} missing or out of order`);
    at = i;
  }
}

for (const n of [1, 16, 100, 300]) {
  test(`a burst of ${n} joins: every name arrives, in order, in as few messages as fit`, async () => {
    const w = fresh();
    const q = new WebhookQueue({ transport: httpWebhookTransport(w.url), clock: realClock, mergeWindowMs: 300 });
    for (let i = 0; i < n; i++) q.push(join(i));
    await fake.waitFor(() => q.status().pending === 0 && fake.messages.length > 0, 30_000);
    const text = fake.messages.map((m) => m.content).join('\n');
    assertAllInOrder(text, names(n));
    for (const m of fake.messages) assert.ok(m.content.length <= 2000);
    for (const m of fake.messages) assert.deepEqual(m.body['allowed_mentions'], { parse: [] });
    assert.equal(fake.early, 0, 'a request came while Discord had said to wait');
    console.log(`# burst of ${n} events -> ${fake.messages.length} message(s), ${fake.requests.length} request(s)`);
    q.close();
  });
}

test('events trickling in faster than the bucket allows (60 events at 20/s, bucket 5 per 2 s): no 429, nothing early, nothing lost', async () => {
  const w = fresh();
  const q = new WebhookQueue({ transport: httpWebhookTransport(w.url), clock: realClock, mergeWindowMs: 0 });
  for (let i = 0; i < 60; i++) {
    q.push(i % 3 === 2 ? { kind: 'player-lost', party: 'LAN night', player: `Player${i}` } : join(i));
    await new Promise((r) => setTimeout(r, 50));
  }
  await fake.waitFor(() => q.status().pending === 0, 20_000);
  assertAllInOrder(fake.messages.map((m) => m.content).join('\n'), names(60));
  assert.equal(fake.early, 0);
  assert.equal(fake.requests.filter((r) => r.status === 429).length, 0, 'the client ignored X-RateLimit-Remaining: 0');
  console.log(`# 60 events over 3 s -> ${fake.messages.length} messages`);
  q.close();
});

test('a 429 storm: each retry waits retry_after, events keep merging, then everything arrives in order', async () => {
  const w = fresh();
  fake.script = Array.from({ length: 6 }, () => ({ status: 429, retryAfterS: 0.7 }));
  const q = new WebhookQueue({ transport: httpWebhookTransport(w.url), clock: realClock, mergeWindowMs: 0 });
  const t0 = Date.now();
  for (let i = 0; i < 40; i++) {
    q.push(join(i));
    await new Promise((r) => setTimeout(r, 100));
  }
  await fake.waitFor(() => q.status().pending === 0, 30_000);
  const rl = fake.requests.filter((r) => r.status === 429);
  assert.equal(rl.length, 6);
  for (let i = 1; i < fake.requests.length; i++) {
    if (fake.requests[i - 1]!.status === 429) assert.ok(fake.requests[i]!.at - fake.requests[i - 1]!.at >= 690, `retry ${i} after ${fake.requests[i]!.at - fake.requests[i - 1]!.at} ms`);
  }
  assert.equal(fake.early, 0);
  assertAllInOrder(fake.messages.map((m) => m.content).join('\n'), names(40));
  console.log(`# 429 storm (6 x retry_after 0.7 s) with 40 events over 4 s: ${fake.requests.length} requests, ${fake.messages.length} messages, all delivered after ${Date.now() - t0} ms`);
  q.close();
});

test('a deleted webhook (404) disables the queue and says what to do; nothing more is sent', async () => {
  fresh();
  const gone = fake.url('999999999999999999');
  let told = '';
  const q = new WebhookQueue({ transport: httpWebhookTransport(gone), clock: realClock, mergeWindowMs: 0, onDisabled: (why) => (told = why) });
  q.push(join(1));
  const end = Date.now() + 5000;
  while (q.status().state !== 'disabled' && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  assert.equal(q.status().state, 'disabled');
  assert.match(told, /404.*Create a new webhook/);
  q.push(join(2));
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(fake.requests.length, 1);
  q.close();
});

test('slow answers: one request at a time, in order', async () => {
  const w = fresh();
  fake.script = [{ status: 204, delayMs: 1500 }, { status: 204, delayMs: 800 }];
  const q = new WebhookQueue({ transport: httpWebhookTransport(w.url), clock: realClock, mergeWindowMs: 0 });
  q.push(join(0));
  await new Promise((r) => setTimeout(r, 200));
  q.push(join(1));
  q.push(join(2));
  await fake.waitFor(() => q.status().pending === 0 && fake.messages.length >= 2, 10_000);
  assert.match(fake.messages[0]!.content, /Player0/);
  assertAllInOrder(fake.messages.map((m) => m.content).join('\n'), names(3));
  assert.ok(fake.requests[1]!.at >= fake.requests[0]!.at + 1500, 'a second request went out while the first was unanswered');
  q.close();
});
