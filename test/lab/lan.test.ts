import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_GROUPS } from '../../helper/lan/relay.js';
import { haveCommands, requireOrSkip } from '../lib/repo.js';
import { labAvailable, withLab } from './lab.js';
import { AVAHI_TOOLS, floodLimit, mdnsAcross, RELAY_PORT, runGame, startAvahi, startGameServer, startLanParty, startRelay, tunnelPackets, watchLeaks, type Avahi, type RelayHandle } from './drivers/lan-lab.js';

// The LAN illusion between real players: a real party (control server, helpers, wireguard-go,
// NAT routers) and a LanRelay beside each helper, talking over the party's virtual IPs. Games are
// found by broadcast or mDNS at another site and then reached by unicast over the tunnel; the
// games see the other player's virtual IP as the source.

const GAME_PORT = 27777;
const VNET = '10.66.0.0/16';


async function relays(lab: Parameters<typeof startRelay>[0], party: Awaited<ReturnType<typeof startLanParty>>): Promise<RelayHandle[]> {
  return Promise.all(
    party.sites.map((s, i) =>
      startRelay(lab, s, {
        selfVirtualIp: party.vips[i]!,
        peers: party.vips.filter((_, j) => j !== i),
        ports: [GAME_PORT],
        groups: [...DEFAULT_GROUPS],
        relayPort: RELAY_PORT,
        tunnelInterface: party.ifaces[i]!,
      }),
    ),
  );
}

test('two sites: a broadcast client finds a server at the other site, mDNS (avahi) resolves across, both then talk unicast over virtual IPs', async (t) => {
  const avail = await labAvailable();
  if (!requireOrSkip(avail.ok, `network lab (${avail.why ?? ''})`, t)) return;
  if (!requireOrSkip(haveCommands(AVAHI_TOOLS), 'avahi-daemon, avahi-utils and dbus-daemon (Debian packages)', t)) return;
  await withLab({ sites: [{ name: 'a', kind: 'port-restricted' }, { name: 'b', kind: 'port-restricted' }] }, async (lab) => {
    const party = await startLanParty(lab, ['a', 'b']);
    const avahis: Avahi[] = [];
    try {
      const [a, b] = party.sites as [typeof party.sites[0], typeof party.sites[0]];
      const [vipA, vipB] = party.vips as [string, string];
      const leaks = await Promise.all([watchLeaks(lab, a, VNET), watchLeaks(lab, b, VNET)]);
      const [ra, rb] = (await relays(lab, party)) as [RelayHandle, RelayHandle];

      // The game binds its port without SO_REUSEADDR after the relay started: the relay holds no game port.
      await startGameServer(lab, b, GAME_PORT, 'bserver');

      // Our own client: broadcast discovery, then unicast; the server reports the source it saw.
      const found = await runGame<{ ok: boolean; server: string; name: string; discoveryMs: number; rediscoveryMs: number | null; helloRttMs: number; serverSaw: string; clientPort: number }>(lab, a, ['client', String(GAME_PORT), 'n1', '20000']);
      assert.ok(found.ok, JSON.stringify(found));
      assert.equal(found.server, `${vipB}:${GAME_PORT}`, 'the answer comes from the server player virtual IP');
      assert.equal(found.serverSaw, `${vipA}:${found.clientPort}`, 'the server saw the client player virtual IP and the client port');
      assert.ok(found.rediscoveryMs !== null, 'a second broadcast from the same socket is answered too');
      t.diagnostic(
        `broadcast discovery across sites: ${found.discoveryMs.toFixed(1)} ms for the first datagram of a new source (the far side installs its injection rule), ` +
          `${found.rediscoveryMs.toFixed(2)} ms for the next; unicast HELLO round trip ${found.helloRttMs.toFixed(2)} ms`,
      );
      const again = await runGame<{ ok: boolean; discoveryMs: number }>(lab, a, ['client', String(GAME_PORT), 'n2', '20000']);
      assert.ok(again.ok);
      t.diagnostic(`second discovery (new client port, new injector rule): ${again.discoveryMs.toFixed(1)} ms`);

      // The server's own machine still sees its local broadcasts (nothing stolen by the capture).
      const local = await runGame<{ answers: Array<{ from: string; name: string }> }>(lab, b, ['once', String(GAME_PORT), 'n3', '15000', '1']);
      assert.deepEqual(local.answers.map((x) => x.name), ['bserver']);

      // mDNS with real avahi: a service published at b (its host record points at b's virtual IP)
      // is browsed and resolved at a, then reached by unicast.
      avahis.push(await startAvahi(lab, a, `lra${lab.id}`), await startAvahi(lab, b, `lrb${lab.id}`));
      const [ava, avb] = avahis as [Avahi, Avahi];
      const { svc, ms, hello } = await mdnsAcross(lab, ava, avb, {
        browseSite: a, pubVip: vipB, host: `bgame${lab.id}.local`, name: 'LANrage test game', type: '_lanrage-test._udp', port: GAME_PORT, tag: 'n4',
      });
      t.diagnostic(`avahi-browse at a resolved "${svc.name}" → ${svc.address}:${svc.port} in ${ms} ms`);
      assert.equal(svc.address, vipB);
      assert.equal(svc.port, GAME_PORT);
      assert.ok(hello.ok);
      assert.equal(hello.serverSaw, `${vipA}:${hello.clientPort}`);

      const [ca, cb] = await Promise.all([ra.counters(), rb.counters()]);
      t.diagnostic(`relay a: ${JSON.stringify(ca)}`);
      t.diagnostic(`relay b: ${JSON.stringify(cb)}`);
      assert.ok(ca.captured >= 2 && ca.forwarded >= 2, 'a captured and forwarded the discovery broadcasts');
      assert.ok(cb.injected >= 2, 'b injected them');
      assert.ok(cb.captured >= 1 && ca.injected >= 1, 'mDNS went both ways');
      for (const c of [ca, cb]) assert.equal(c.droppedInvalid + c.droppedLoop + c.errors, 0, JSON.stringify(c));
      // Nothing with a virtual source ever reached a real LAN (injection stays on the machine).
      assert.deepEqual(await Promise.all(leaks.map((l) => l())), [[], []]);
    } finally {
      for (const x of avahis) x.cleanup();
      party.pl.cleanup();
    }
  });
});

test('three sites: one broadcast reaches each other player exactly once; a flood is rate-limited and the tunnel stays usable', async (t) => {
  const avail = await labAvailable();
  if (!requireOrSkip(avail.ok, `network lab (${avail.why ?? ''})`, t)) return;
  await withLab({ sites: [{ name: 'a', kind: 'port-restricted' }, { name: 'b', kind: 'public' }, { name: 'c', kind: 'port-restricted' }] }, async (lab) => {
    const party = await startLanParty(lab, ['a', 'b', 'c']);
    try {
      const [a, b, c] = party.sites as [typeof party.sites[0], typeof party.sites[0], typeof party.sites[0]];
      const [vipA, vipB, vipC] = party.vips as [string, string, string];
      const [ra, rb, rc] = (await relays(lab, party)) as [RelayHandle, RelayHandle, RelayHandle];
      const [sb, sc] = await Promise.all([startGameServer(lab, b, GAME_PORT, 'b'), startGameServer(lab, c, GAME_PORT, 'c')]);
      // Warm-up: the injectors' rules for the first client exist afterwards, so the count below is clean.
      await runGame(lab, a, ['client', String(GAME_PORT), 'warm', '20000']);

      const before = await tunnelPackets(lab, a, party.ifaces[0]!);
      const one = await runGame<{ answers: Array<{ from: string; name: string }> }>(lab, a, ['once', String(GAME_PORT), 'exact', '15000', '2']);
      const after = await tunnelPackets(lab, a, party.ifaces[0]!);
      assert.deepEqual(one.answers.map((x) => x.from.split(':')[0]).sort(), [vipB, vipC].sort(), 'both other players answered, from their virtual IPs');
      const [stB, stC] = await Promise.all([sb.stats(), sc.stats()]);
      assert.equal(stB.discover.exact, 1, 'b saw the broadcast exactly once');
      assert.equal(stC.discover.exact, 1, 'c saw the broadcast exactly once');
      const seenFrom = [sb, sc].map((s) => s.lines.records.find((r) => r.ev === 'discover' && r.nonce === 'exact')?.from as string);
      for (const f of seenFrom) assert.equal(f.split(':')[0], vipA);
      t.diagnostic(`one broadcast with 3 players: a's tunnel sent ${after.tx - before.tx} packets and received ${after.rx - before.rx} (2 envelopes out, 2 unicast answers in)`);
      assert.ok(after.tx - before.tx >= 2 && after.tx - before.tx <= 4, `tunnel tx ${after.tx - before.tx}`);

      // A flood: 3000 broadcasts in one second from one socket.
      const [cpuA0, cpuB0] = await Promise.all([ra.counters(), rb.counters()]);
      const f0 = Date.now();
      const floodRun = runGame<{ sent: number; ms: number }>(lab, a, ['flood', String(GAME_PORT), '3000', '1000']);
      // The tunnel during the flood: pings from a to b and c get through.
      const ping = await lab.exec(a.host.ns, 'ping', ['-c', '8', '-i', '0.1', '-W', '1', vipB], { timeoutMs: 10_000 });
      const ping2 = await lab.exec(a.host.ns, 'ping', ['-c', '3', '-i', '0.1', '-W', '1', vipC], { timeoutMs: 10_000 });
      const flood = await floodRun;
      assert.match(ping.stdout, / 0% packet loss/);
      assert.match(ping2.stdout, / 0% packet loss/);
      await new Promise((r) => setTimeout(r, 300));
      const [cpuA1, cpuB1, cpuC1] = await Promise.all([ra.counters(), rb.counters(), rc.counters()]);
      const floodMs = Date.now() - f0;
      const [fb, fc] = await Promise.all([sb.stats(), sc.stats()]);
      const captured = cpuA1.captured - cpuA0.captured;
      const passed = cpuA1.forwarded - cpuA0.forwarded;
      t.diagnostic(`flood: ${flood.sent} sent in ${flood.ms.toFixed(0)} ms; a captured ${captured}, rate-limited ${cpuA1.droppedRateLimited - cpuA0.droppedRateLimited}, forwarded ${passed}; b got ${fb.flood}, c got ${fc.flood}`);
      t.diagnostic(
        `CPU during the flood: relay a ${((cpuA1.cpuUs - cpuA0.cpuUs) / 1000).toFixed(1)} ms for ${captured} captured (${((cpuA1.cpuUs - cpuA0.cpuUs) / Math.max(1, captured)).toFixed(1)} µs each); ` +
          `relay b ${((cpuB1.cpuUs - cpuB0.cpuUs) / 1000).toFixed(1)} ms for ${cpuB1.injected - cpuB0.injected} injected (including one nft run for the new source)`,
      );
      assert.ok(captured >= 2500, `a captured ${captured} of 3000`);
      // Default limits: 100 at once, then 50/s per sending socket, for as long as the flood was
      // captured (a second here, longer on a loaded machine).
      const most = floodLimit(floodMs);
      assert.ok(fb.flood >= 100 && fb.flood <= most, `b received ${fb.flood} flood datagrams (at most ${most} in ${floodMs} ms)`);
      assert.ok(fc.flood >= 100 && fc.flood <= most, `c received ${fc.flood} flood datagrams (at most ${most} in ${floodMs} ms)`);
      assert.ok(cpuA1.droppedRateLimited - cpuA0.droppedRateLimited >= captured - most);
      // Discovery right after the flood still works (another socket: its own budget).
      const after2 = await runGame<{ ok: boolean; discoveryMs: number }>(lab, a, ['client', String(GAME_PORT), 'post', '20000']);
      assert.ok(after2.ok);
      for (const x of [cpuA1, cpuB1, cpuC1]) assert.equal(x.droppedInvalid + x.droppedLoop + x.errors, 0, JSON.stringify(x));
    } finally {
      party.pl.cleanup();
    }
  });
});
