// The phone dashboard with a real party: two helpers in lab namespaces behind NATs; a phone
// (Chromium, phone viewport) in its own namespace on player A's LAN side pairs with A from the QR
// link that A's desktop page shows, and watches Bob's per-player figures move; they are compared
// with `ping` over the tunnel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadavg } from 'node:os';
import { createPhoneNet, type PhoneNet } from '../lab/phone-net.js';
import { withFiguresParty } from './figures-party.js';
import { parsePing, percentile } from '../bench/bench-lib.js';
import { pairPhone } from './phone-lib.js';
import { PHONE, launchBrowser, shot, text, until, waitLive, type Browser } from './browser-lib.js';

const load = (): string => loadavg().map((x) => x.toFixed(1)).join(' ');

test('a paired phone on the LAN sees per-player metrics move, in line with ping over the tunnel', { timeout: 300_000 }, async (t) => {
  let desktop: Browser | undefined;
  let phone: Browser | undefined;
  let net: PhoneNet | undefined;
  await withFiguresParty(t, 'Phone night', async ({ lab, pl, a, port, bob }) => {
   try {
    net = await createPhoneNet(a.host.ns);
    // A's desktop turns phone access on (its own veth address, the default port) and shows the QR.
    desktop = await launchBrowser();
    const d = desktop.page;
    await d.goto(`http://localhost:${port}/#/settings`);
    await waitLive(d, 30_000);
    await d.locator('[data-testid="remote-address"]').fill(net.desktopIp);
    await d.locator('[data-testid="remote-enabled"]').check();
    await d.locator('[data-testid="remote-fingerprint"]').waitFor({ timeout: 20_000 });
    await d.locator('[data-testid="pair-scope"]').selectOption({ label: 'control' });
    await d.locator('[data-testid="pair-create"]').click();
    const link = await text(d.locator('[data-testid="pair-link"]'));
    assert.match(link, new RegExp(`^https://${net.desktopIp.replace(/\./g, '\\.')}:8668/#pair=`));

    const paired = await pairPhone(net, link);
    phone = paired.phone;
    const p = phone.page;
    t.diagnostic(`pairing with a party running: link → paired and live ${paired.pairingMs.toFixed(0)} ms (load ${load()})`);
    assert.match(await text(p.locator('[data-testid="pair-result"]')), /control/);

    await p.goto(link.replace(/#.*$/, '#/party'));
    await waitLive(p, 30_000);
    const row = p.locator(`[data-testid="member"][data-device-id="${bob.deviceId}"]`);
    await row.waitFor({ timeout: 20_000 });
    const figures = row.getByTestId('peer-metrics');
    const flood = pl.lab.exec(a.host.ns, 'ping', ['-q', '-c', '600', '-i', '0.005', '-s', '1200', '-W', '2', bob.virtualIp], { timeoutMs: 60_000 });
    await until('the flood on the phone', 20_000, async () => Number(await figures.getAttribute('data-rx-bps')) > 50_000);
    await flood;
    await until('a measured RTT on the phone', 30_000, async () => Number(await figures.getAttribute('data-rtt')) > 0);
    const icmp = parsePing((await pl.lab.exec(a.host.ns, 'ping', ['-c', '30', '-i', '0.2', '-W', '2', bob.virtualIp], { timeoutMs: 60_000 })).stdout);
    const icmpMed = percentile(icmp.rtts, 50);
    const shownRtt = Number(await figures.getAttribute('data-rtt'));
    t.diagnostic(`phone shows Bob's RTT ${await text(row.getByTestId('peer-rtt'))} (${shownRtt.toFixed(3)} ms), loss ${await text(row.getByTestId('peer-loss'))}, quality ${await text(row.getByTestId('peer-quality'))}; ping over the tunnel median ${icmpMed} ms, min ${Math.min(...icmp.rtts)} ms (load ${load()})`);
    assert.ok(shownRtt > Math.min(...icmp.rtts) / 2 && shownRtt < icmpMed + Math.max(2, icmpMed), `phone ${shownRtt} ms vs ping median ${icmpMed} ms`);
    await shot(p, 'phone-party', PHONE, true);
   } finally {
    await phone?.close();
    await desktop?.close();
    await net?.destroy();
   }
  });
});
