// The Games page in real Chromium against a real helper: the profile list, a game appearing and
// disappearing live (Watch GAMES) as a Wine-style process starts and is killed, leaving a session
// in the Sessions list, and the custom-
// profile form (refused input explained, a good profile added and deleted). Desktop and phone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { startHelper, removeStateDir, type HelperProcess } from '../lib/helper-process.js';
import { DESKTOP, PHONE, browserReady, canRun, launchBrowser, reportPageErrors, shot, text, until, waitLive, type Browser } from './browser-lib.js';

let helper: HelperProcess | undefined;
let browser: Browser | undefined;
let game: ChildProcess | undefined;

before(async () => {
  if (!canRun()) return;
  helper = await startHelper();
  browser = await launchBrowser();
});

after(async () => {
  if (game && game.exitCode === null && game.signalCode === null) process.kill(game.pid!, 'SIGKILL');
  await browser?.close();
  if (helper) {
    await helper.stop('SIGKILL');
    removeStateDir(helper.stateDir);
  }
});

test('Games page: profiles, a game appears live and goes away when killed, the custom-profile form', async (t) => {
  if (!browserReady(t)) return;
  if (!browser || !helper) throw new Error('setup failed: no browser or helper');
  const page = browser.page;
  reportPageErrors(page, 'games');
  await page.setViewportSize(DESKTOP);
  await page.goto(`http://localhost:${helper.httpPort}/#/games`);
  await waitLive(page, 30_000);
  await page.getByTestId('sessions-none').waitFor({ timeout: 30_000 });
  assert.equal(await page.getByTestId('nav-games').getAttribute('aria-current'), 'page');
  await page.getByTestId('profile-teeworlds').waitFor({ timeout: 30_000 });
  assert.ok((await page.locator('[data-testid="games-profiles"] li').count()) >= 60);
  assert.match(await text(page.getByTestId('profile-minecraft-java')), /224\.0\.2\.60:4445/);
  await page.getByTestId('games-filter').fill('openttd');
  assert.equal(await page.locator('[data-testid="games-profiles"] li').count(), 1);
  await page.getByTestId('games-filter').fill('');

  // A Wine/Proton-style process: argv[0] is the game's Windows path.
  game = spawn('sleep', ['600'], { stdio: 'ignore', argv0: 'C:\\Games\\OpenTTD\\openttd.exe' });
  await page.getByTestId('running-openttd').waitFor({ timeout: 30_000 });
  assert.match(await text(page.getByTestId('running-openttd')), new RegExp(`OpenTTD pid ${game.pid} · openttd\\.exe LAN discovery: 3979`));
  await shot(page, 'games-desktop', DESKTOP);
  await shot(page, 'games-phone', PHONE);
  await page.setViewportSize(DESKTOP);
  process.kill(game.pid!, 'SIGKILL');
  await page.getByTestId('games-none').waitFor({ timeout: 30_000 });
  // The game that just stopped is a session, live from the Watch stream: what, how long, with whom.
  await page.getByTestId('session-openttd').waitFor({ timeout: 30_000 });
  assert.match(await text(page.getByTestId('session-openttd')), /^OpenTTD .+ · \d+ s played alone$/);
  await shot(page, 'games-sessions-phone', PHONE);
  await page.setViewportSize(DESKTOP);

  // The form: bad input is explained and sends nothing; a good profile appears, then goes.
  await page.getByTestId('form-name').fill('Browser Test Game');
  await page.getByTestId('form-executables').fill('browsertest.exe browsertest');
  await page.getByTestId('form-broadcastPorts').fill('70000');
  await page.getByTestId('form-submit').click();
  assert.match(await text(page.getByTestId('form-errors')), /"70000" is not a port/);
  await page.getByTestId('form-broadcastPorts').fill('47000-47002');
  await page.getByTestId('form-multicastGroups').fill('239.1.2.3:47010');
  await page.getByTestId('form-gamePorts').fill('47000/udp');
  await page.getByTestId('form-submit').click();
  await page.getByTestId('profile-custom-browser-test-game').waitFor({ timeout: 30_000 });
  assert.match(await text(page.getByTestId('profile-custom-browser-test-game')), /47000-47002, 239\.1\.2\.3:47010 · yours/);
  await page.getByTestId('delete-custom-browser-test-game').click();
  await until('custom profile deleted', 30_000, async () => (await page.getByTestId('profile-custom-browser-test-game').count()) === 0);
});
