// The Network page in real Chromium against a real helper in a lab namespace behind an
// address-restricted NAT: before the helper knows a control server the page says so; joining
// one (a party created with the CLI) makes the report appear without a reload (Watch), and
// "Test again" runs a new test whose result the page shows. Browser code is passed as strings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:net';
import { createLab, labAvailable, type Lab, type LabSite } from '../lab/lab.js';
import { PartyLab } from '../lab/party-lab.js';
import { exposeNamespacePort } from '../lab/ns-expose.js';
import { requireOrSkip } from '../lib/repo.js';
import { DESKTOP, PHONE, browserReady, canRun, freePort, launchBrowser, shot, text, until, waitLive, type Browser } from './browser-lib.js';

let lab: Lab | undefined;
let pl: PartyLab | undefined;
let site: LabSite;
let server: Server | undefined;
let browser: Browser | undefined;
let base = '';
let labWhy = '';



before(async () => {
  const avail = await labAvailable();
  labWhy = avail.why ?? '';
  if (!canRun() || !avail.ok) return;
  lab = await createLab({ sites: [{ name: 'ar', kind: 'address-restricted' }] });
  pl = new PartyLab(lab);
  site = lab.site('ar');
  await pl.startControl();
  const port = await freePort();
  await pl.startHelper(site, { extraArgs: ['--allow-host', `localhost:${port}`] });
  server = await exposeNamespacePort(lab, site.host.ns, port);
  base = `http://localhost:${port}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.close();
  await lab?.destroy();
  pl?.cleanup();
});

test('Network page: empty before a control server, the report arrives live, Test again refreshes it', async (t) => {
  if (!browserReady(t)) return;
  if (!requireOrSkip(lab !== undefined || labWhy === '', `network lab (${labWhy})`, t)) return;
  if (!browser || !lab || !pl) throw new Error('setup failed: no browser or lab (see the before hook)');
  const page = browser.page;
  await page.goto(`${base}/#/network`);
  await waitLive(page, 30_000);
  assert.equal(await page.getByTestId('nav-network').getAttribute('aria-current'), 'page');
  assert.match(await text(page.getByTestId('nat-time')), /Not tested yet/);
  // Without a control server the button explains what is missing.
  await page.getByTestId('run-netcheck').click();
  await page.getByTestId('netcheck-error').waitFor({ timeout: 30_000 });
  assert.match(await text(page.getByTestId('netcheck-error')), /create or join a party/);

  // The page stays open; the helper connects to the control server and tests by itself.
  await pl.cli(site, ['create', 'net night']);
  await page.getByTestId('nat-filtering').waitFor({ timeout: 20_000 });
  assert.equal(await text(page.getByTestId('nat-udp')), 'Open');
  assert.equal(await text(page.getByTestId('nat-mapping')), 'Endpoint-independent');
  assert.equal(await text(page.getByTestId('nat-filtering')), 'Address-dependent');
  assert.equal(await page.getByTestId('nat-filtering').getAttribute('data-tone'), 'fair');
  assert.match(await text(page.getByTestId('nat-public')), new RegExp(`^${site.publicIp.replaceAll('.', '\\.')}:\\d+$`));
  assert.match(await text(page.getByTestId('nat-time')), new RegExp(`against ${lab.control.ip.replaceAll('.', '\\.')}:3478`));

  const before = await text(page.getByTestId('nat-public'));
  await page.getByTestId('run-netcheck').click();
  // Each run uses fresh sockets, so a new run shows a new public port.
  await until('a new report after Test again', 30_000, async () => (await text(page.getByTestId('nat-public'))) !== before);
  assert.equal(await page.getByTestId('netcheck-error').count(), 0);
  await shot(page, 'network-desktop', DESKTOP);
  await shot(page, 'network-phone', PHONE);
});
