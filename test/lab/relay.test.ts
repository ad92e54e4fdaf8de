// Issue 4, end to end: real helpers behind real (namespaced) NATs, a real control server that hands
// out TURN credentials, and real coturn in the server namespace. Driven with the real CLI.
// PathKind numbers as in peer.proto.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LabSite } from './lab.js';
import { waitParty, type PartyJson, type PartyLab, type PeerJson } from './party-lab.js';
import { firstAnswerMs, withParty } from './party-run.js';
import { RELAY_ABUSE_SCRIPT } from './drivers/relay-abuse.js';

const DIRECT = 2;
const RELAYED = 3;

/** The peer with this virtual IP (every lab helper has the same device name). */
const pathOf = (p: PartyJson, ip: string): PeerJson | undefined => p.peers.find((x) => x.virtualIp === ip);
const selfIp = (p: PartyJson): string => p.party!.members.find((m) => m.isSelf)!.virtualIp;
const ipOf = async (pl: PartyLab, s: LabSite): Promise<string> => selfIp(await pl.cli<PartyJson>(s, ['party']));

async function pingLoss(pl: PartyLab, from: LabSite, ip: string, count: number, intervalS: number): Promise<{ loss: number; out: string }> {
  const { stdout } = await pl.lab.exec(from.host.ns, 'ping', ['-c', String(count), '-i', String(intervalS), '-W', '2', ip], { timeoutMs: count * intervalS * 1000 + 30_000 }).catch(
    (err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }),
  );
  const m = / (\d+(?:\.\d+)?)% packet loss/.exec(stdout);
  return { loss: m ? Number(m[1]) : 100, out: stdout };
}

test('symmetric ↔ symmetric: relayed through coturn from the first packet (before direct probing gives up); survives both NATs forgetting every mapping; the relay refuses addresses outside the party', async (t) => {
  await withParty(t, [{ name: 's1', kind: 'symmetric' }, { name: 's2', kind: 'symmetric' }], { relay: true }, async (pl, lab) => {
    const [s1, s2] = [lab.site('s1'), lab.site('s2')];
    const created = await pl.cli<PartyJson>(s1, ['create', 'Relay night']);
    const ip1 = selfIp(created);
    const t0 = Date.now();
    await pl.cli(s2, ['join', created.party!.inviteLink]);
    const joined = Date.now() - t0;
    // The first ping is answered through the relay while direct probing still runs (its window is
    // 10 s): relayed from the first packet. How fast is a benchmark's business (relay.bench,
    // joinstorm.bench), not an assertion that a loaded machine can fail: what is asserted is the
    // order, the answer before either helper logs that its probing window ended.
    const pinged = Date.now();
    const first = await firstAnswerMs(pl, s2, ip1, 30_000);
    t.diagnostic(`join command ${joined} ms; first ping answered ${joined + first} ms after the join started`);
    const gaveUp = await Promise.all([s1, s2].map((s) => pl.helpers.get(s.name)!.waitLog('no direct path yet', 60_000)));
    const gaveUpAt = Math.min(...gaveUp.map((r) => Date.parse(String(r.t))));
    assert.ok(pinged + first < gaveUpAt, `the first answer came ${pinged + first - gaveUpAt} ms after direct probing gave up: not relayed from the first packet`);

    const ip2 = await ipOf(pl, s2);
    // Relayed at once; once the direct probing window (10 s) is over, the reason says why.
    const why = (ip: string) => (p: PartyJson): boolean => pathOf(p, ip)?.path === RELAYED && /symmetric/.test(pathOf(p, ip)?.pathReason ?? '');
    const v2 = await waitParty(pl, s2, why(ip1), 60_000);
    const v1 = await waitParty(pl, s1, why(ip2), 60_000);
    for (const v of [v1, v2]) {
      const peer = v.peers[0]!;
      assert.match(peer.endpoint, new RegExp(`^udp:${lab.control.ip.replace(/\./g, '\\.')}:\\d+$`), 'the relay is named as the endpoint');
      assert.match(peer.pathReason, /^relayed through udp:.*symmetric/, 'the reason says why it is relayed');
    }
    const { loss } = await pingLoss(pl, s1, selfIp(v2), 20, 0.1);
    assert.equal(loss, 0);
    const cliPing = await pl.cliText(s1, ['ping', ip2, '--count', '3']);
    assert.match(cliPing, /\(relayed\)/);

    // NAT rebinding (issue 13): both routers forget every mapping, so each helper's TURN traffic
    // leaves from a new public port and coturn orphans both allocations (our data dropped
    // silently). The pair must find that out and come back relayed by itself. How fast is
    // rebind.bench's business.
    const logsFrom = [s1, s2].map((s) => pl.helpers.get(s.name)!.logs.length);
    await Promise.all([s1, s2].map((s) => lab.exec(s.router!.ns, 'conntrack', ['-F'])));
    const back = await firstAnswerMs(pl, s1, ip2, 60_000);
    t.diagnostic(`both NATs flushed: pinging again after ${back} ms`);
    const reallocated = [s1, s2].filter((s, i) => pl.helpers.get(s.name)!.logs.slice(logsFrom[i]).some((l) => l.includes('"relay re-allocated"')));
    assert.ok(reallocated.length > 0, 'a new allocation replaced the orphaned one');
    await waitParty(pl, s1, (p) => pathOf(p, ip2)?.path === RELAYED, 60_000);
    const afterFlush = await pingLoss(pl, s1, ip2, 20, 0.1);
    assert.equal(afterFlush.loss, 0, `pings after the rebinding:\n${afterFlush.out.slice(-400)}`);

    // A member takes credentials from the control server and tries to relay to a non-member's
    // address: coturn refuses the permission (403); its data never reaches s1's tunnel.
    const outsider = lab.site('s2').publicIp;
    const abuse = await runAbuse(pl, s2, created.party!.inviteLink, `${outsider}:9`);
    assert.equal(abuse.outsideRefused, true, `permission for ${outsider} must be refused: ${JSON.stringify(abuse)}`);
    assert.ok(abuse.relayed, 'the abuser did get an allocation (the credentials are real)');
  });
});

test('UDP blocked ↔ port-restricted: relayed over TCP, pinging', async (t) => {
  await withParty(t, [{ name: 'u', kind: 'udp-blocked' }, { name: 'p', kind: 'port-restricted' }], { relay: true }, async (pl, lab) => {
    const [u, p] = [lab.site('u'), lab.site('p')];
    const created = await pl.cli<PartyJson>(p, ['create', 'Office']);
    const t0 = Date.now();
    await pl.cli(u, ['join', created.party!.inviteLink]);
    const joined = Date.now() - t0;
    const first = await firstAnswerMs(pl, u, selfIp(created), 30_000);
    t.diagnostic(`UDP-blocked site: join command ${joined} ms, first ping answered ${joined + first} ms after the join started`);
    const [ipP, ipU] = [selfIp(created), await ipOf(pl, u)];
    const vu = await waitParty(pl, u, (x) => pathOf(x, ipP)?.path === RELAYED, 60_000);
    assert.match(vu.peers[0]!.endpoint, new RegExp(`^tcp:${lab.control.ip.replace(/\./g, '\\.')}:\\d+$`), 'TURN over TCP from the UDP-blocked site');
    const vp = await waitParty(pl, p, (x) => pathOf(x, ipU)?.path === RELAYED, 60_000);
    assert.match(vp.peers[0]!.endpoint, /^udp:/, 'the other side keeps UDP');
    const { loss } = await pingLoss(pl, u, selfIp(vp), 20, 0.1);
    assert.equal(loss, 0);
  });
});

test('port-restricted pair with a relay: the first packets may be relayed; within seconds the path is direct', async (t) => {
  await withParty(t, [{ name: 'a', kind: 'port-restricted' }, { name: 'b', kind: 'port-restricted' }], { relay: true }, async (pl, lab) => {
    const [a, b] = [lab.site('a'), lab.site('b')];
    const created = await pl.cli<PartyJson>(a, ['create', 'Upgrade']);
    const t0 = Date.now();
    await pl.cli(b, ['join', created.party!.inviteLink]);
    const joined = Date.now() - t0;
    const first = await firstAnswerMs(pl, b, selfIp(created), 30_000);
    const vb = await waitParty(pl, b, (p) => p.peers[0]?.path === DIRECT, 60_000);
    await waitParty(pl, a, (p) => p.peers[0]?.path === DIRECT, 60_000);
    t.diagnostic(`first ping answered ${joined + first} ms after the join started; direct on both sides after ${Date.now() - t0} ms`);
    assert.equal(vb.peers[0]!.endpoint.split(':')[0], a.publicIp, 'direct to the peer, not the relay');
    assert.equal(vb.peers[0]!.fastPath, true, 'a direct peer moves to the fast path');

    // NAT rebinding on the direct path while traffic flows (issue 13): both routers forget every
    // mapping under a 20 pps ping. The fast path keeps sending to the old mappings; the traffic
    // watch must notice (unanswered on one side, stopped on the other) and the traffic must come
    // back by itself — through the relay at once, while the direct path is re-probed. The outage
    // is printed, not asserted (rebind.bench measures it).
    const ipA = selfIp(created);
    // A second rebinding while the pair is relayed (right after the first, before it re-punches): each
    // router may hand a flow back its original port, where the relay still keeps the allocation the
    // first rebinding orphaned — the pair must not mistake that one for its own.
    for (const round of [1, 2]) {
      const r = await flushUnderPing(pl, b, ipA, [a, b]);
      // Pings come back by themselves; within the 12 s the ping above still ran after the flush
      // as a rule, later on a loaded machine (then the outage is at least the rest of that ping).
      const late = r.after > 0 ? 0 : await firstAnswerMs(pl, b, ipA, 60_000).catch(() => -1);
      assert.ok(late >= 0, `pings come back after both NATs forgot every mapping (flush ${round}): none within 72 s`);
      const [pa, pb] = await Promise.all([pl.cli<PartyJson>(a, ['party']), pl.cli<PartyJson>(b, ['party'])]);
      t.diagnostic(`rebinding ${round}: longest gap in the replies after the flush ${r.after > 0 ? Math.round(r.outage) : `> ${Math.round(r.outage)} (back ${late} ms after the 15 s ping ended)`} ms; path now ${pa.peers[0]?.path}/${pb.peers[0]?.path} (2 direct, 3 relayed)`);
      const steady = await pingLoss(pl, b, ipA, 20, 0.1);
      assert.equal(steady.loss, 0, `pings once it recovered (flush ${round}):\n${steady.out.slice(-400)}`);
    }
    // And the pair goes direct again by itself: the stale conntrack entries the flush left on each
    // router (the peer's packets that arrived before our own mapping existed) must not keep the
    // re-punch failing for good (path.ts: a quiet spell of 40 s, then priming again; a spell may
    // need a second round). The bound is generous: correctness, not speed; the time is printed.
    for (const s of [a, b]) t.diagnostic(`${s.name} router UDP conntrack after the flushes (peer flows):\n${await peerFlows(lab, s, [a, b])}`);
    const tBack = Date.now();
    const ipB = await ipOf(pl, b);
    const direct = (ip: string) => (p: PartyJson): boolean => pathOf(p, ip)?.path === DIRECT;
    try {
      await Promise.all([waitParty(pl, a, direct(ipB), 150_000), waitParty(pl, b, direct(ipA), 150_000)]);
    } finally {
      t.diagnostic(`direct again on both sides ${Date.now() - tBack} ms after the last flush's ping ended`);
      for (const s of [a, b]) t.diagnostic(`${s.name} router UDP conntrack (peer flows):\n${await peerFlows(lab, s, [a, b])}`);
    }
    const again = await pingLoss(pl, b, ipA, 20, 0.1);
    assert.equal(again.loss, 0, `pings on the direct path again:\n${again.out.slice(-400)}`);
  });
});

test('relay restarted mid-session: relayed pairs recover by themselves with fresh credentials, direct pairs never notice; credentials expiring after seconds keep the session going', async (t) => {
  const TTL = 5;
  await withParty(t, [{ name: 'x', kind: 'symmetric' }, { name: 'y', kind: 'symmetric' }, { name: 'z', kind: 'public' }], { relay: true, turnTtlSeconds: TTL }, async (pl, lab) => {
    const [x, y, z] = [lab.site('x'), lab.site('y'), lab.site('z')];
    const created = await pl.cli<PartyJson>(x, ['create', 'Restart']);
    await pl.cli(y, ['join', created.party!.inviteLink]);
    await pl.cli(z, ['join', created.party!.inviteLink]);
    const [ipX, ipY, ipZ] = [selfIp(created), await ipOf(pl, y), await ipOf(pl, z)];
    await waitParty(pl, x, (p) => pathOf(p, ipY)?.path === RELAYED && pathOf(p, ipZ)?.path === DIRECT, 60_000);
    await waitParty(pl, y, (p) => pathOf(p, ipX)?.path === RELAYED && pathOf(p, ipZ)?.path === DIRECT, 60_000);
    const minutes = Number(process.env.RELAY_SESSION_SECONDS ?? 125);
    // Every credential in use expired TTL seconds after it was minted; the session goes on.
    const long = await pingLoss(pl, x, ipY, Math.round(minutes * 2), 0.5);
    t.diagnostic(`relayed session for ${minutes} s with ${TTL} s credentials: ${long.loss}% loss`);
    assert.ok(long.loss <= 1, `relayed session lost ${long.loss}% over ${minutes} s`);

    const direct = pingLoss(pl, x, ipZ, 100, 0.1);
    await sleep(1000);
    const tRestart = Date.now();
    await pl.restartRelay();
    const back = await firstAnswerMs(pl, x, ipY, 60_000);
    t.diagnostic(`relay restarted: relayed pair pinging again ${Date.now() - tRestart} ms after the restart began (${back} ms after the relay was back)`);
    const d = await direct;
    assert.equal(d.loss, 0, `the direct pair lost packets during the relay restart:\n${d.out.slice(-400)}`);
    await waitParty(pl, x, (p) => pathOf(p, ipY)?.path === RELAYED, 60_000);
    const after = await pingLoss(pl, y, ipX, 10, 0.1);
    assert.equal(after.loss, 0);
  });
});

/**
 * Both routers forget every mapping 3 s into a 15 s ping at 20 pps from `from` to `ip`: how many
 * replies came after the flush, and the longest gap without one (to the end of the ping if they
 * stopped; printed, never asserted).
 */
async function flushUnderPing(pl: PartyLab, from: LabSite, ip: string, sites: LabSite[]): Promise<{ after: number; outage: number }> {
  const lab = pl.lab;
  const t0 = Date.now();
  const ping = lab
    .exec(from.host.ns, 'ping', ['-n', '-D', '-i', '0.05', '-W', '1', '-w', '15', ip], { timeoutMs: 40_000 })
    .catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
  await sleep(3000);
  const flushAt = Date.now();
  await Promise.all(sites.map((s) => lab.exec(s.router!.ns, 'conntrack', ['-F'])));
  const replies = [...(await ping).stdout.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)].map((m) => Number(m[1]) * 1000);
  const after = replies.filter((x) => x > flushAt);
  // To the end of the ping when the replies stopped for good.
  let outage = 0;
  let prev = flushAt;
  for (const x of [...after, t0 + 15_000]) {
    outage = Math.max(outage, x - prev);
    prev = x;
  }
  return { after: after.length, outage };
}

/** The router's UDP conntrack entries between the sites' public addresses (diagnostics). */
async function peerFlows(lab: PartyLab['lab'], site: LabSite, sites: LabSite[]): Promise<string> {
  const { stdout } = await lab.exec(site.router!.ns, 'conntrack', ['-L', '-p', 'udp'], { timeoutMs: 10_000 }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
  const ips = sites.map((s) => s.publicIp);
  return stdout.split('\n').filter((l) => ips.filter((ip) => l.includes(`=${ip} `)).length >= 2).join('\n');
}

/** Runs the abuse driver in the site's namespace: a member misusing its relay credentials. */
async function runAbuse(pl: PartyLab, site: LabSite, invite: string, outside: string): Promise<{ relayed: string | null; outsideRefused: boolean; error?: string }> {
  const child = pl.lab.spawn(site.host.ns, process.execPath, [RELAY_ABUSE_SCRIPT, pl.controlUrl, invite, outside]);
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  const line = out.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as { relayed: string | null; outsideRefused: boolean };
  } catch {
    throw new Error(`relay-abuse driver exited ${code}: ${out.slice(-500)}`);
  }
}
