import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { labAvailable, withLab, type Lab, type LabSite } from './lab.js';
import { PartyLab, STUN_PORT, waitParty, type PartyJson } from './party-lab.js';
import { miniupnpdAvailable, startMiniupnpd, type LeaseEntry, type Miniupnpd } from './miniupnpd.js';
import { PORTMAP_DRIVER } from './drivers/portmap-driver.js';
import { requireOrSkip } from '../lib/repo.js';

// Port mapping against a real miniupnpd (Debian's miniupnpd-nftables) on a lab router: the helper
// maps its public UDP port, publishes it, keeps it (renewals) and removes it on exit; a player
// behind a symmetric NAT, which no hole punching reaches, gets a direct path through it.
// PathKind numbers as in peer.proto.
const DIRECT = 2;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function ready(t: { skip(msg: string): void }): Promise<boolean> {
  const avail = await labAvailable();
  if (!requireOrSkip(avail.ok, `network lab (${avail.why ?? ''})`, t)) return false;
  return requireOrSkip(miniupnpdAvailable(), 'Debian package miniupnpd-nftables (/usr/sbin/miniupnpd)', t);
}

/** The candidates the control server stores for a device (its own database, read-only). */
function controlCandidates(pl: PartyLab, deviceId: string): string[] {
  const db = new Database(join(pl.control!.stateDir, 'control.db'), { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare('SELECT candidates FROM devices WHERE id = ?').get(deviceId) as { candidates: string } | undefined;
    return row ? (JSON.parse(row.candidates) as string[]) : [];
  } finally {
    db.close();
  }
}

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(250);
  }
}

test('behind a miniupnpd router: the helper maps its port, publishes it, renews it, removes it on exit; a symmetric player reaches it directly', async (t) => {
  if (!(await ready(t))) return;
  await withLab({ sites: [{ name: 'up', kind: 'upnp' }, { name: 'sym', kind: 'symmetric' }] }, async (lab) => {
    const pl = new PartyLab(lab);
    let mini: Miniupnpd | undefined;
    try {
      await pl.startControl();
      const [up, sym] = [lab.site('up'), lab.site('sym')];
      // Leases of at most 20 s, so that the test sees renewals (the helper asks for 2 h).
      mini = await startMiniupnpd(lab, up, { stunHost: lab.control.ip, stunPort: STUN_PORT, minLifetime: 10, maxLifetime: 20 });
      const hUp = await pl.startHelper(up);
      await pl.startHelper(sym);

      const t0 = Date.now();
      const created = await pl.cli<PartyJson>(up, ['create', 'mapped']);
      const mappedLog = await hUp.waitLog('port mapped', 60_000);
      const msToMapping = Date.now() - t0;
      const external = String(mappedLog.external);
      const extPort = Number(external.split(':')[1]);
      assert.equal(mappedLog.protocol, 'pcp', 'PCP is tried first and miniupnpd speaks it');
      assert.equal(external.split(':')[0], up.publicIp, 'the mapped address is the router’s public address');

      // The router holds it: miniupnpd's lease and its DNAT rule to the helper's machine.
      const lease = mini.leases().find((l) => l.externalPort === extPort);
      assert.ok(lease, `no lease for port ${extPort}: ${JSON.stringify(mini.leases())}`);
      assert.equal(lease.protocol, 'UDP');
      assert.equal(lease.internalClient, up.lanIp);
      assert.ok(lease.expires > 0, 'a lease, not a permanent mapping');
      const rules = await mini.dnatRules();
      assert.ok(rules.some((r) => r.includes(`dport ${extPort}`) && r.includes(up.lanIp)), `no DNAT rule for ${extPort}: ${rules.join(' | ')}`);

      // The control server has it among the member's candidates.
      const upId = created.party!.members.find((m) => m.isSelf)!.deviceId;
      const cands = await until('mapped candidate at the control server', () => {
        const c = controlCandidates(pl, upId);
        return c.includes(external) ? c : undefined;
      });
      t.diagnostic(`candidates at the control server: ${cands.join(', ')}`);

      // A player behind a symmetric NAT joins and reaches the mapped port directly.
      const tJoin = Date.now();
      await pl.cli(sym, ['join', created.party!.inviteLink]);
      const fromSym = await waitParty(pl, sym, (p) => p.peers.length === 1 && p.peers[0]!.path === DIRECT, 60_000);
      const msToDirect = Date.now() - tJoin;
      assert.equal(fromSym.peers[0]!.endpoint, external, 'the symmetric player’s direct path is the mapped port');
      await waitParty(pl, up, (p) => p.peers.length === 1 && p.peers[0]!.path === DIRECT, 60_000);
      // It came in through the mapping: the router's conntrack has the symmetric player's flow
      // to the mapped port, destination-NATed to the helper (port-restricted filtering alone drops it).
      const { stdout: ct } = await lab.exec(up.router!.ns, 'conntrack', ['-L', '-p', 'udp', '--dst-nat'], { timeoutMs: 10_000 });
      assert.ok(
        ct.split('\n').some((l) => l.includes(`src=${sym.publicIp} dst=${up.publicIp}`) && l.includes(`dport=${extPort} `) && l.includes(`src=${up.lanIp}`)),
        `no DNATed flow from ${sym.publicIp} to port ${extPort}:\n${ct}`,
      );
      const ipUp = fromSym.peers[0]!.virtualIp;
      // The tunnel carries traffic once WireGuard's handshake is through (ping until one answers).
      await until('first ping through the tunnel', () =>
        lab.exec(sym.host.ns, 'ping', ['-c', '1', '-W', '1', ipUp], { timeoutMs: 5000 }).then(() => true, () => undefined), 60_000);
      const { stdout } = await lab.exec(sym.host.ns, 'ping', ['-c', '5', '-i', '0.2', '-W', '2', ipUp], { timeoutMs: 20_000 });
      assert.match(stdout, / 0% packet loss/);

      // The NAT report names the protocols that answered.
      const report = await pl.cli<{ portMapping: string[] }>(up, ['netcheck']);
      assert.deepEqual([...report.portMapping].sort(), ['nat-pmp', 'pcp', 'upnp']);

      // Renewed: the router granted 20 s; 30 s later the mapping is still there, with a later end.
      const firstEnd = lease.expires;
      await sleep(30_000);
      const later = mini.leases().find((l) => l.externalPort === extPort);
      assert.ok(later, `the mapping expired: ${JSON.stringify(mini.leases())}\n${mini.logs.slice(-10).join('\n')}`);
      assert.ok(later.expires > firstEnd, `lease end did not move: ${firstEnd} → ${later.expires}`);
      assert.ok((await mini.dnatRules()).some((r) => r.includes(`dport ${extPort}`)));
      const renewals = hUp.logs.filter((l) => l.includes('"port mapping renewed"')).length;
      assert.ok(renewals >= 2, `${renewals} renewals logged in 30 s of 20-s leases`);
      const again = await pl.cli<PartyJson>(sym, ['party']);
      assert.equal(again.peers[0]!.path, DIRECT);

      // Deleted when the helper exits.
      await pl.stopHelper(up, 'SIGTERM');
      assert.equal(mini.leases().filter((l) => l.externalPort === extPort).length, 0, 'lease left behind');
      assert.ok(!(await mini.dnatRules()).some((r) => r.includes(`dport ${extPort}`)), 'DNAT rule left behind');
      t.diagnostic(`party created → port mapped: ${msToMapping} ms; join → direct (symmetric → mapped): ${msToDirect} ms; renewals in 30 s: ${renewals}`);
    } finally {
      await mini?.stop();
      pl.cleanup();
    }
  });
});

/** Runs the driver in a site's host namespace; resolves with its JSON lines as they come. */
function driver(lab: Lab, site: LabSite, args: string[]) {
  const proc = lab.spawn(site.host.ns, process.execPath, [PORTMAP_DRIVER, ...args], { env: { ...process.env, LANRAGE_LOG: 'debug' } });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      return;
    }
    for (const w of waiters.splice(0)) w();
  });
  const stderr: string[] = [];
  createInterface({ input: proc.stderr! }).on('line', (l) => stderr.push(l));
  return {
    proc,
    async next(timeoutMs = 15_000): Promise<Record<string, unknown>> {
      const end = Date.now() + timeoutMs;
      const seen = lines.length;
      while (lines.length === seen) {
        if (Date.now() > end || proc.exitCode !== null) throw new Error(`portmap driver: no output within ${timeoutMs} ms:\n${stderr.slice(-10).join('\n')}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
      return lines[seen]!;
    },
  };
}

test('each protocol alone against miniupnpd (PCP, NAT-PMP, UPnP IGD): map, seen by the router, deleted on stop; a probe with no router to answer ends by its own timeouts', async (t) => {
  if (!(await ready(t))) return;
  await withLab({ sites: [{ name: 'up', kind: 'upnp' }, { name: 'plain', kind: 'port-restricted' }] }, async (lab) => {
    const pl = new PartyLab(lab);
    let mini: Miniupnpd | undefined;
    try {
      await pl.startControl();
      const [up, plain] = [lab.site('up'), lab.site('plain')];
      mini = await startMiniupnpd(lab, up, { stunHost: lab.control.ip, stunPort: STUN_PORT });

      const probe = await driver(lab, up, ['probe']).next();
      assert.deepEqual(probe.answered, ['pcp', 'nat-pmp', 'upnp']);
      const none = await driver(lab, plain, ['probe']).next();
      assert.deepEqual(none.answered, []);
      // By design 1.5 s (PORTMAP_TIMING); the bound only tells "ended by its own timeouts" from
      // "waited out a retransmission schedule" (PCP's RFC one runs for minutes), with room for a
      // loaded machine's late timers.
      assert.ok(Number(none.ms) < 10_000, `probe with nothing answering took ${String(none.ms)} ms`);
      t.diagnostic(`probe: miniupnpd ${String(probe.ms)} ms / ${String(probe.packets)} datagrams; nothing answering ${String(none.ms)} ms / ${String(none.packets)} datagrams`);

      for (const proto of ['pcp', 'nat-pmp', 'upnp']) {
        const d = driver(lab, up, ['map', proto, '3600']);
        const m = await d.next();
        assert.equal(m.ev, 'mapped');
        assert.equal(m.protocol, proto);
        const [ip, port] = String(m.external).split(':');
        assert.equal(ip, up.publicIp);
        const lease: LeaseEntry | undefined = mini.leases().find((l) => l.externalPort === Number(port));
        assert.ok(lease, `${proto}: no lease for ${String(m.external)}: ${JSON.stringify(mini.leases())}`);
        assert.equal(lease.internalPort, m.internalPort);
        assert.ok(lease.expires > 0, `${proto}: permanent mapping`);
        d.proc.stdin!.write('stop\n');
        assert.equal((await d.next()).ev, 'stopped');
        assert.equal(mini.leases().filter((l) => l.externalPort === Number(port)).length, 0, `${proto}: lease left behind`);
        t.diagnostic(`${proto}: mapped ${String(m.external)} in ${String(m.ms)} ms (${String(m.packets)} datagrams incl. the probe)`);
      }
    } finally {
      await mini?.stop();
      pl.cleanup();
    }
  });
});

test('a symmetric NAT running miniupnpd: the player behind it maps its port and reaches a port-restricted and a symmetric player directly through the mapping', async (t) => {
  if (!(await ready(t))) return;
  const sites = [{ name: 'us', kind: 'upnp-symmetric' as const }, { name: 'pr', kind: 'port-restricted' as const }, { name: 'sym', kind: 'symmetric' as const }];
  await withLab({ sites }, async (lab) => {
    const pl = new PartyLab(lab);
    let mini: Miniupnpd | undefined;
    try {
      await pl.startControl({ relay: true });
      const [us, pr, sym] = [lab.site('us'), lab.site('pr'), lab.site('sym')];
      mini = await startMiniupnpd(lab, us, { stunHost: lab.control.ip, stunPort: STUN_PORT });
      const hUs = await pl.startHelper(us);
      await pl.startHelper(pr);
      await pl.startHelper(sym);
      const created = await pl.cli<PartyJson>(us, ['create', 'mapped symmetric']);
      const mapped = await hUs.waitLog('port mapped', 60_000);
      const external = String(mapped.external);
      assert.equal(external.split(':')[0], us.publicIp);
      // Without the mapping this pair needs birthday probing (symnat.test.ts); with it, the
      // mapped port is a candidate the port-restricted player can reach at once.
      const report = await pl.cli<{ mapping: string; portMapping: string[] }>(us, ['netcheck']);
      assert.equal(report.mapping, 'address-and-port-dependent', 'the router is a symmetric NAT');
      assert.ok(report.portMapping.length > 0, 'and answers a port-mapping protocol');
      const t0 = Date.now();
      await pl.cli(pr, ['join', created.party!.inviteLink]);
      const fromPr = await waitParty(pl, pr, (p) => p.peers.length === 1 && p.peers[0]!.path === DIRECT, 60_000);
      const ms = Date.now() - t0;
      await waitParty(pl, us, (p) => p.peers.length === 1 && p.peers[0]!.path === DIRECT, 60_000);
      t.diagnostic(`port mapped (${String(mapped.protocol)}) ${external}; join → direct ${ms} ms; pr's path: ${fromPr.peers[0]!.endpoint}`);
      assert.equal(fromPr.peers[0]!.endpoint, external, "the port-restricted player's direct path is the mapped port");
      // Two symmetric NATs meet only through the mapping (no birthday probing between them).
      const t1 = Date.now();
      await pl.cli(sym, ['join', created.party!.inviteLink]);
      const usId = created.party!.members.find((m) => m.isSelf)!.deviceId;
      const fromSym = await waitParty(pl, sym, (p) => p.peers.find((x) => x.deviceId === usId)?.path === DIRECT, 60_000);
      t.diagnostic(`symmetric player: join → direct ${Date.now() - t1} ms via ${fromSym.peers.find((x) => x.deviceId === usId)!.endpoint}`);
      assert.equal(fromSym.peers.find((x) => x.deviceId === usId)!.endpoint, external, "the symmetric player's direct path is the mapped port");
      const ipUs = fromPr.peers[0]!.virtualIp;
      await until('first ping through the tunnel', () =>
        lab.exec(pr.host.ns, 'ping', ['-c', '1', '-W', '1', ipUs], { timeoutMs: 5000 }).then(() => true, () => undefined), 60_000);
      await pl.stopHelper(us, 'SIGTERM');
      assert.equal(mini.leases().filter((l) => `${us.publicIp}:${l.externalPort}` === external).length, 0, 'lease deleted on exit');
    } finally {
      await mini?.stop();
      pl.cleanup();
    }
  });
});
