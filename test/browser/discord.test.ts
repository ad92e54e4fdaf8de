// The Discord card of the PWA's settings page in real Chromium against a real helper posting to
// a fake Discord: the state a user sees, the webhook never shown back, validation, Rich Presence
// settings saved and Disconnect. Browser-side code is passed as strings (no DOM library here).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, Metadata } from '@grpc/grpc-js';
import { DiscordServiceClient, type DiscordStatus } from '../../helper/gen/lanrage/v1/discord.js';
import { startHelper, removeStateDir, type HelperProcess } from '../lib/helper-process.js';
import { FakeDiscord } from '../lib/fake-discord.js';
import { browserReady, call, canRun, launchBrowser, until, type Browser } from './browser-lib.js';

const WEBHOOK_ID = '323456789012345678';
const TOKEN = 'Browser_Secret-0123456789abcdefghijklmn';
let helper: HelperProcess | undefined;
let browser: Browser | undefined;
let fake: FakeDiscord;
let client: DiscordServiceClient;
const md = new Metadata();

before(async () => {
  fake = new FakeDiscord();
  await fake.start();
  fake.webhooks.add(WEBHOOK_ID);
  if (!canRun()) return;
  helper = await startHelper({ extraArgs: ['--discord-test-loopback'] });
  md.set('authorization', `Bearer ${helper.token}`);
  client = new DiscordServiceClient(`127.0.0.1:${helper.grpcPort}`, credentials.createInsecure());
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  client?.close();
  if (helper) {
    await helper.stop();
    removeStateDir(helper.stateDir);
  }
  await fake.stop();
});

const status = async (): Promise<DiscordStatus> => (await call<{ status?: DiscordStatus }>((cb) => client.getDiscordStatus({}, cb))).status!;

test('the Discord card: state, hidden webhook, validation, Rich Presence, Disconnect', { timeout: 90_000 }, async (t) => {
  if (!browserReady(t) || !browser || !helper) return;
  const page = browser.page;
  const id = (x: string) => page.getByTestId(x);
  const base = `http://localhost:${helper.httpPort}`;
  await page.goto(`${base}/#/settings`);
  await until('the Discord card', 20_000, async () => /No webhook/.test((await id('discord-state').textContent()) ?? ''));

  await id('discord-webhook').fill('https://evil.example/api/webhooks/1/2');
  await until('a validation message', 30_000, async () => /Only Discord webhook URLs/.test((await id('discord-webhook-error').textContent()) ?? ''));
  assert.equal(await id('discord-save').isDisabled(), true);
  await id('discord-webhook').fill('');

  // A webhook set through the API (the fake's loopback URL, which the page itself would refuse).
  await call((cb) => client.connectDiscord({ webhookUrl: fake.url(WEBHOOK_ID, TOKEN), clientId: '', richPresence: false }, md, cb));
  await fake.waitFor((m) => m.length === 1, 10_000, 'hello');
  await page.reload();
  await until('the working state', 20_000, async () => /Working: 1 message sent/.test((await id('discord-state').textContent()) ?? ''));
  assert.equal(await id('discord-webhook').inputValue(), '', 'the stored webhook was shown');
  assert.ok(!(await page.content()).includes(TOKEN));

  await id('discord-rich-presence').check();
  assert.equal(await id('discord-save').isDisabled(), true, 'Rich Presence without an application id');
  await id('discord-client-id').fill('456789012345678901');
  await id('discord-save').click();
  await until('saved', 30_000, async () => /Saved/.test((await id('discord-result').textContent()) ?? ''));
  const st = await status();
  assert.equal(st.richPresence, true);
  assert.equal(st.clientId, '456789012345678901');
  assert.equal(st.webhookConfigured, true, 'saving without a new URL dropped the webhook');

  // Discord deletes the webhook: the card says so within its 5 s refresh.
  fake.webhooks.delete(WEBHOOK_ID);
  await call((cb) => client.connectDiscord({ webhookUrl: fake.url(WEBHOOK_ID, TOKEN), clientId: '', richPresence: true }, md, cb));
  await until('the stopped state', 20_000, async () => /Stopped: .*does not exist/.test((await id('discord-state').textContent()) ?? ''));

  await id('discord-disconnect').click();
  await until('disconnected', 30_000, async () => /Disconnected/.test((await id('discord-result').textContent()) ?? ''));
  const after = await status();
  assert.equal(after.webhookConfigured, false);
  assert.equal(after.richPresence, false);
});
