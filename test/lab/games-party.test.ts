import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { LanStats } from '../../helper/gen/lanrage/v1/network.js';
import { haveCommands, requireOrSkip } from '../lib/repo.js';
import { labAvailable, withLab, type LabSite } from './lab.js';
import type { PartyLab } from './party-lab.js';
import { AVAHI_TOOLS, startAvahi, startLanParty, tunnelPackets, type Avahi } from './drivers/lan-lab.js';

// Games across the party with real game servers from Debian: OpenArena's dedicated server at one
// NATed site, on a port nobody configured anywhere (27961: not in the helper's built-in list, not
// in any broadcast_ports). Its helper detects it by process, queries it locally and announces it;
// the other player's helper then carries the game's discovery ports, qstat's LAN broadcast there
// finds the server at the host's virtual IP, and its server browser lists it with the name and
// map from a real query. Stopping the server removes it. mDNS: a service published with the
// host's own records (its LAN address) resolves at the other site to the host's virtual IP, and a
// TCP connection to it succeeds.

const OA = '/usr/games/openarena-server';
const PORT = 27961;

interface ServerJson {
  id: string; name: string; address: string; map: string; players: number; maxPlayers: number; hostName: string; gameName: string; gameProfileId: string; local: boolean; rttMs: number;
}

interface SessionJson {
  gameName: string; durationSeconds: string | number;
  players: Array<{ deviceId: string; name: string; overlapSeconds: string | number; averageRttMs: number; directShare: number }>;
}

async function servers(pl: PartyLab, site: LabSite): Promise<ServerJson[]> {
  return (await pl.cli<{ servers: ServerJson[] }>(site, ['servers'])).servers;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${String(last)})` : ''}`);
}

test('a real OpenArena server at one NATed site: detected, announced, found by LAN broadcast and listed at the other site with no port configured; gone when stopped; mDNS across connects', async (t) => {
  if (!requireOrSkip(existsSync(OA) && haveCommands(['quakestat']), 'openarena-server and qstat (Debian packages openarena-server, qstat)', t)) return;
  const avail = await labAvailable();
  if (!requireOrSkip(avail.ok, `network lab (${avail.why ?? ''})`, t)) return;
  await withLab({ sites: [{ name: 'a', kind: 'port-restricted' }, { name: 'b', kind: 'port-restricted' }] }, async (lab) => {
    const party = await startLanParty(lab, ['a', 'b'], { helperLan: true });
    const avahis: Avahi[] = [];
    try {
      const { pl } = party;
      const [a, b] = party.sites as [LabSite, LabSite];
      const [vipA, vipB] = party.vips as [string, string];
      const lanA0 = await pl.cli<{ lan: LanStats }>(a, ['status']);
      assert.ok(!lanA0.lan.ports.includes(PORT), `${PORT} is not carried before the game runs: ${JSON.stringify(lanA0.lan.ports)}`);

      // The server, as a player starts it (no master server: the lab has no internet).
      const t0 = Date.now();
      const oa = lab.spawn(b.host.ns, OA, ['+set', 'net_port', String(PORT), '+set', 'sv_hostname', 'LANrage frag night', '+set', 'sv_master1', '', '+set', 'sv_maxclients', '6', '+map', 'oa_dm1']);
      try {
        const listed = await until('the server listed at a', 30_000, async () => (await servers(pl, a)).find((s) => s.address === `${vipB}:${PORT}`));
        const listedMs = Date.now() - t0;
        t.diagnostic(`server start → listed at the other member: ${listedMs} ms (detection every 2 s, query, announce, control fan-out)`);
        assert.equal(listed.name, 'LANrage frag night');
        assert.equal(listed.map, 'oa_dm1');
        assert.equal(listed.maxPlayers, 6);
        assert.equal(listed.players, 0);
        assert.equal(listed.gameProfileId, 'openarena');
        assert.equal(listed.local, false);
        assert.ok(listed.hostName.length > 0);
        const atB = (await servers(pl, b)).find((s) => s.address === `${vipB}:${PORT}`);
        assert.ok(atB?.local, 'b lists its own server as local');

        // a now carries the game's discovery ports because b announced them: nobody typed a port.
        const lanA = await until('a carries the announced ports', 60_000, async () => {
          const s = await pl.cli<{ lan: LanStats }>(a, ['status']);
          return s.lan.ports.includes(PORT) ? s.lan : undefined;
        });
        const why = lanA.carried.find((c) => c.target === String(PORT))?.why ?? '';
        assert.match(why, /announced by/, JSON.stringify(lanA.carried));

        // The game's own LAN discovery, as qstat sends it: a broadcast to 255.255.255.255:27961.
        const tun0 = await tunnelPackets(lab, a, party.ifaces[0]!);
        const c0 = (await pl.cli<{ lan: LanStats }>(a, ['status'])).lan;
        const q0 = Date.now();
        const { stdout } = await lab.exec(a.host.ns, 'quakestat', ['-json', '-q3s', `+255.255.255.255:${PORT}`], { timeoutMs: 20_000 });
        const qMs = Date.now() - q0;
        const found = (JSON.parse(stdout) as Array<{ address: string; name?: string; status: string }>).filter((x) => x.status === 'online');
        const c1 = (await pl.cli<{ lan: LanStats }>(a, ['status'])).lan;
        const tun1 = await tunnelPackets(lab, a, party.ifaces[0]!);
        assert.deepEqual(found.map((x) => x.address), [`${vipB}:${PORT}`], stdout);
        assert.equal(found[0]!.name, 'LANrage frag night');
        t.diagnostic(
          `qstat broadcast at a found ${found[0]!.address} (qstat run ${qMs} ms); datagrams per discovery: a captured ${c1.captured - c0.captured}, ` +
            `forwarded ${c1.forwarded - c0.forwarded} envelope(s); a's tunnel sent ${tun1.tx - tun0.tx} and received ${tun1.rx - tun0.rx} packets`,
        );

        // a's player joins in (another OpenArena process at a): a's helper records a game session
        // in which b played along (b's helper announces the game it runs), with the RTT to b.
        const oaA = lab.spawn(a.host.ns, OA, ['+set', 'net_port', String(PORT + 1), '+set', 'sv_master1', '', '+map', 'oa_dm1']);
        try {
          await until('a detects its own OpenArena', 60_000, async () => {
            const d = await pl.cli<{ detections: Array<{ pid: number }> }>(a, ['games']);
            return d.detections.some((x) => x.pid === oaA.pid) ? true : undefined;
          });
          await new Promise((r) => setTimeout(r, 6000));
        } finally {
          const gone = new Promise((r) => oaA.once('exit', r));
          oaA.kill('SIGTERM');
          await gone;
        }
        const session = await until('a recorded the session', 60_000, async () => {
          const r = await pl.cli<{ sessions: SessionJson[] }>(a, ['games', 'sessions', '--game', 'openarena']);
          return r.sessions[0];
        });
        t.diagnostic(`session at a: ${session.durationSeconds} s with ${JSON.stringify(session.players)}`);
        assert.equal(session.gameName, 'OpenArena');
        assert.ok(Number(session.durationSeconds) >= 5, `${session.durationSeconds} s`);
        assert.equal(session.players.length, 1, 'b played along');
        assert.equal(session.players[0]!.name, listed.hostName);
        assert.ok(Number(session.players[0]!.overlapSeconds) >= 5);
        assert.ok(session.players[0]!.averageRttMs > 0, 'the round trip to b was measured while both played');

        // mDNS: a TCP service published at b with b's own host records (its LAN address).
        avahis.push(await startAvahi(lab, a, `gpa${lab.id}`), await startAvahi(lab, b, `gpb${lab.id}`));
        const tcp = lab.spawn(b.host.ns, process.execPath, ['-e', "require('net').createServer((s)=>{s.end('hello from b\\n')}).listen(5555,()=>console.log('up'))"]);
        await new Promise<void>((resolve) => tcp.stdout!.once('data', () => resolve()));
        await avahis[1]!.publish(['-s', 'LANrage tcp', '_lanrage-tcp._tcp', '5555']);
        const m0 = Date.now();
        const svc = await avahis[0]!.resolve('_lanrage-tcp._tcp');
        t.diagnostic(`avahi-browse at a resolved "${svc.name}" → ${svc.host} ${svc.address}:${svc.port} in ${Date.now() - m0} ms`);
        assert.equal(svc.address, vipB, 'the host record carried across names the virtual IP, not the LAN address');
        const conn = await lab.exec(a.host.ns, process.execPath, ['-e', `const s=require('net').connect(${svc.port},'${svc.address}');s.on('data',(d)=>{process.stdout.write(d);s.end()});s.setTimeout(5000,()=>process.exit(2))`], { timeoutMs: 10_000 });
        assert.equal(conn.stdout.trim(), 'hello from b');
        tcp.kill();
        void vipA;
      } finally {
        const exited = new Promise((r) => oa.once('exit', r));
        oa.kill('SIGTERM');
        await exited;
      }
      const s0 = Date.now();
      await until('the stopped server leaves a\'s list', 30_000, async () => ((await servers(pl, a)).some((s) => s.address === `${vipB}:${PORT}`) ? undefined : true));
      t.diagnostic(`server stopped → gone at the other member: ${Date.now() - s0} ms`);
      assert.equal((await servers(pl, b)).length, 0);
    } finally {
      for (const x of avahis) x.cleanup();
      party.pl.cleanup();
    }
  });
});
