// The party page in real Chromium against two real helpers, each in its own network namespace
// behind a NAT of the lab, sharing a party through the lab's control server: create, invite
// (link, QR, browser link), refused invites, a friend joining from the browser link, the path
// and a ping seen from the page, kick, leave. The helpers' PWAs are exposed on this machine's
// loopback. Browser-side code is passed as strings: this file compiles without the DOM library.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:net';
import type { Locator, Page } from 'playwright-core';
import { toString as qrToString } from 'qrcode';
import { createLab, labAvailable, type Lab, type LabSite } from '../lab/lab.js';
import { PartyLab, type PartyJson } from '../lab/party-lab.js';
import { exposeNamespacePort } from '../lab/ns-expose.js';
import { requireOrSkip } from '../lib/repo.js';
import { DESKTOP, PHONE, browserReady, canRun, freePort, launchBrowser, reportPageErrors, shot, text, until, waitLive, type Browser } from './browser-lib.js';

// Mirrors pwa/src/components/lr-qr.ts QR_OPTIONS: the same text with the same options must give
// the same SVG, which proves the page's QR code encodes the invite link.
const QR_OPTIONS = { type: 'svg', errorCorrectionLevel: 'M', margin: 2 } as const;
const INVITE_RE = /^lanrage:\/\/join\?c=[A-Za-z0-9%._~-]+&p=[a-z2-7]{16}&s=[A-Za-z0-9_-]{43}$/;
const PATH_STATES = ['connecting', 'direct', 'relayed', 'unreachable'];

let lab: Lab | undefined;
let pl: PartyLab | undefined;
let siteA: LabSite;
let siteB: LabSite;
const exposed: Server[] = [];
let browser: Browser | undefined;
let pageA: Page;
let pageB: Page;
let baseA = '';
let baseB = '';
let invite = '';
let labWhy = '';


/** The helper's own answer (the real CLI in its namespace), not the page's. */
async function nativeParty(site: LabSite): Promise<PartyJson['party'] | undefined> {
  return (await pl!.cli<PartyJson>(site, ['party'])).party ?? undefined;
}

const selfId = (p: PartyJson['party'] | undefined): string => p?.members.find((m) => m.isSelf)?.deviceId ?? '';

const inParty = (page: Page, state: 'true' | 'false') =>
  page.waitForSelector(`[data-testid="party-view"][data-in-party="${state}"]`, { timeout: 20_000 });

const memberRow = (page: Page, deviceId: string): Locator => page.locator(`[data-testid="member"][data-device-id="${deviceId}"]`);


before(async () => {
  // Nothing is started when the suite will skip; each test checks `browser` below.
  const avail = await labAvailable();
  labWhy = avail.why ?? '';
  if (!canRun() || !avail.ok) return;
  lab = await createLab({ sites: [{ name: 'a', kind: 'port-restricted' }, { name: 'b', kind: 'port-restricted' }] });
  pl = new PartyLab(lab);
  siteA = lab.site('a');
  siteB = lab.site('b');
  await pl.startControl();
  const [portA, portB] = [await freePort(), await freePort()];
  await Promise.all([
    pl.startHelper(siteA, { extraArgs: ['--allow-host', `localhost:${portA}`] }),
    pl.startHelper(siteB, { extraArgs: ['--allow-host', `localhost:${portB}`] }),
  ]);
  // Both namespaces share this machine's host name: tell the players apart.
  await pl.cli(siteA, ['settings', 'set', 'device_name', 'Alice']);
  await pl.cli(siteB, ['settings', 'set', 'device_name', 'Bob']);
  exposed.push(await exposeNamespacePort(lab, siteA.host.ns, portA), await exposeNamespacePort(lab, siteB.host.ns, portB));
  baseA = `http://localhost:${portA}`;
  baseB = `http://localhost:${portB}`;
  browser = await launchBrowser();
  pageA = browser.page;
  pageB = await browser.context.newPage();
  reportPageErrors(pageB, 'friend');
});

after(async () => {
  await browser?.close();
  for (const s of exposed) s.close();
  await lab?.destroy();
  pl?.cleanup();
});

function ready(t: { skip(msg: string): void }): boolean {
  if (!browserReady(t)) return false;
  if (!requireOrSkip(lab !== undefined || labWhy === '', `network lab (${labWhy})`, t)) return false;
  if (!browser || !lab || !pl) throw new Error('setup failed: no browser or lab (see the before hook)');
  return true;
}

test('outside a party: the forms check the name and the link before sending', async (t) => {
  if (!ready(t)) return;
  await pageA.goto(`${baseA}/#/party`);
  await waitLive(pageA, 30_000);
  await inParty(pageA, 'false');
  assert.equal(await pageA.getByTestId('nav-party').getAttribute('aria-current'), 'page');

  const name = pageA.getByTestId('create-name');
  assert.notEqual(await name.inputValue(), '', 'no suggested party name');
  await name.fill('-dash first');
  assert.match(await text(pageA.getByTestId('create-error')), /Start with a letter or a digit/);
  assert.equal(await pageA.getByTestId('create-submit').isDisabled(), true);
  await name.fill('x'.repeat(49));
  assert.match(await text(pageA.getByTestId('create-error')), /At most 48 characters/);
  await name.fill('semi;colon');
  assert.match(await text(pageA.getByTestId('create-error')), /letters, digits, spaces/);

  const link = pageA.getByTestId('join-link');
  assert.equal(await pageA.getByTestId('join-submit').isDisabled(), true, 'Join is enabled with no link');
  await link.fill('https://example.com/party');
  assert.match(await text(pageA.getByTestId('join-error')), /holds no invite link/);
  await link.fill('lanrage://join?c=x&p=short&s=short');
  assert.match(await text(pageA.getByTestId('join-error')), /incomplete or damaged/);
  assert.equal(await pageA.getByTestId('join-submit').isDisabled(), true);
  await link.fill('');

  await shot(pageA, 'party-outside-desktop', DESKTOP);
  await shot(pageA, 'party-outside-phone', PHONE);
  await pageA.setViewportSize(DESKTOP);
});

test('creating a party shows the invite link, a QR code of it and the link for browsers', async (t) => {
  if (!ready(t)) return;
  const partyName = `LAN test ${process.pid % 1000}!`;
  await pageA.getByTestId('create-name').fill(partyName);
  await pageA.getByTestId('create-submit').click();
  await inParty(pageA, 'true');
  assert.equal(await text(pageA.getByTestId('party-name')), partyName);

  const stored = await nativeParty(siteA);
  assert.ok(stored, 'the helper is not in a party after Create');
  assert.equal(stored.name, partyName);
  invite = stored.inviteLink;
  assert.match(invite, INVITE_RE);
  assert.equal(await pageA.getByTestId('invite-link').inputValue(), invite);
  assert.equal(
    await pageA.getByTestId('friend-link').inputValue(),
    `http://localhost:8666/#/join?invite=${encodeURIComponent(invite)}`,
  );

  // The QR image is the SVG that qrcode makes of the invite link, nothing else.
  const img = pageA.getByTestId('invite-qr').getByTestId('qr-img');
  await img.waitFor({ timeout: 30_000 });
  const src = (await img.getAttribute('src')) ?? '';
  const prefix = 'data:image/svg+xml;charset=utf-8,';
  assert.ok(src.startsWith(prefix), `QR src is not an SVG data URL: ${src.slice(0, 60)}`);
  assert.equal(decodeURIComponent(src.slice(prefix.length)), await qrToString(invite, QR_OPTIONS));
  type ImageLike = { decode(): Promise<void>; getBoundingClientRect(): { width: number } };
  const shownWidth = await img.evaluate(async (el: unknown) => {
    await (el as ImageLike).decode();
    return (el as ImageLike).getBoundingClientRect().width;
  });
  assert.ok(shownWidth >= 150, `the QR image is ${shownWidth} px wide`);

  // Copy puts the exact link on the clipboard.
  await browser!.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: baseA });
  await pageA.getByTestId('invite-copy').click();
  await pageA.getByTestId('invite-copied').getByText('Copied').waitFor({ timeout: 30_000 });
  assert.equal(await pageA.evaluate('navigator.clipboard.readText()'), invite);

  // Alone: the host and "you", no ping or kick buttons for nobody.
  const self = memberRow(pageA, selfId(stored));
  assert.equal(await self.getAttribute('data-host'), 'true');
  assert.match(await text(self), /you/i);
  assert.equal(await pageA.getByTestId('ping-button').count(), 0);
  await pageA.getByTestId('alone').waitFor();

  await shot(pageA, 'party-created-desktop', DESKTOP, true);
  await shot(pageA, 'party-created-phone', PHONE);
  await pageA.setViewportSize(DESKTOP);
});

test('a wrong invite secret and a broken server address are told in plain words', async (t) => {
  if (!ready(t) || !invite) return;
  const secret = /&s=([A-Za-z0-9_-]{43})$/.exec(invite)![1]!;
  let wrong = randomBytes(32).toString('base64url');
  if (wrong === secret) wrong = randomBytes(32).toString('base64url');
  const badSecret = invite.replace(`&s=${secret}`, `&s=${wrong}`);

  // The friend opens the browser link on their own helper: the join form is filled, not sent.
  await pageB.goto(`${baseB}/#/join?invite=${encodeURIComponent(badSecret)}`);
  await waitLive(pageB, 30_000);
  await inParty(pageB, 'false');
  assert.equal(await pageB.getByTestId('join-link').inputValue(), badSecret);
  assert.equal(await pageB.getByTestId('nav-party').getAttribute('aria-current'), 'page');
  assert.match(await text(pageB.getByTestId('join-card')), /You were invited/);
  assert.equal(await text(pageB.getByTestId('join-server')), new URL(decodeURIComponent(/c=([^&]+)/.exec(invite)![1]!)).origin);
  assert.equal(await nativeParty(siteB), undefined, 'opening the link joined without a click');

  await pageB.getByTestId('join-submit').click();
  await until('the refusal', 20_000, async () => /secret is wrong/.test(await text(pageB.getByTestId('join-error'))));
  assert.equal(await nativeParty(siteB), undefined);
  await shot(pageB, 'party-join-refused-phone', PHONE);
  await pageB.setViewportSize(DESKTOP);

  // Nothing listens on port 1: the control server is unreachable.
  const partyId = /&p=([a-z2-7]{16})/.exec(invite)![1]!;
  const unreachable = `lanrage://join?c=${encodeURIComponent('http://127.0.0.1:1')}&p=${partyId}&s=${secret}`;
  await pageB.getByTestId('join-link').fill(unreachable);
  await pageB.getByTestId('join-submit').click();
  await until('the unreachable server message', 25_000, async () =>
    /party server cannot be reached/.test(await text(pageB.getByTestId('join-error'))));
  assert.equal(await nativeParty(siteB), undefined);
});

test('a friend joins from the browser link; the host sees the path, pings, and kicks', async (t) => {
  if (!ready(t) || !invite) return;
  const hostId = selfId(await nativeParty(siteA));

  // The link for friends' browsers, pointed at the friend's helper (the default port is taken
  // by nobody in a test).
  const friendLink = await pageA.getByTestId('friend-link').inputValue();
  await pageB.goto(friendLink.replace('http://localhost:8666', baseB));
  await waitLive(pageB, 30_000);
  assert.equal(await pageB.getByTestId('join-link').inputValue(), invite);
  await pageB.getByTestId('join-submit').click();
  await inParty(pageB, 'true');
  assert.equal(new URL(pageB.url()).hash, '#/party', 'the join URL stayed in the address bar');
  const joined = await nativeParty(siteB);
  assert.ok(joined, 'the friend helper is not in the party');
  const friendId = selfId(joined);
  assert.equal(await text(pageB.getByTestId('party-name')), await text(pageA.getByTestId('party-name')));
  assert.equal(await memberRow(pageB, hostId).getAttribute('data-host'), 'true');
  assert.equal(await pageB.getByTestId('kick-button').count(), 0, 'a guest is offered Kick');

  // The host's page learns of the friend from its live stream alone.
  const row = memberRow(pageA, friendId);
  await row.waitFor({ timeout: 20_000 });
  assert.match(await text(row.getByTestId('member-ip')), /^\d+\.\d+\.\d+\.\d+$/);
  const firstPath = (await row.getByTestId('member-path').getAttribute('data-path')) ?? '';
  assert.ok(PATH_STATES.includes(firstPath), `unexpected path state ${firstPath}`);
  // Two helpers on one machine reach each other directly over loopback.
  await until('a direct path to the friend', 30_000, async () => (await row.getByTestId('member-path').getAttribute('data-path')) === 'direct');
  // The direct path runs to the friend's NAT router: its public address, as the page shows it.
  assert.match(await text(row.getByTestId('member-endpoint')), new RegExp(`^${siteB.publicIp.replace(/\./g, '\\.')}:\\d+\\b`));
  await until('a measured round trip', 20_000, async () => Number(await row.getByTestId('member-rtt').getAttribute('data-rtt')) > 0);
  assert.match(await text(row.getByTestId('member-rtt')), /^(0\.\d\d|\d\.\d|\d\d+) ms$/);

  // Ping from the page: the helper's answer, summarised.
  await row.getByTestId('ping-button').click();
  const result = row.getByTestId('ping-result');
  await until('the ping result', 20_000, async () => (await result.getAttribute('data-pending')) === 'false' && (await text(result)) !== '');
  const summary = await text(result);
  assert.equal(await result.getAttribute('data-ok'), 'true', summary);
  // formatRtt: two decimals under 1 ms (0.90 ms on a fast run), one under 10 ms, none above.
  assert.match(summary, /^[1-4]\/4 answered, (0\.\d\d|\d\.\d|\d\d+) ms via \S+:\d+ \((direct|relayed)\)$/);

  await shot(pageA, 'party-two-desktop', DESKTOP, true);
  await pageA.setViewportSize(PHONE);
  await row.evaluate((el: unknown) => (el as { scrollIntoView(o: object): void }).scrollIntoView({ block: 'center' }));
  await shot(pageA, 'party-two-phone', PHONE);
  await shot(pageB, 'party-guest-desktop', DESKTOP, true);
  await pageA.setViewportSize(DESKTOP);
  await pageB.setViewportSize(DESKTOP);

  // Kick takes two clicks; the friend's own page then says what happened.
  const kick = row.getByTestId('kick-button');
  await kick.click();
  assert.match(await text(kick), /Really kick/);
  await kick.click();
  await row.waitFor({ state: 'detached', timeout: 20_000 });
  await inParty(pageB, 'false');
  await pageB.getByTestId('party-ended').waitFor({ timeout: 30_000 });
  assert.equal(await nativeParty(siteB), undefined, 'the kicked helper still thinks it is in the party');
  assert.equal((await nativeParty(siteA))?.members.length, 1);
});

test('leaving takes two clicks and ends the party on this helper', async (t) => {
  if (!ready(t) || !invite) return;
  // The friend is back (natively this time) so that leaving has someone to leave behind.
  const rejoined = await pl!.cli<PartyJson>(siteB, ['join', invite]);
  assert.ok(rejoined.party);
  await memberRow(pageA, selfId(rejoined.party)).waitFor({ timeout: 20_000 });

  const leave = pageA.getByTestId('leave-button');
  await leave.click();
  assert.match(await text(leave), /Really leave/);
  await pageA.getByTestId('leave-cancel').click();
  assert.equal(await nativeParty(siteA) !== undefined, true, 'Cancel left the party');
  await leave.click();
  await leave.click();
  await inParty(pageA, 'false');
  assert.equal(await pageA.getByTestId('party-ended').count(), 0, 'leaving here was reported as news');
  assert.equal(await nativeParty(siteA), undefined);
  // The friend's page shows the host gone.
  await pageB.goto(`${baseB}/#/party`);
  await inParty(pageB, 'true');
  await until('the host to leave the friend list', 20_000, async () => (await pageB.getByTestId('member').count()) === 1);
  // The longest-standing member inherits the party, and the page shows it.
  await pageB.waitForSelector('[data-testid="member"][data-self="true"][data-host="true"]', { timeout: 20_000 });
});
