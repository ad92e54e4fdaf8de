import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { credentials, Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { DiscordServiceClient, DiscordWebhookState, type DiscordStatus } from '../../helper/gen/lanrage/v1/discord.js';
import { PartyServiceClient, type Party } from '../../helper/gen/lanrage/v1/party.js';
import { ControlClient } from '../../helper/controlclient/client.js';
import { parseInviteLink } from '../../helper/controlclient/invite.js';
import { createLogger } from '../../helper/core/log.js';
import { startHelper, removeStateDir, type HelperProcess } from '../lib/helper-process.js';
import { HELPER_MAIN, requireOrSkip } from '../lib/repo.js';
import { FakeDiscord } from '../lib/fake-discord.js';

// A real helper posting party news to a fake Discord (Discord's servers cannot be reached here):
// the API (validation, the secret never returned), then a real party on the embedded control
// server, with members joining, leaving, being kicked and losing their connection as real
// control-plane clients. What is asserted is what the channel shows.

const WEBHOOK_ID = '223456789012345678';
const TOKEN = 'Secret_Token-0123456789abcdefghijklmnop';
let fake: FakeDiscord;
let h: HelperProcess;
let discord: DiscordServiceClient;
let party: PartyServiceClient;
const md = new Metadata();
const friends: ControlClient[] = [];

before(async () => {
  fake = new FakeDiscord();
  await fake.start();
  fake.webhooks.add(WEBHOOK_ID);
  h = await startHelper({ pwaDir: null, extraArgs: ['--discord-test-loopback'] });
  md.set('authorization', `Bearer ${h.token}`);
  discord = new DiscordServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  party = new PartyServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
});
after(async () => {
  for (const f of friends) await f.close().catch(() => {});
  discord.close();
  party.close();
  await h.stop();
  removeStateDir(h.stateDir);
  await fake.stop();
});

const call = <T>(fn: (cb: (e: ServiceError | null, r: T) => void) => unknown): Promise<T> =>
  new Promise((resolve, reject) => fn((e, r) => (e ? reject(e) : resolve(r))));
const refused = (p: Promise<unknown>, code: Status, msg: RegExp) =>
  assert.rejects(p, (e: ServiceError) => {
    assert.equal(e.code, code, `${Status[e.code]}: ${e.details}`);
    assert.match(e.details, msg);
    return true;
  });
const getStatus = async (): Promise<DiscordStatus> => (await call<{ status?: DiscordStatus }>((cb) => discord.getDiscordStatus({}, cb))).status!;
const connect = (webhookUrl: string, m: Metadata | null = md) =>
  call<{ status?: DiscordStatus }>((cb) => (m ? discord.connectDiscord({ webhookUrl, clientId: '', richPresence: false }, m, cb) : discord.connectDiscord({ webhookUrl, clientId: '', richPresence: false }, cb)));

test('the webhook URL is checked, needs the token, and is never returned', async () => {
  const before = await getStatus();
  assert.equal(before.webhookConfigured, false);
  assert.equal(before.webhookState, DiscordWebhookState.DISCORD_WEBHOOK_STATE_NONE);
  await refused(connect(fake.url(WEBHOOK_ID, TOKEN), null), Status.UNAUTHENTICATED, /install token/);
  for (const [u, why] of [
    ['https://evil.example/api/webhooks/223456789012345678/' + TOKEN, /Discord's webhook hosts/],
    ['http://discord.com/api/webhooks/223456789012345678/' + TOKEN, /https/],
    [`http://10.1.2.3:${fake.port}/api/webhooks/223456789012345678/${TOKEN}`, /https/],
    ['https://discord.com/api/webhooks/1/2', /id/],
    ['javascript:alert(1)', /https|Discord/],
  ] as const) {
    await refused(connect(u), Status.INVALID_ARGUMENT, why);
  }
  await refused(call((cb) => discord.connectDiscord({ webhookUrl: '', clientId: '12; rm -rf /', richPresence: false }, md, cb)), Status.INVALID_ARGUMENT, /client_id/);
  assert.equal((await getStatus()).webhookConfigured, false, 'a refused call changed something');
  assert.equal(fake.requests.length, 0);

  const res = await connect(fake.url(WEBHOOK_ID, TOKEN));
  assert.equal(res.status?.webhookConfigured, true);
  await fake.waitFor((m) => m.length === 1, 10_000, 'the hello message');
  assert.match(fake.messages[0]!.content, /will post party news in this channel/);
  const st = await getStatus();
  assert.equal(st.connected, true);
  assert.equal(st.webhookState, DiscordWebhookState.DISCORD_WEBHOOK_STATE_OK);
  assert.equal(st.sentMessages, 1);
  const wire = Buffer.from(JSON.stringify([res, st]));
  assert.ok(!wire.includes(TOKEN) && !wire.includes(WEBHOOK_ID), 'the API returned the webhook URL');
});

test('a helper started without --discord-test-loopback refuses a loopback webhook', async () => {
  const plain = await startHelper({ pwaDir: null });
  const c = new DiscordServiceClient(`127.0.0.1:${plain.grpcPort}`, credentials.createInsecure());
  const m = new Metadata();
  m.set('authorization', `Bearer ${plain.token}`);
  try {
    await refused(call((cb) => c.connectDiscord({ webhookUrl: fake.url(WEBHOOK_ID, TOKEN), clientId: '', richPresence: false }, m, cb)), Status.INVALID_ARGUMENT, /https/);
  } finally {
    c.close();
    await plain.stop();
    removeStateDir(plain.stateDir);
  }
});

async function friend(name: string, invite: string): Promise<ControlClient> {
  const link = parseInviteLink(invite);
  const c = await ControlClient.connect({
    url: link.controlUrl,
    identity: generateKeyPairSync('ed25519').privateKey,
    name,
    wgPublicKey: randomBytes(32).toString('base64'),
    discoPublicKey: randomBytes(32).toString('base64'),
    log: createLogger({}, () => {}),
  });
  friends.push(c);
  await c.joinParty(link.partyId, link.secret);
  return c;
}

const contents = () => fake.messages.map((m) => m.content);

test('party news in the channel: created, a burst of joins as one message, left, kicked, lost', { timeout: 90_000 }, async (t) => {
  if (!requireOrSkip(process.getuid?.() === 0, 'root (the party creates a WireGuard interface)', t)) return;
  const created = await call<{ party?: Party }>((cb) => party.createParty({ name: 'LAN night' }, md, cb));
  const invite = created.party!.inviteLink;
  await fake.waitFor((m) => m.some((x) => x.content.includes('started the LANrage party **LAN night**')), 10_000, 'party created');

  const n0 = fake.messages.length;
  const [alice, bob, carol, dave] = await Promise.all(['Alice', 'Bob', 'Carol', 'Dave'].map((n) => friend(n, invite)));
  await fake.waitFor((m) => ['Alice', 'Bob', 'Carol', 'Dave'].every((n) => m.slice(n0).some((x) => x.content.includes(`**${n}**`))), 10_000, 'joins');
  await new Promise((r) => setTimeout(r, 2000));
  const joins = contents().slice(n0);
  console.log(`# 4 members joining at once -> ${joins.length} message(s): ${JSON.stringify(joins)}`);
  assert.equal(joins.length, 1, 'a burst of joins was not merged');
  assert.match(joins[0]!, /➕ .*joined \*\*LAN night\*\*/);

  await alice!.leaveParty();
  await fake.waitFor((m) => m.some((x) => x.content.includes('➖ **Alice** left **LAN night**')), 10_000, 'Alice left');
  await call((cb) => party.kickPartyMember({ deviceId: bob!.deviceId }, md, cb));
  await fake.waitFor((m) => m.some((x) => x.content.includes('**Bob** was removed from **LAN night**')), 10_000, 'Bob kicked');
  // Carol's machine goes away without leaving: the control plane marks her away after 15 s.
  await carol!.close();
  await fake.waitFor((m) => m.some((x) => x.content.includes('⚠️ **Carol** lost the connection to **LAN night**')), 30_000, 'Carol lost');
  void dave;
  const order = ['started the LANrage party', 'joined', 'Alice** left', 'Bob** was removed', 'Carol** lost'].map((s) => contents().findIndex((c) => c.includes(s)));
  assert.deepEqual([...order].sort((a, b) => a - b), order, `messages out of order: ${JSON.stringify(contents())}`);
  assert.equal(fake.early, 0);
});

test('Discord deletes the webhook (404): the helper stops using it and GetDiscordStatus says what to do', async (t) => {
  if (!requireOrSkip(process.getuid?.() === 0, 'root (the party creates a WireGuard interface)', t)) return;
  fake.webhooks.delete(WEBHOOK_ID);
  const p = (await call<{ party?: Party }>((cb) => party.getParty({}, cb))).party;
  assert.ok(p, 'still in the party');
  await friend('Erin', p.inviteLink);
  const end = Date.now() + 10_000;
  let st = await getStatus();
  while (st.webhookState !== DiscordWebhookState.DISCORD_WEBHOOK_STATE_DISABLED && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    st = await getStatus();
  }
  assert.equal(st.webhookState, DiscordWebhookState.DISCORD_WEBHOOK_STATE_DISABLED);
  assert.equal(st.connected, false);
  assert.match(st.webhookProblem, /does not exist.*connect it again/);
  const requests = fake.requests.length;
  await friend('Frank', p.inviteLink);
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(fake.requests.length, requests, 'a disabled webhook was used again');
});

test('lanrage discord (CLI): connect a new webhook from stdin, status as text and --json, never the URL', async () => {
  fake.webhooks.add(WEBHOOK_ID);
  const n = fake.messages.length;
  const cli = (args: string[], input?: string) => {
    const r = spawnSync(process.execPath, [HELPER_MAIN, 'discord', ...args, '--grpc', `127.0.0.1:${h.grpcPort}`, '--state-dir', h.stateDir], { input: input ?? '', encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!r.stdout.includes(TOKEN), 'the CLI printed the webhook token');
    return r.stdout;
  };
  const connected = JSON.parse(cli(['connect', '-', '--json'], fake.url(WEBHOOK_ID, TOKEN) + '\n')) as { webhookConfigured: boolean };
  assert.equal(connected.webhookConfigured, true);
  await fake.waitFor((m) => m.length > n && m.at(-1)!.content.includes('will post party news'), 10_000, 'hello after reconnecting');
  const st = JSON.parse(cli(['--json'])) as { webhookState: string; sentMessages: number };
  assert.equal(st.webhookState, 'ok');
  assert.match(cli([]), /webhook +working/);
});

test('the webhook survives a restart, is stored in helper.db, and DisconnectDiscord forgets it', async () => {
  await h.stop();
  const stored = ['helper.db', 'helper.db-wal'].map((f) => join(h.stateDir, f)).filter((f) => existsSync(f)).some((f) => readFileSync(f).includes(TOKEN));
  assert.ok(stored, 'the webhook is not in helper.db');
  h = await startHelper({ pwaDir: null, stateDir: h.stateDir, extraArgs: ['--discord-test-loopback'] });
  md.set('authorization', `Bearer ${h.token}`);
  discord.close();
  discord = new DiscordServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  party.close();
  party = new PartyServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  assert.equal((await getStatus()).webhookConfigured, true);
  await call((cb) => discord.disconnectDiscord({}, md, cb));
  const st = await getStatus();
  assert.equal(st.webhookConfigured, false);
  assert.equal(st.webhookState, DiscordWebhookState.DISCORD_WEBHOOK_STATE_NONE);
});
