// The phone dashboard with a real party: two helpers in lab namespaces behind NATs; a phone
// (Chromium, phone viewport) in its own namespace on player A's LAN side pairs with A from the QR
// link that A's desktop page shows, and watches Bob's per-player figures move; they are compared
// with `ping` over the tunnel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:net';
import { loadavg } from 'node:os';
import { createLab, labAvailable } from '../lab/lab.js';
import { PartyLab, waitParty, type PartyJson } from '../lab/party-lab.js';
import { exposeNamespacePort } from '../lab/ns-expose.js';
import { createPhoneNet, type PhoneNet } from '../lab/phone-net.js';
import { requireOrSkip } from '../lib/repo.js';
import { parsePing, percentile } from '../bench/bench-lib.js';
import { pairPhone } from './phone-lib.js';
import { PHONE, browserReady, freePort, launchBrowser, shot, text, until, waitLive, type Browser } from './browser-lib.js';

const DIRECT = 2;
const load = (): string => loadavg().map((x) => x.toFixed(1)).join(' ');

test('a paired phone on the LAN sees per-player metrics move, in line with ping over the tunnel', { timeout: 300_000 }, async (t) => {
  if (!browserReady(t)) return;
  const avail = await labAvailable();
  if (!requireOrSkip(avail.ok, `network lab (${avail.why ?? ''})`, t)) return;
  const lab = await createLab({ sites: [{ name: 'a', kind: 'port-restricted' }, { name: 'b', kind: 'port-restricted' }] });
  const pl = new PartyLab(lab);
  const exposed: Server[] = [];
  let desktop: Browser | undefined;
  let phone: Browser | undefined;
  let net: PhoneNet | undefined;
  try {
    const [a, b] = [lab.site('a'), lab.site('b')];
    net = await createPhoneNet(a.host.ns);
    await pl.startControl();
    const port = await freePort();
    await Promise.all([pl.startHelper(a, { extraArgs: ['--allow-host', `localhost:${port}`] }), pl.startHelper(b)]);
    await pl.cli(b, ['settings', 'set', 'device_name', 'Bob']);
    exposed.push(await exposeNamespacePort(lab, a.host.ns, port));
    const created = await pl.cli<PartyJson>(a, ['create', 'Phone night']);
    await pl.cli(b, ['join', created.party!.inviteLink]);
    const pa = await waitParty(pl, a, (p) => p.peers.length === 1 && p.peers[0]!.path === DIRECT, 30_000);
    const bob = pa.peers[0]!;

    // A's desktop turns phone access on (its own veth address, the default port) and shows the QR.
    desktop = await launchBrowser();
    const d = desktop.page;
    await d.goto(`http://localhost:${port}/#/settings`);
    await waitLive(d, 20_000);
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
    await waitLive(p, 20_000);
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
    for (const s of exposed) s.close();
    await net?.destroy();
    await lab.destroy();
    pl.cleanup();
  }
});
