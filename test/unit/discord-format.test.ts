import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemberPresence, Party, type PartyMember } from '../../helper/gen/lanrage/v1/party.js';
import { burstLines, escapeText, formatBurst, MAX_CONTENT, packLines } from '../../helper/discord/format.js';
import { GameDetection } from '../../helper/gen/lanrage/v1/games.js';
import { GameServer } from '../../helper/gen/lanrage/v1/servers.js';
import { diffParty } from '../../helper/discord/party-diff.js';
import { gameEvent, serverEvent } from '../../helper/discord/game-events.js';
import type { DiscordEvent } from '../../helper/discord/events.js';
import { parseWebhookUrl } from '../../helper/discord/webhook-url.js';

const joined = (player: string): DiscordEvent => ({ kind: 'player-joined', party: 'Friday', player });

test('a burst of joins is one line naming everybody, in order', () => {
  const msgs = formatBurst(['Alice', 'Bob', 'Carol'].map(joined));
  assert.equal(msgs.length, 1);
  assert.equal(msgs[0], '➕ **Alice**, **Bob** and **Carol** joined **Friday**');
});

test('different kinds keep their order; a join, a leave and a join again are three lines', () => {
  const lines = burstLines([joined('Alice'), { kind: 'player-left', party: 'Friday', player: 'Alice', reason: 'left' }, joined('Alice'), joined('Bob')]);
  assert.deepEqual(lines, ['➕ **Alice** joined **Friday**', '➖ **Alice** left **Friday**', '➕ **Alice** and **Bob** joined **Friday**']);
});

test('leave reasons, lost and back say what happened', () => {
  const lines = burstLines([
    { kind: 'player-left', party: 'P', player: 'A', reason: 'kicked' },
    { kind: 'player-left', party: 'P', player: 'B', reason: 'timed-out' },
    { kind: 'player-lost', party: 'P', player: 'C' },
    { kind: 'player-back', party: 'P', player: 'C' },
  ]);
  assert.deepEqual(lines, ['➖ **A** was removed from **P**', '➖ **B** timed out of **P**', '⚠️ **C** lost the connection to **P**', '✅ **C** is back in **P**']);
});

test('games and servers', () => {
  assert.deepEqual(
    burstLines([
      { kind: 'game-started', player: 'Alice', game: 'OpenArena' },
      { kind: 'game-started', player: 'Bob', game: 'OpenArena' },
      { kind: 'game-stopped', player: 'Alice', game: 'OpenArena' },
      { kind: 'server-up', name: 'Frag fest', game: 'OpenArena', address: '10.66.0.2:27960', players: 1, maxPlayers: 8 },
      { kind: 'server-down', name: 'Frag fest', game: 'OpenArena', address: '10.66.0.2:27960' },
    ]),
    [
      '🎮 **Alice** and **Bob** started playing **OpenArena**',
      '⏹️ **Alice** stopped playing **OpenArena**',
      '🟢 OpenArena server **Frag fest** is up at `10.66.0.2:27960` (1/8 players)',
      '🔴 OpenArena server **Frag fest** at `10.66.0.2:27960` is down',
    ],
  );
});

test('hostile names cannot ping or format', () => {
  assert.equal(escapeText('@everyone'), '@\u200beveryone');
  assert.equal(escapeText('**bold** _x_ `y`'), '\\*\\*bold\\*\\* \\_x\\_ \\`y\\`');
  assert.ok(!formatBurst([joined('@here')])[0]!.includes('@here'));
});

test('nothing is lost: 300 different events pack into messages under 2000 characters that hold every name', () => {
  const events: DiscordEvent[] = [];
  for (let i = 0; i < 300; i++) events.push(i % 2 ? joined(`Player${i}`) : { kind: 'player-lost', party: 'Friday', player: `Player${i}` });
  const msgs = formatBurst(events);
  assert.ok(msgs.length > 1);
  for (const m of msgs) assert.ok(m.length <= MAX_CONTENT, `${m.length}`);
  const all = msgs.join('\n');
  for (let i = 0; i < 300; i++) assert.ok(all.includes(`**Player${i}**`), `Player${i} missing`);
  assert.deepEqual(packLines(['a', 'b'], 3), ['a\nb']);
  assert.deepEqual(packLines(['ab', 'c'], 3), ['ab', 'c']);
});

const member = (name: string, o: Partial<PartyMember> = {}): PartyMember => ({
  deviceId: `dev-${name}`,
  name,
  virtualIp: '10.66.0.9',
  isHost: false,
  isSelf: false,
  presence: MemberPresence.MEMBER_PRESENCE_ONLINE,
  joinedAt: new Date(0),
  ...o,
});
const party = (members: PartyMember[], id = 'p1'): Party => Party.fromPartial({ id, name: 'Friday', inviteLink: '', members, networkCidr: '10.66.0.0/16', createdAt: new Date(0) });
const host = member('Hosty', { isHost: true, isSelf: true });

test('the host helper reports creation, joins, leaves with reasons, lost and back', () => {
  assert.deepEqual(diffParty(undefined, party([host])), [{ kind: 'party-created', party: 'Friday', by: 'Hosty' }]);
  const a = party([host, member('Alice')]);
  assert.deepEqual(diffParty(party([host]), a), [{ kind: 'player-joined', party: 'Friday', player: 'Alice' }]);
  const away = party([host, member('Alice', { presence: MemberPresence.MEMBER_PRESENCE_AWAY })]);
  assert.deepEqual(diffParty(a, away), [{ kind: 'player-lost', party: 'Friday', player: 'Alice' }]);
  assert.deepEqual(diffParty(away, a), [{ kind: 'player-back', party: 'Friday', player: 'Alice' }]);
  assert.deepEqual(diffParty(a, party([host]), new Map([['dev-Alice', 'kicked']])), [{ kind: 'player-left', party: 'Friday', player: 'Alice', reason: 'kicked' }]);
  assert.deepEqual(diffParty(a, a), []);
  assert.deepEqual(diffParty(a, undefined), [{ kind: 'party-closed', party: 'Friday', by: 'Hosty' }]);
});

test('a member that is not the host stays quiet about membership; a resumed party is not announced again', () => {
  const me = member('Me', { isSelf: true });
  const h = member('Hosty', { isHost: true });
  assert.deepEqual(diffParty(undefined, party([h, me])), []);
  assert.deepEqual(diffParty(party([h, me]), party([h, me, member('Alice')])), []);
  assert.deepEqual(diffParty(undefined, party([host, member('Alice')])), []);
});

test('game and server events', () => {
  const d = GameDetection.fromPartial({ profileId: 'openarena', gameName: 'OpenArena', pid: 42, running: true });
  assert.deepEqual(gameEvent(d, 'Me', false), { kind: 'game-started', player: 'Me', game: 'OpenArena' });
  assert.equal(gameEvent(d, 'Me', true), undefined);
  assert.deepEqual(gameEvent({ ...d, running: false }, 'Me', true), { kind: 'game-stopped', player: 'Me', game: 'OpenArena' });
  const s = GameServer.fromPartial({ id: 's', name: 'Frag', gameProfileId: 'openarena', hostDeviceId: 'x', address: '10.66.0.1:27960', players: 0, maxPlayers: 8 });
  assert.equal(serverEvent(s, false, false, () => 'OpenArena')?.kind, 'server-up');
  assert.equal(serverEvent(s, false, true, () => 'OpenArena'), undefined);
  assert.equal(serverEvent(s, true, true, () => 'OpenArena')?.kind, 'server-down');
  assert.equal(serverEvent(s, true, false, () => 'OpenArena'), undefined);
});

const TOKEN = 'abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJ-0123456789';
test("webhook URLs: only Discord's hosts and path; loopback only when the helper was started for tests", () => {
  for (const host of ['discord.com', 'discordapp.com', 'canary.discord.com', 'ptb.discord.com']) {
    const w = parseWebhookUrl(`https://${host}/api/webhooks/123456789012345678/${TOKEN}`);
    assert.equal(typeof w, 'object', `${host}: ${String(w)}`);
  }
  assert.deepEqual(parseWebhookUrl(`https://discord.com/api/v10/webhooks/123456789012345678/${TOKEN}/`), { url: `https://discord.com/api/v10/webhooks/123456789012345678/${TOKEN}`, id: '123456789012345678' });
  const bad = [
    `http://discord.com/api/webhooks/123456789012345678/${TOKEN}`,
    `https://discord.com.evil.example/api/webhooks/123456789012345678/${TOKEN}`,
    `https://evil.example/api/webhooks/123456789012345678/${TOKEN}`,
    `https://discord.com:8443/api/webhooks/123456789012345678/${TOKEN}`,
    `https://user:pw@discord.com/api/webhooks/123456789012345678/${TOKEN}`,
    `https://discord.com/api/webhooks/123456789012345678/${TOKEN}?x=1`,
    `https://discord.com/api/webhooks/abc/${TOKEN}`,
    `https://discord.com/api/webhooks/123456789012345678/short`,
    `https://discord.com/api/webhooks/123456789012345678/${TOKEN}/slack`,
    `https://discord.com/api/channels/123456789012345678/${TOKEN}`,
    'not a url',
    '',
    `https://discord.com/api/webhooks/123456789012345678/${'a'.repeat(600)}`,
  ];
  for (const u of bad) assert.equal(typeof parseWebhookUrl(u), 'string', u);
  const local = `http://127.0.0.1:9999/api/webhooks/123456789012345678/${TOKEN}`;
  assert.equal(typeof parseWebhookUrl(local), 'string');
  assert.equal(typeof parseWebhookUrl(local, { allowLoopback: true }), 'object');
  assert.equal(typeof parseWebhookUrl(`http://10.0.0.1:9999/api/webhooks/123456789012345678/${TOKEN}`, { allowLoopback: true }), 'string');
});

test('a group bigger than one line continues on the next line: no "and N more"', () => {
  const lines = burstLines(Array.from({ length: 25 }, (_, i) => joined(`P${i}`)));
  assert.equal(lines.length, 2);
  for (let i = 0; i < 25; i++) assert.ok(lines.join('\n').includes(`**P${i}**`));
  assert.ok(!lines.join('\n').includes('more'));
});
