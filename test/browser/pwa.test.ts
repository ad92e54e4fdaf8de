// The PWA in real Chromium against a real helper: service worker, installability, the live
// stream, settings round trip, and the offline shell when the helper stops.
// Browser-side code is passed as strings: this file is compiled without the DOM library.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { credentials, Metadata } from '@grpc/grpc-js';
import { HelperServiceClient, type GetStatusResponse } from '../../helper/gen/lanrage/v1/helper.js';
import { Settings, SettingsServiceClient, type GetSettingsResponse, type UpdateSettingsResponse } from '../../helper/gen/lanrage/v1/settings.js';
import { startHelper, removeStateDir, type HelperProcess } from '../lib/helper-process.js';
import { PWA_DIST } from '../lib/repo.js';
import { DESKTOP, PHONE, browserReady, call, canRun, launchBrowser, until, shot as shotOf, waitLive as waitLiveOn, type Browser } from './browser-lib.js';

let helper: HelperProcess | undefined;
let browser: Browser | undefined;
let context: BrowserContext | undefined;
let page: Page;
let base = '';

async function nativeSettings(port: number): Promise<Settings> {
  const c = new SettingsServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  try {
    return (await call<GetSettingsResponse>((cb) => c.getSettings({}, cb))).settings!;
  } finally {
    c.close();
  }
}

async function nativeUpdate(port: number, token: string, settings: Partial<Settings>, mask: string[]): Promise<void> {
  const c = new SettingsServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  try {
    await call<UpdateSettingsResponse>((cb) => c.updateSettings({ settings: Settings.fromPartial(settings), updateMask: mask }, md, cb));
  } finally {
    c.close();
  }
}

async function nativeDeviceName(port: number): Promise<string> {
  const c = new HelperServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  try {
    return (await call<GetStatusResponse>((cb) => c.getStatus({}, cb))).status!.deviceName;
  } finally {
    c.close();
  }
}

const testId = (id: string) => page.getByTestId(id);

const waitLive = (timeout: number) => waitLiveOn(page, timeout);

async function connState(): Promise<string | null> {
  return testId('conn-state').getAttribute('data-state');
}

async function sampleCount(): Promise<number> {
  return Number(await testId('sample-count').getAttribute('data-count'));
}

const shot = (name: string, size: { width: number; height: number }): Promise<void> => shotOf(page, name, size);

before(async () => {
  // Nothing is started when the suite will skip; each test checks `context` below.
  if (!canRun()) return;
  helper = await startHelper();
  base = `http://localhost:${helper.httpPort}`;
  browser = await launchBrowser();
  context = browser.context;
  page = browser.page;
});

after(async () => {
  await browser?.close();
  if (helper) {
    await helper.stop('SIGKILL');
    removeStateDir(helper.stateDir);
  }
});

function ready(t: { skip(msg: string): void }): boolean {
  if (!browserReady(t)) return false;
  if (context === undefined || helper === undefined) throw new Error('setup failed: no browser or helper (see the before hook)');
  return true;
}

test('the service worker registers and controls the page after a reload', async (t) => {
  if (!ready(t)) return;
  await page.goto(`${base}/`);
  await page.evaluate('navigator.serviceWorker.ready.then(() => true)');
  await page.reload();
  const controlled = await page.evaluate('navigator.serviceWorker.controller !== null');
  assert.equal(controlled, true, 'navigator.serviceWorker.controller is null after reload');
  const scriptUrl = await page.evaluate('navigator.serviceWorker.controller.scriptURL');
  assert.equal(scriptUrl, `${base}/sw.js`);
});

test('Chromium finds the app installable', async (t) => {
  if (!ready(t)) return;
  const cdp = await context!.newCDPSession(page);
  try {
    const manifest = (await cdp.send('Page.getAppManifest')) as { url: string; errors: { message: string }[] };
    assert.equal(manifest.url, `${base}/manifest.webmanifest`);
    assert.deepEqual(manifest.errors, [], `manifest errors: ${JSON.stringify(manifest.errors)}`);
    const inst = (await cdp.send('Page.getInstallabilityErrors')) as { installabilityErrors: { errorId: string }[] };
    assert.deepEqual(inst.installabilityErrors, [], `installability errors: ${JSON.stringify(inst.installabilityErrors)}`);
  } finally {
    await cdp.detach();
  }
});

test('the status view follows the live stream', async (t) => {
  if (!ready(t)) return;
  await page.goto(`${base}/#/status`);
  await waitLive(30_000);
  const expectedName = await nativeDeviceName(helper!.grpcPort);
  assert.equal((await testId('device-name').textContent())?.trim(), expectedName);

  // Samples arrive about once a second: the count must move at least twice (within seconds; the
  // bound is for a loaded machine, the loop ends at the second move).
  const seen = new Set<number>([await sampleCount()]);
  const deadline = Date.now() + 30_000;
  while (seen.size < 3 && Date.now() < deadline) {
    await page.waitForTimeout(250);
    seen.add(await sampleCount());
  }
  assert.ok(seen.size >= 3, `sample count changed ${seen.size - 1} time(s) in 30 s: ${[...seen].join(', ')}`);
  assert.match((await testId('cpu-value').textContent()) ?? '', /^\s*\d+(\.\d)? %\s*$/);
  assert.ok(Number(await testId('cpu-chart').getAttribute('data-samples')) >= 2, 'the CPU chart has no samples');
  assert.match((await testId('mem-value').textContent()) ?? '', /\d (B|KiB|MiB|GiB|TiB)/);
  assert.match((await testId('net-rx-value').textContent()) ?? '', /\d (B|kB|MB|GB)\/s/);
  assert.equal(await connState(), 'live');

  // Nothing from the API may end up in a cache (gRPC-Web is POST, the session is /api/).
  const cached = (await page.evaluate(`(async () => {
    const urls = [];
    for (const name of await caches.keys()) {
      const cache = await caches.open(name);
      for (const req of await cache.keys()) urls.push(req.url);
    }
    return urls;
  })()`)) as string[];
  assert.ok(cached.some((u) => /\/index\.html(\?|$)/.test(u)), `app shell not precached: ${cached.join(', ')}`);
  assert.deepEqual(cached.filter((u) => /\/api\/|\/lanrage\.v1\./.test(u)), []);

  await page.waitForTimeout(1_500);
  await shot('status-desktop', DESKTOP);
  await shot('status-phone', PHONE);
  await page.setViewportSize(DESKTOP);
});

test('a rotated Watch stream is resubscribed at once', async (t) => {
  if (!ready(t)) return;
  // The shortest rotation the API allows is 10 s.
  await page.goto(`${base}/?watchSeconds=10#/status`);
  await waitLive(30_000);
  await until('a second Watch stream', 40_000, async () => Number(await testId('conn-state').getAttribute('data-streams')) >= 2);
  const before = await sampleCount();
  await until('samples after the rotation', 30_000, async () => (await sampleCount()) > before);
  assert.equal(await connState(), 'live', 'the rotation was taken for an outage');
});

test('settings: only changed fields are saved, and survive a reload', async (t) => {
  if (!ready(t)) return;
  const port = helper!.grpcPort;
  const original = await nativeSettings(port);
  await page.goto(`${base}/#/settings`);
  const nameInput = testId('input-device_name');
  await nameInput.waitFor({ timeout: 30_000 });
  assert.equal(await nameInput.inputValue(), original.deviceName);
  await shot('settings-desktop', DESKTOP);
  await shot('settings-phone', PHONE);
  await page.setViewportSize(DESKTOP);

  // Client-side validation mirrors settings.proto: '/' is not allowed in a device name.
  await nameInput.fill('bad/name');
  await testId('error-device_name').getByText(/letters, digits/).waitFor();
  assert.equal(await testId('save').isDisabled(), true, 'Save is enabled for an invalid name');

  // Changed behind the form's back: a mask naming only device_name must leave it alone.
  const otherMtu = original.mtu === 1300 ? 1310 : 1300;
  await nativeUpdate(port, helper!.token, { mtu: otherMtu }, ['mtu']);

  const newName = `Browser Test ${process.pid % 1000}`;
  await nameInput.fill(newName);
  await testId('save').click();
  await page.waitForSelector('[data-testid="save-result"][data-ok="true"]', { timeout: 30_000 });
  assert.match((await testId('save-result').textContent()) ?? '', /Saved device name/);

  const stored = await nativeSettings(port);
  assert.equal(stored.deviceName, newName);
  assert.equal(stored.mtu, otherMtu, 'the browser overwrote a field it did not change');

  await page.reload();
  await testId('input-device_name').waitFor({ timeout: 30_000 });
  assert.equal(await testId('input-device_name').inputValue(), newName);
  assert.equal(await testId('input-mtu').inputValue(), String(otherMtu));

  await page.goto(`${base}/#/status`);
  await until('the new name on the status view', 30_000, async () =>
    (await testId('device-name').count()) === 1 && (await testId('device-name').textContent())?.trim() === newName);
});

test('settings: the control server takes a list of instances; the helper refuses one named twice', async (t) => {
  if (!ready(t)) return;
  const port = helper!.grpcPort;
  await page.goto(`${base}/#/settings`);
  const input = testId('input-control_server_url');
  await input.waitFor({ timeout: 30_000 });
  // Loopback ports where nothing listens: the helper may try them, and nothing else is contacted.
  const [a, b] = ['http://127.0.0.1:9', 'http://127.0.0.1:13'];
  try {
    // Client-side: the count and each URL's shape.
    await input.fill(`${a}, ${b}, http://127.0.0.1:17, http://127.0.0.1:19, http://127.0.0.1:21`);
    await testId('error-control_server_url').getByText(/At most 4 URLs/).waitFor();
    assert.equal(await testId('save').isDisabled(), true, 'Save is enabled for five URLs');
    await input.fill(`${a}, ftp://x`);
    await testId('error-control_server_url').getByText(/URL 2: .*https:\/\/ or http:\/\//).waitFor();

    // The helper: the same origin twice (":80" is http's default) passes the form's checks.
    await input.fill(`${a}, http://localhost:80, http://localhost`);
    await testId('save').click();
    const err = testId('error-control_server_url');
    await err.getByText(/control_server_url .*names one URL twice/).waitFor({ timeout: 30_000 });
    assert.equal((await nativeSettings(port)).controlServerUrl, '', 'a refused list was stored');

    await input.fill(`${a} , ${b}`);
    await testId('save').click();
    await page.waitForSelector('[data-testid="save-result"][data-ok="true"]', { timeout: 30_000 });
    assert.match((await testId('save-result').textContent()) ?? '', /Saved control server/);
    assert.equal((await nativeSettings(port)).controlServerUrl, `${a},${b}`);
    await page.reload();
    await testId('input-control_server_url').waitFor({ timeout: 30_000 });
    assert.equal(await testId('input-control_server_url').inputValue(), `${a}, ${b}`);
  } finally {
    await nativeUpdate(port, helper!.token, { controlServerUrl: '' }, ['control_server_url']);
    // The next test expects the status view open, as the test before this one leaves it.
    await page.goto(`${base}/#/status`);
  }
});

test('with the helper stopped the cached shell explains what to do, then reconnects', async (t) => {
  if (!ready(t)) return;
  const { stateDir, httpPort, grpcPort } = helper!;
  await helper!.stop('SIGTERM');
  await page.reload();
  assert.equal(await page.title(), 'LANrage');
  const down = testId('helper-down');
  await down.waitFor({ timeout: 15_000 });
  const text = (await down.textContent()) ?? '';
  assert.match(text, /The LANrage helper is not running/);
  assert.match(text, /sudo npm start/);
  assert.match(text, /sudo systemctl start lanrage/);
  assert.equal(await connState(), 'helper-down');
  await shot('helper-down-phone', PHONE);
  await page.setViewportSize(DESKTOP);

  // Same ports and state: the page must find the helper again by itself (backoff tops at 10 s).
  helper = await startHelper({ stateDir, httpPort, grpcPort });
  await waitLive(30_000);
  await testId('device-name').waitFor({ timeout: 30_000 });
});

test('a new service worker is offered as an update and takes over on Reload', async (t) => {
  if (!ready(t)) return;
  // A private copy of the app, so its sw.js can change under a running page.
  const appDir = mkdtempSync(join(tmpdir(), 'lanrage-pwa-copy-'));
  cpSync(PWA_DIST, appDir, { recursive: true });
  const h = await startHelper({ pwaDir: appDir });
  const p = await context!.newPage();
  try {
    const origin = `http://localhost:${h.httpPort}`;
    await p.goto(`${origin}/`);
    await p.evaluate('navigator.serviceWorker.ready.then(() => true)');
    await p.reload();
    await p.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });

    appendFileSync(join(appDir, 'sw.js'), '\n// next version\n');
    await p.reload();
    const prompt = p.getByTestId('update-prompt');
    await prompt.waitFor({ timeout: 15_000 });
    // The live stream is running while the update waits: it must not hold the update back.
    await p.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 30_000 });
    const reloaded = p.waitForEvent('load', { timeout: 30_000 });
    await prompt.getByRole('button', { name: 'Reload' }).click();
    await reloaded;
    const waiting = await p.evaluate('navigator.serviceWorker.getRegistration().then((r) => r.waiting !== null)');
    assert.equal(waiting, false, 'the new worker is still waiting');
    assert.equal(await p.getByTestId('update-prompt').count(), 0);
  } finally {
    await p.close();
    await h.stop('SIGKILL');
    removeStateDir(h.stateDir);
    rmSync(appDir, { recursive: true, force: true });
  }
});
