import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { LanStats } from '../../helper/gen/lanrage/v1/network.js';
import { haveCommands, requireOrSkip } from '../lib/repo.js';
import { labAvailable, withLab, type Lab, type LabSite } from './lab.js';
import type { PartyLab } from './party-lab.js';
import { AVAHI_TOOLS, floodLimit, Lines, mdnsAcross, runGame, startAvahi, startGameServer, startLanParty, tunnelPackets, watchLeaks, type Avahi, type LanParty } from './drivers/lan-lab.js';
import { WATCH_LAN } from './drivers/watch-lan.js';
import { exposeNamespacePort } from './ns-expose.js';
import { browserReady, launchBrowser, waitLive } from '../browser/browser-lib.js';

// The LAN illusion as a player gets it: real helpers in a real party across NATs run the LAN relay
// themselves (nobody starts it for them), settings switch it live, and its counters reach the CLI
// and the Watch stream. Games are our stand-in (lan-game.ts) and avahi (a real mDNS stack).

/** Quake III's LAN discovery port: one of the helper's built-in game ports, no setting needed. */
const GAME_PORT = 27960;
/** Not built in: carried only once the players add it to broadcast_ports. */
const EXTRA_PORT = 47777;
const VNET = '10.66.0.0/16';

type LanJson = LanStats;
type ClientResult = { ok: boolean; server: string; discoveryMs: number; rediscoveryMs: number | null; serverSaw: string; clientPort: number; error?: string };


async function lanStatus(pl: PartyLab, site: LabSite): Promise<LanJson> {
  const s = await pl.cli<{ lan?: LanJson }>(site, ['status']);
  assert.ok(s.lan, '`lanrage status --json` carries the LAN stats');
  return s.lan;
}

async function waitLan(pl: PartyLab, site: LabSite, pred: (l: LanJson) => boolean, what: string, timeoutMs = 60_000): Promise<LanJson> {
  const until = Date.now() + timeoutMs;
  let last: LanJson | undefined;
  while (Date.now() < until) {
    last = await lanStatus(pl, site);
    if (pred(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${site.name}: ${what} not within ${timeoutMs} ms; last LAN stats: ${JSON.stringify(last)}`);
}

/** The helper's own Watch stream (topic LAN), read by a gRPC client inside the site. */
async function watchLan(party: LanParty, site: LabSite): Promise<Lines> {
  const ready = await party.pl.helpers.get(site.name)!.waitLog('helper ready');
  return new Lines(party.pl.lab.spawn(site.host.ns, process.execPath, [WATCH_LAN, String(ready.grpcPort), '600']));
}

/** utime + stime of a process in µs (all threads), from /proc. */
function cpuUs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // Fields 14 and 15 of stat; [0] here is field 3.
  return ((Number(f[11]) + Number(f[12])) * 1e6) / 100;
}

const p50 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A loopback port nobody holds right now (the helper must know it before it starts). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

async function withLanParty(
  t: { skip(msg: string): void },
  sites: Array<{ name: string; kind: 'public' | 'port-restricted' }>,
  body: (party: LanParty, lab: Lab) => Promise<void>,
  extraArgs?: (site: LabSite) => string[],
): Promise<void> {
  const avail = await labAvailable();
  if (!requireOrSkip(avail.ok, `network lab (${avail.why ?? ''})`, t)) return;
  await withLab({ sites }, async (lab) => {
    const party = await startLanParty(lab, sites.map((s) => s.name), { helperLan: true, ...(extraArgs ? { extraArgs } : {}) });
    try {
      await body(party, lab);
    } finally {
      party.pl.cleanup();
    }
  });
}

test('two players at different NATs: the helpers carry discovery (our game and avahi), counters reach CLI and Watch, settings switch it live', async (t) => {
  if (!requireOrSkip(haveCommands(AVAHI_TOOLS), 'avahi-daemon, avahi-utils and dbus-daemon (Debian packages)', t)) return;
  // a's PWA is reachable from this machine at localhost:pwaPort (the browser check below).
  const pwaPort = await freePort();
  await withLanParty(t, [{ name: 'a', kind: 'port-restricted' }, { name: 'b', kind: 'port-restricted' }], async (party, lab) => {
    const { pl } = party;
    const [a, b] = party.sites as [LabSite, LabSite];
    const [vipA, vipB] = party.vips as [string, string];
    const avahis: Avahi[] = [];
    try {
      // The helpers started their relays when the tunnel came up.
      const [la] = await Promise.all([waitLan(pl, a, (l) => l.enabled, 'relay running'), waitLan(pl, b, (l) => l.enabled, 'relay running')]);
      assert.ok(la.ports.includes(GAME_PORT) && !la.ports.includes(EXTRA_PORT), JSON.stringify(la.ports));
      assert.ok(la.groups.includes('224.0.0.251:5353'));
      assert.equal(la.problem, '');
      const leaks = await Promise.all([watchLeaks(lab, a, VNET), watchLeaks(lab, b, VNET)]);
      const [wa, wb] = await Promise.all([watchLan(party, a), watchLan(party, b)]);

      await t.test('a broadcast client at a finds the server at b, then talks unicast; the server sees a virtual IP', async (st) => {
        const server = await startGameServer(lab, b, GAME_PORT, 'bserver');
        const found = await runGame<ClientResult>(lab, a, ['client', String(GAME_PORT), 'first', '20000']);
        assert.ok(found.ok, JSON.stringify(found));
        assert.equal(found.server, `${vipB}:${GAME_PORT}`);
        assert.equal(found.serverSaw, `${vipA}:${found.clientPort}`);
        // Discovery time through real helpers, ten new clients (each a new source: the far side
        // installs one injection rule for it first), and the second broadcast from each socket.
        const first: number[] = [];
        const again: number[] = [];
        for (let i = 0; i < 10; i++) {
          const r = await runGame<ClientResult>(lab, a, ['client', String(GAME_PORT), `p${i}`, '20000']);
          assert.ok(r.ok && r.rediscoveryMs !== null, JSON.stringify(r));
          first.push(r.discoveryMs);
          again.push(r.rediscoveryMs);
        }
        st.diagnostic(`discovery through the helpers, 10 tries: first datagram of a new client p50 ${p50(first).toFixed(1)} ms (max ${Math.max(...first).toFixed(1)}), next broadcast p50 ${p50(again).toFixed(2)} ms`);
        const stats = await server.stats();
        assert.equal(stats.discover['p3.2'], 1, 'one broadcast, seen once');
      });

      await t.test('avahi-publish at b, avahi-browse at a: resolved across, then reached by unicast', async (st) => {
        avahis.push(await startAvahi(lab, a, `lpa${lab.id}`), await startAvahi(lab, b, `lpb${lab.id}`));
        const { svc, ms, hello } = await mdnsAcross(lab, avahis[0]!, avahis[1]!, {
          browseSite: a, pubVip: vipB, host: `bhost${lab.id}.local`, name: 'LANrage party game', type: '_lanrage-party._udp', port: GAME_PORT, tag: 'mdns',
        });
        st.diagnostic(`avahi-browse at a resolved "${svc.name}" → ${svc.address}:${svc.port} in ${ms} ms`);
        assert.equal(svc.address, vipB);
        assert.equal(svc.port, GAME_PORT);
        assert.ok(hello.ok);
        assert.equal(hello.serverSaw, `${vipA}:${hello.clientPort}`);
      });

      await t.test('counters: captured and forwarded at a, received and injected at b, in `lanrage status` and on Watch at most once a second', async (st) => {
        const [ca, cb] = await Promise.all([lanStatus(pl, a), lanStatus(pl, b)]);
        st.diagnostic(`a: ${JSON.stringify({ ...ca, ports: undefined, groups: undefined })}`);
        st.diagnostic(`b: ${JSON.stringify({ ...cb, ports: undefined, groups: undefined })}`);
        assert.ok(ca.captured >= 22 && ca.forwarded >= 22, 'a captured and forwarded 11 clients × 2 broadcasts');
        assert.ok(cb.received >= 22 && cb.injected >= 22, 'b received and injected them');
        assert.ok(ca.injected >= 1 && cb.captured >= 1, 'mDNS went both ways');
        for (const c of [ca, cb]) assert.equal(c.droppedInvalid + c.droppedLoop + c.errors, 0, JSON.stringify(c));
        const text = await pl.cliText(a, ['status']);
        assert.match(text, /LAN +discovery on \(\d+ broadcast ports, 3 multicast groups\): captured \d+, forwarded \d+, received \d+, injected \d+, dropped \d+/);
        const ea = await wa.wait((r) => Number(r.captured) >= 22, 'Watch at a shows the captures');
        const eb = await wb.wait((r) => Number(r.injected) >= 22, 'Watch at b shows the injections');
        assert.equal(ea.enabled, true);
        assert.equal(eb.enabled, true);
        // After the stream's opening snapshot, events come from the one-second tick: spaced by the
        // helper's own timestamps (a loaded reader may receive two in one read).
        for (const lines of [wa, wb]) {
          const ats = lines.records.slice(1).map((r) => Number(r.sentAt));
          assert.ok(ats.every((x) => x > 0), 'every Watch event carries the helper\'s time');
          for (let i = 1; i < ats.length; i++) assert.ok(ats[i]! - ats[i - 1]! >= 800, `events sent at ${ats[i - 1]} and ${ats[i]}: closer than a second`);
        }
        st.diagnostic(`Watch events: ${wa.records.length} at a, ${wb.records.length} at b`);
      });

      await t.test('broadcast_enabled off (CLI) stops discovery, on restores it', async () => {
        await pl.cli(a, ['settings', 'set', 'broadcast_enabled', 'false']);
        const off = await waitLan(pl, a, (l) => !l.enabled, 'relay stopped');
        assert.deepEqual(off.ports, []);
        const none = await runGame<ClientResult>(lab, a, ['client', String(GAME_PORT), 'off', '1500'], 15_000, true);
        assert.equal(none.ok, false, 'nothing found while off');
        await wa.wait((r) => r.enabled === false, 'Watch at a says off');
        await pl.cli(a, ['settings', 'set', 'broadcast_enabled', 'true']);
        await waitLan(pl, a, (l) => l.enabled, 'relay running again');
        const back = await runGame<ClientResult>(lab, a, ['client', String(GAME_PORT), 'on', '20000']);
        assert.ok(back.ok, JSON.stringify(back));
        assert.equal(back.server, `${vipB}:${GAME_PORT}`);
      });

      await t.test('a port added to broadcast_ports (CLI, both players) is carried from then on', async () => {
        await startGameServer(lab, b, EXTRA_PORT, 'bextra');
        const before = await runGame<ClientResult>(lab, a, ['client', String(EXTRA_PORT), 'x0', '1500'], 15_000, true);
        assert.equal(before.ok, false, 'not carried before the setting');
        for (const s of [a, b]) await pl.cli(s, ['settings', 'set', 'broadcast_ports', String(EXTRA_PORT)]);
        await Promise.all([a, b].map((s) => waitLan(pl, s, (l) => l.enabled && l.ports.includes(EXTRA_PORT) && l.ports.includes(GAME_PORT), 'new port carried')));
        const after = await runGame<ClientResult>(lab, a, ['client', String(EXTRA_PORT), 'x1', '20000']);
        assert.ok(after.ok, JSON.stringify(after));
        assert.equal(after.server, `${vipB}:${EXTRA_PORT}`);
        assert.equal(after.serverSaw, `${vipA}:${after.clientPort}`);
      });

      await t.test('the PWA party page shows LAN discovery on with its counters, and off when switched off', async (st) => {
        if (!browserReady(st)) return;
        const exposed = await exposeNamespacePort(lab, a.host.ns, pwaPort);
        const browser = await launchBrowser();
        try {
          const page = browser.page;
          await page.goto(`http://localhost:${pwaPort}/#/party`);
          await waitLive(page, 30_000);
          const line = page.locator('[data-testid="lan-discovery"][data-enabled="true"]');
          await line.waitFor({ timeout: 30_000 });
          const text = ((await line.textContent()) ?? '').replace(/\s+/g, ' ').trim();
          const m = /LAN discovery: on · (\d+) captured · (\d+) forwarded · (\d+) injected · (\d+) dropped/.exec(text);
          assert.ok(m, text);
          assert.ok(Number(m[1]) >= 22 && Number(m[2]) >= 22, text);
          st.diagnostic(`party page: "${text}"`);
          await pl.cli(a, ['settings', 'set', 'broadcast_enabled', 'false']);
          await page.locator('[data-testid="lan-discovery"][data-enabled="false"]').waitFor({ timeout: 30_000 });
          assert.match((await page.getByTestId('lan-discovery').textContent()) ?? '', /LAN discovery: off/);
          await pl.cli(a, ['settings', 'set', 'broadcast_enabled', 'true']);
          await page.locator('[data-testid="lan-discovery"][data-enabled="true"]').waitFor({ timeout: 30_000 });
        } finally {
          await browser.close();
          exposed.close();
        }
      });

      await t.test('a helper killed with -9 leaves its nft table; the restarted helper removes it and carries discovery again', async () => {
        await pl.stopHelper(a, 'SIGKILL');
        await lab.exec(a.host.ns, 'nft', ['list', 'table', 'ip', 'lanrage_lan']); // still there
        await pl.startHelper(a);
        await pl.helpers.get('a')!.waitLog('removed the LAN relay table a previous helper left behind');
        await waitLan(pl, a, (l) => l.enabled, 'relay running after the restart', 60_000);
        const r = await runGame<ClientResult>(lab, a, ['client', String(GAME_PORT), 'restart', '20000']);
        assert.ok(r.ok, JSON.stringify(r));
        assert.equal(r.server, `${vipB}:${GAME_PORT}`);
      });

      await t.test('leaving the party stops the relay and removes its rules', async () => {
        await pl.cli(a, ['leave']);
        const l = await waitLan(pl, a, (x) => !x.enabled, 'relay stopped');
        assert.equal(l.problem, '');
        await assert.rejects(lab.exec(a.host.ns, 'nft', ['list', 'table', 'ip', 'lanrage_lan']), 'no LAN table left in a');
      });

      // Nothing with a virtual source reached a real LAN.
      assert.deepEqual(await Promise.all(leaks.map((l) => l())), [[], []]);
    } finally {
      for (const x of avahis) x.cleanup();
    }
  }, (s) => (s.name === 'a' ? ['--allow-host', `localhost:${pwaPort}`] : []));
});

test('four players: one broadcast reaches each other player exactly once; a flood is rate-limited, shows in the counters, and pings still pass', async (t) => {
  const sites = [
    { name: 'a', kind: 'port-restricted' as const },
    { name: 'b', kind: 'public' as const },
    { name: 'c', kind: 'port-restricted' as const },
    { name: 'd', kind: 'port-restricted' as const },
  ];
  await withLanParty(t, sites, async (party, lab) => {
    const { pl } = party;
    const [a, b, c, d] = party.sites as [LabSite, LabSite, LabSite, LabSite];
    const [, vipB, vipC, vipD] = party.vips as [string, string, string, string];
    await Promise.all(party.sites.map((s) => waitLan(pl, s, (l) => l.enabled, 'relay running')));
    const servers = await Promise.all([b, c, d].map((s) => startGameServer(lab, s, GAME_PORT, s.name)));
    await runGame(lab, a, ['client', String(GAME_PORT), 'warm', '20000']);

    // One broadcast: counted on a's tunnel interface and on a's link to the internet.
    const idleWire0 = await lab.linkCounters(a.host.ns);
    await new Promise((r) => setTimeout(r, 1000));
    const idleWire1 = await lab.linkCounters(a.host.ns);
    const tun0 = await tunnelPackets(lab, a, party.ifaces[0]!);
    const wire0 = await lab.linkCounters(a.host.ns);
    const t0 = Date.now();
    const one = await runGame<{ answers: Array<{ from: string; name: string }> }>(lab, a, ['once', String(GAME_PORT), 'exact', '15000', '3']);
    const ms = Date.now() - t0;
    const wire1 = await lab.linkCounters(a.host.ns);
    const tun1 = await tunnelPackets(lab, a, party.ifaces[0]!);
    assert.deepEqual(one.answers.map((x) => x.from.split(':')[0]).sort(), [vipB, vipC, vipD].sort());
    for (const s of servers) assert.equal((await s.stats()).discover.exact, 1, `${s.lines.records[0]?.port} saw it once`);
    const idleRate = (idleWire1.txPackets - idleWire0.txPackets) / 1000;
    t.diagnostic(
      `one broadcast, 4 players: a's tunnel sent ${tun1.tx - tun0.tx} packets, received ${tun1.rx - tun0.rx}; ` +
        `a's wire sent ${wire1.txPackets - wire0.txPackets} packets in ${ms} ms (idle background ${(idleRate * ms).toFixed(1)} in that time), received ${wire1.rxPackets - wire0.rxPackets}`,
    );
    assert.ok(tun1.tx - tun0.tx >= 3 && tun1.tx - tun0.tx <= 5, `tunnel tx ${tun1.tx - tun0.tx}: one envelope per other player`);
    assert.ok(wire1.txPackets - wire0.txPackets >= 3);

    // A flood from one socket at a: 3000 broadcasts in a second.
    const pid = pl.helpers.get('a')!.proc.pid!;
    const pidB = pl.helpers.get('b')!.proc.pid!;
    const idle0 = cpuUs(pid);
    await new Promise((r) => setTimeout(r, 1000));
    const idleCpu = cpuUs(pid) - idle0;
    const [sa0, sb0] = await Promise.all([lanStatus(pl, a), lanStatus(pl, b)]);
    const cpu0 = cpuUs(pid);
    const cpuB0 = cpuUs(pidB);
    const f0 = Date.now();
    const flood = runGame<{ sent: number; ms: number }>(lab, a, ['flood', String(GAME_PORT), '3000', '1000']);
    const pings = await Promise.all([vipB, vipC].map((ip) => lab.exec(a.host.ns, 'ping', ['-c', '8', '-i', '0.1', '-W', '1', ip], { timeoutMs: 10_000 })));
    const sent = await flood;
    await new Promise((r) => setTimeout(r, 300));
    const cpu1 = cpuUs(pid);
    const cpuB1 = cpuUs(pidB);
    const floodMs = Date.now() - f0;
    for (const p of pings) assert.match(p.stdout, / 0% packet loss/);
    const [sa1, sb1] = await Promise.all([lanStatus(pl, a), lanStatus(pl, b)]);
    const captured = sa1.captured - sa0.captured;
    const limited = sa1.droppedRateLimited - sa0.droppedRateLimited;
    const injectedB = sb1.injected - sb0.injected;
    const got = await Promise.all(servers.map((s) => s.stats().then((x) => x.flood)));
    const cpuA = cpu1 - cpu0 - (idleCpu * floodMs) / 1000;
    t.diagnostic(`flood: ${sent.sent} sent in ${sent.ms.toFixed(0)} ms; a captured ${captured}, rate-limited ${limited}, forwarded ${sa1.forwarded - sa0.forwarded}; b, c, d got ${got.join(', ')}`);
    t.diagnostic(
      `helper CPU (process, all threads, 10 ms ticks): a ${((cpu1 - cpu0) / 1000).toFixed(0)} ms during ${floodMs} ms (idle ${(idleCpu / 1000).toFixed(0)} ms/s) → ~${(cpuA / Math.max(1, captured)).toFixed(1)} µs per captured datagram; ` +
        `b ${((cpuB1 - cpuB0) / 1000).toFixed(0)} ms for ${injectedB} received and injected`,
    );
    assert.ok(captured >= 2500, `a captured ${captured} of 3000`);
    const most = floodLimit(floodMs);
    assert.ok(limited >= captured - most, `a rate-limited ${limited}`);
    for (const g of got) assert.ok(g >= 100 && g <= most, `a player received ${g} flood datagrams (limit: burst 100 + 50/s: at most ${most} in ${floodMs} ms)`);
    const text = await pl.cliText(a, ['status']);
    assert.match(text, /\(\d+ rate-limited\)/);
    // The flooding socket is limited, not the game: a new client still finds servers at once.
    const post = await runGame<ClientResult>(lab, a, ['client', String(GAME_PORT), 'post', '20000']);
    assert.ok(post.ok, JSON.stringify(post));
  });
});
