import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PartyLab, waitParty, type PartyJson } from './party-lab.js';
import { withParty } from './party-run.js';

// The product, end to end: real control server, real helpers with wireguard-go, behind real
// (namespaced) NATs, driven with the real CLI. PathKind numbers as in peer.proto.
const DIRECT = 2;
const UNREACHABLE = 4;

/** Pings once a second until one answers; returns how long the tunnel took to carry traffic. */
async function waitPing(pl: PartyLab, from: Parameters<PartyLab['cli']>[0], ip: string, timeoutMs = 20_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const ok = await pl.lab.exec(from.host.ns, 'ping', ['-c', '1', '-W', '1', ip], { timeoutMs: 5000 }).then(() => true, () => false);
    if (ok) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`${ip} did not answer through the tunnel within ${timeoutMs} ms`);
  }
}

const allDirect = (n: number) => (p: PartyJson): boolean => p.peers.length === n && p.peers.every((x) => x.path === DIRECT);

async function ping(pl: PartyLab, from: Parameters<PartyLab['cli']>[0], ip: string, count = 3): Promise<string> {
  const { stdout } = await pl.lab.exec(from.host.ns, 'ping', ['-c', String(count), '-i', '0.2', '-W', '2', ip], { timeoutMs: 20_000 });
  return stdout;
}

test('two players behind port-restricted NATs: join, direct path, ping each other; nothing crosses the control server', async (t) => {
  await withParty(t, [{ name: 'a', kind: 'port-restricted' }, { name: 'b', kind: 'port-restricted' }], {}, async (pl, lab) => {
    const [a, b] = [lab.site('a'), lab.site('b')];
    const created = await pl.cli<PartyJson>(a, ['create', 'LAN night']);
    assert.ok(created.party?.inviteLink.startsWith('lanrage://join?'));
    const t0 = Date.now();
    await pl.cli(b, ['join', created.party!.inviteLink]);
    const pa = await waitParty(pl, a, allDirect(1), 60_000);
    const pb = await waitParty(pl, b, allDirect(1), 60_000);
    const joinToDirect = Date.now() - t0;
    const ipA = pb.peers[0]!.virtualIp;
    const ipB = pa.peers[0]!.virtualIp;
    assert.notEqual(ipA, ipB);
    // The direct path is the peer's public (NAT router) address.
    assert.equal(pa.peers[0]!.endpoint.split(':')[0], b.publicIp);
    assert.equal(pb.peers[0]!.endpoint.split(':')[0], a.publicIp);

    const before = await lab.linkCounters(lab.control.ns);
    const out = await ping(pl, a, ipB, 20);
    assert.match(out, / 0% packet loss/);
    assert.match(await ping(pl, b, ipA, 3), / 0% packet loss/);
    const after = await lab.linkCounters(lab.control.ns);
    // 23 echo round trips went through the tunnel; the control server saw at most keepalives.
    assert.ok(after.rxPackets - before.rxPackets < 10, `control received ${after.rxPackets - before.rxPackets} packets during the pings`);

    const pingOut = await pl.cliText(a, ['ping', pa.peers[0]!.name, '--count', '3']);
    assert.match(pingOut, new RegExp(`via ${b.publicIp.replace(/\./g, '\\.')}:\\d+ \\(direct\\)`));
    t.diagnostic(`join → direct on both sides: ${joinToDirect} ms`);
  });
});

test('three players: full mesh, every pair pings; a player leaves and everyone drops it', async (t) => {
  await withParty(t, [{ name: 'a', kind: 'port-restricted' }, { name: 'b', kind: 'public' }, { name: 'c', kind: 'port-restricted' }], {}, async (pl, lab) => {
    const sites = [lab.site('a'), lab.site('b'), lab.site('c')];
    const created = await pl.cli<PartyJson>(sites[0]!, ['create', 'Three']);
    await pl.cli(sites[1]!, ['join', created.party!.inviteLink]);
    await pl.cli(sites[2]!, ['join', created.party!.inviteLink]);
    const views = await Promise.all(sites.map((s) => waitParty(pl, s, allDirect(2), 60_000)));
    const ips = views.map((v) => v.party!.members.find((m) => m.isSelf)!.virtualIp);
    assert.equal(new Set(ips).size, 3);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        if (i === j) continue;
        const took = await waitPing(pl, sites[i]!, ips[j]!, 60_000);
        t.diagnostic(`${sites[i]!.name} → ${sites[j]!.name}: first ping answered ${took} ms after all paths were direct`);
        assert.match(await ping(pl, sites[i]!, ips[j]!, 2), / 0% packet loss/, `${i} → ${j}`);
      }
    }
    await pl.cliText(sites[2]!, ['leave']);
    for (const s of sites.slice(0, 2)) {
      const v = await waitParty(pl, s, (p) => p.peers.length === 1 && p.party!.members.length === 2, 60_000);
      assert.ok(!v.party!.members.some((m) => m.virtualIp === ips[2]));
    }
    const left = await pl.cli<PartyJson>(sites[2]!, ['party']);
    assert.equal(left.party, null);
  });
});

test('wrong invite secret is refused; symmetric ↔ symmetric says unreachable and why', async (t) => {
  await withParty(t, [{ name: 'a', kind: 'symmetric' }, { name: 'b', kind: 'symmetric' }], {}, async (pl, lab) => {
    const [a, b] = [lab.site('a'), lab.site('b')];
    const created = await pl.cli<PartyJson>(a, ['create', 'Hard NATs']);
    const link = created.party!.inviteLink;
    const forged = link.replace(/s=([^&]+)/, (_m, s: string) => `s=${s.slice(0, -2)}${s.endsWith('AA') ? 'BB' : 'AA'}`);
    await assert.rejects(pl.cliText(b, ['join', forged]), (err: { stderr?: string }) => /PERMISSION_DENIED/.test(err.stderr ?? ''));
    await pl.cli(b, ['join', link]);
    const pa = await waitParty(pl, a, (p) => p.peers.length === 1 && p.peers[0]!.path === UNREACHABLE, 60_000);
    assert.match(pa.peers[0]!.pathReason, /symmetric|relay/i);
    const text = await pl.cliText(a, ['party']);
    assert.match(text, /unreachable/);
  });
});

test('helper restart (SIGTERM and kill -9) resumes the party and the tunnel; a control server restart loses nothing', async (t) => {
  await withParty(t, [{ name: 'a', kind: 'port-restricted' }, { name: 'b', kind: 'port-restricted' }], {}, async (pl, lab) => {
    const [a, b] = [lab.site('a'), lab.site('b')];
    const created = await pl.cli<PartyJson>(a, ['create', 'Sticky']);
    await pl.cli(b, ['join', created.party!.inviteLink]);
    const first = await waitParty(pl, a, allDirect(1));
    const ipB = first.peers[0]!.virtualIp;

    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      await pl.stopHelper(b, signal);
      await pl.startHelper(b);
      const again = await waitParty(pl, b, allDirect(1), 30_000);
      assert.equal(again.party!.id, created.party!.id, `after ${signal} b is back in the same party`);
      assert.equal(again.party!.members.find((m) => m.isSelf)!.virtualIp, ipB, `after ${signal} b keeps its virtual IP`);
      await waitParty(pl, a, allDirect(1), 30_000);
      const took = await waitPing(pl, a, ipB);
      t.diagnostic(`after ${signal}: tunnel carried traffic ${took} ms after both sides saw a direct path`);
      assert.match(await ping(pl, a, ipB, 3), / 0% packet loss/, `tunnel works after ${signal}`);
    }

    const ctl = pl.control!;
    const exited = new Promise((r) => ctl.proc.once('exit', r));
    ctl.proc.kill('SIGTERM');
    await exited;
    // The data path does not need the control server.
    assert.match(await ping(pl, a, ipB, 3), / 0% packet loss/, 'tunnel survives the control server going away');
    // A helper that restarts while its control server is down resumes once the server is back.
    await pl.stopHelper(b, 'SIGTERM');
    await pl.startHelper(b);
    await pl.startControl();
    const back = await waitParty(pl, a, (p) => p.party?.members.length === 2 && allDirect(1)(p), 40_000);
    await waitParty(pl, b, allDirect(1), 40_000);
    assert.equal(back.party!.id, created.party!.id);
    assert.deepEqual(back.party!.members.map((m) => m.virtualIp).sort(), first.party!.members.map((m) => m.virtualIp).sort());
    await waitPing(pl, a, ipB);
  });
});
