// What the real-browser tests share: Debian's Chromium through playwright-core, waiting, and
// screenshots. Browser-side code is passed as strings: these files compile without the DOM library.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import type { ServiceError } from '@grpc/grpc-js';
import { PWA_DIST, requireOrSkip } from '../lib/repo.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SHOTS = process.env.LANRAGE_SCREENSHOTS ?? tmpdir();
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

export interface Browser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** True when Chromium and the built PWA are both here, i.e. a suite can start anything at all. */
export const canRun = (): boolean => existsSync(CHROMIUM) && existsSync(join(PWA_DIST, 'index.html'));

/** Skips (or fails in CI) when Chromium or the built PWA is missing. */
export function browserReady(t: { skip(msg: string): void }): boolean {
  if (!requireOrSkip(existsSync(CHROMIUM), `Chromium at ${CHROMIUM} (apt-get install chromium)`, t)) return false;
  return requireOrSkip(existsSync(join(PWA_DIST, 'index.html')), `the built PWA in ${PWA_DIST} (npm run build:pwa)`, t);
}

/** Headless Chromium with a fresh profile (flags from STACK-NOTES.md: they work as root). */
export async function launchBrowser(opts: { executablePath?: string; phone?: boolean; ignoreHTTPSErrors?: boolean } = {}): Promise<Browser> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'lanrage-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opts.executablePath ?? CHROMIUM,
    headless: true,
    viewport: opts.phone ? PHONE : DESKTOP,
    ...(opts.phone && { isMobile: true, hasTouch: true, deviceScaleFactor: 3 }),
    ...(opts.ignoreHTTPSErrors && { ignoreHTTPSErrors: true }),
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  reportPageErrors(page);
  return {
    context,
    page,
    close: async () => {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

export function reportPageErrors(page: Page, tag = ''): void {
  page.on('pageerror', (err) => process.stderr.write(`[page error${tag ? ` ${tag}` : ''}] ${err.message}\n`));
}

/** Polls `probe` until it returns true; fails with `what` after `timeoutMs`. */
export async function until(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Saves `lanrage-NAME.png` in SHOTS at the given viewport size. */
export async function shot(page: Page, name: string, size: { width: number; height: number }, fullPage = false): Promise<void> {
  await page.setViewportSize(size);
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(SHOTS, `lanrage-${name}.png`), fullPage });
}

/** A grpc-js callback call as a promise. */
export function call<Res>(fn: (cb: (err: ServiceError | null, res: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
}

// Playwright's CSS engine pierces open shadow roots, so this reaches into the Lit components.
export const waitLive = (page: Page, timeout: number) =>
  page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout });

/** A loopback port nobody holds right now (a helper must know its port before it starts). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** An element's text with its whitespace collapsed. */
export const text = async (l: Locator): Promise<string> => ((await l.textContent()) ?? '').replace(/\s+/g, ' ').trim();
