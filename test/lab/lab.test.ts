// Self-test of the namespace lab, on real namespaces: the NAT behaviours the end-to-end tests
// rely on, the TTL fact behind hole-punch priming, isolation between sites, and that nothing is
// left behind however a run ends.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createLab, labAvailable, withLab, type Lab } from './lab.js';
import { removeStaleLabs } from './cleanup-stale.js';
import { isAlive, listNamespaces, run } from './netns.js';
import { recordPath } from './registry.js';
import { UdpProbe } from './udp-probe.js';
import { requireOrSkip } from '../lib/repo.js';

const CHILD = fileURLToPath(new URL('./lab-child.js', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Long enough for a datagram over a few veths that is going to arrive at all (they take µs). */
const QUIET_MS = 250;

const nsOf = (id: string): string[] => listNamespaces().filter((n) => n.startsWith(`lr${id}-`));

let availability: Promise<{ ok: boolean; why?: string }> | null = null;
async function ready(t: { skip(msg: string): void }): Promise<boolean> {
  availability ??= labAvailable();
  const a = await availability;
  return requireOrSkip(a.ok, `network-namespace lab (${a.why ?? ''}; needs root, ip, nft)`, t);
}

/** The router's conntrack entries for UDP from the host's port (conntrack is per namespace). */
async function conntrackFrom(lab: Lab, routerNs: string, srcIp: string, sport: number): Promise<string[]> {
  const { stdout } = await lab.exec(routerNs, 'conntrack', ['-L', '-p', 'udp', '--orig-src', srcIp, '--sport', String(sport)]);
  return stdout.split('\n').filter((l) => l.includes('udp'));
}

test('lab: NAT mapping and filtering, TTL priming, site isolation', async (t) => {
  if (!(await ready(t))) return;
  const conntrackOk = await run('conntrack', ['--version']).then(() => true, () => false);
  if (!requireOrSkip(conntrackOk, 'conntrack (Debian package conntrack)', t)) return;

  const t0 = performance.now();
  const lab = await createLab({
    sites: [
      { name: 'a', kind: 'port-restricted' },
      { name: 'b', kind: 'symmetric' },
      { name: 'c', kind: 'public' },
    ],
  });
  const setupMs = performance.now() - t0;
  const probes: UdpProbe[] = [];
  try {
    const a = lab.site('a');
    const b = lab.site('b');
    const c = lab.site('c');
    const ctlAt = (port: number): string => `${lab.control.ip}:${port}`;
    const [ctl, pa, pb, pc] = await Promise.all([
      UdpProbe.start(lab, lab.control.ns, { ports: [3478, 3479, 3480], echo: true }),
      UdpProbe.start(lab, a.host.ns, { ports: [40001, 40002] }),
      UdpProbe.start(lab, b.host.ns, { ports: [40001] }),
      UdpProbe.start(lab, c.host.ns, { ports: [40001] }),
    ]);
    probes.push(ctl, pa, pb, pc);
    const byHost = new Map([[a.name, pa], [b.name, pb], [c.name, pc]]);
    const mapped = new Map<string, number>(); // site → public port seen by control for host:40001 → ctl:3478

    await t.test('every host reaches the control namespace and gets its reply; the control sees the public address', async () => {
      const before = await lab.linkCounters(lab.control.ns);
      for (const s of [a, b, c]) {
        const p = byHost.get(s.name) as UdpProbe;
        await p.send(40001, ctlAt(3478), `hello-${s.name}`);
        const seen = await ctl.waitFor((x) => x.data === `hello-${s.name}`, 3000, `hello from ${s.name}`);
        assert.equal(seen.address, s.publicIp, `control sees ${s.name} from its public address`);
        if (s.kind === 'public') assert.equal(seen.port, 40001);
        mapped.set(s.name, seen.port);
        const echo = await p.waitFor((x) => x.data === `hello-${s.name}`, 3000, `echo to ${s.name}`);
        assert.equal(echo.from, ctlAt(3478));
      }
      const after = await lab.linkCounters(lab.control.ns);
      assert.equal(after.rxPackets - before.rxPackets, 3, 'internet router forwarded 3 datagrams to control');
      assert.equal(after.txPackets - before.txPackets, 3, 'and 3 replies from it');
      assert.ok(after.rxBytes > before.rxBytes);
    });

    await t.test('port-restricted NAT maps endpoint-independently, symmetric NAT per destination', async () => {
      for (const s of [a, b]) await (byHost.get(s.name) as UdpProbe).send(40001, ctlAt(3479), `second-${s.name}`);
      const a2 = await ctl.waitFor((x) => x.data === `second-a`);
      const b2 = await ctl.waitFor((x) => x.data === `second-b`);
      assert.equal(a2.local, 3479);
      assert.equal(a2.from, `${a.publicIp}:${mapped.get('a')}`, 'site a: same public ip:port for a second destination port');
      assert.equal(b2.address, b.publicIp);
      assert.notEqual(b2.port, mapped.get('b'), 'site b: a new public port for a second destination port');
    });

    await t.test('port-restricted NAT lets in only replies from the exact ip:port contacted', async () => {
      const target = `${a.publicIp}:${mapped.get('a')}`;
      // Unsolicited: the right address, a source port the host never contacted.
      await ctl.send(3480, target, 'unsolicited-a');
      await ctl.send(3478, target, 'reply-a');
      const reply = await pa.waitFor((x) => x.data === 'reply-a', 3000, 'reply from the contacted port');
      assert.equal(reply.from, ctlAt(3478));
      assert.equal(reply.local, 40001);
      // Control: a public host does receive the same kind of unsolicited datagram.
      await ctl.send(3480, `${c.publicIp}:40001`, 'unsolicited-c');
      await pc.waitFor((x) => x.data === 'unsolicited-c', 3000, 'unsolicited datagram at the public host');
      await sleep(QUIET_MS);
      assert.deepEqual(pa.matching((x) => x.data === 'unsolicited-a'), [], 'the NAT must drop the unsolicited datagram');
    });

    await t.test('a TTL-2 datagram leaves its own NAT (mapping made) but never reaches the control', async () => {
      const ctlBefore = await lab.linkCounters(lab.control.ns);
      const router = a.router?.ns ?? assert.fail('site a has a router');
      assert.deepEqual(await conntrackFrom(lab, router, a.lanIp, 40002), [], 'no mapping before the primer');
      await pa.send(40002, ctlAt(3478), 'primer', { ttl: 2 });
      const entries = await conntrackFrom(lab, router, a.lanIp, 40002);
      assert.equal(entries.length, 1, `one conntrack entry after the primer: ${entries.join(' | ')}`);
      const entry = entries[0] ?? '';
      assert.match(entry, /\[UNREPLIED\]/);
      assert.match(entry, new RegExp(`dst=${lab.control.ip.replace(/\./g, '\\.')} sport=40002 dport=3478`));
      // The reply tuple's destination port is the public port the NAT chose.
      const primedPort = Number(/dst=\S+ sport=3478 dport=(\d+)/.exec(entry)?.[1]);
      assert.ok(primedPort > 0, `mapped port in ${entry}`);
      await sleep(QUIET_MS);
      assert.deepEqual(ctl.matching((x) => x.data === 'primer'), [], 'the primer must die at the internet router');
      const ctlAfter = await lab.linkCounters(lab.control.ns);
      assert.equal(ctlAfter.rxPackets, ctlBefore.rxPackets, 'nothing forwarded to control');
      // The mapping the primer made is the one later traffic uses.
      await pa.send(40002, ctlAt(3478), 'after-primer');
      const seen = await ctl.waitFor((x) => x.data === 'after-primer');
      assert.equal(seen.from, `${a.publicIp}:${primedPort}`);
    });

    await t.test('hosts in different sites cannot reach each other\'s LAN addresses', async () => {
      await pa.send(40001, `${b.lanIp}:40001`, 'cross-a-b');
      await pb.send(40001, `${a.lanIp}:40001`, 'cross-b-a');
      await pc.send(40001, `${a.lanIp}:40001`, 'cross-c-a');
      await assert.rejects(lab.exec(lab.internet.ns, 'ip', ['route', 'get', a.lanIp]), /unreachable/i, 'the internet has no route to LANs');
      await sleep(QUIET_MS);
      assert.deepEqual(pa.matching((x) => x.data.startsWith('cross-')), []);
      assert.deepEqual(pb.matching((x) => x.data.startsWith('cross-')), []);
    });

    await t.test('namespaces have no IPv6', async () => {
      for (const ns of [lab.internet.ns, lab.control.ns, a.host.ns, a.router?.ns ?? '', c.host.ns]) {
        const { stdout } = await lab.exec(ns, 'ip', ['-6', '-o', 'addr']);
        assert.equal(stdout.trim(), '', `${ns} has IPv6 addresses`);
      }
    });
  } finally {
    const t1 = performance.now();
    await lab.destroy();
    const teardownMs = performance.now() - t1;
    t.diagnostic(`lab setup ${setupMs.toFixed(0)} ms, teardown (4 probe processes) ${teardownMs.toFixed(0)} ms`);
    assert.deepEqual(nsOf(lab.id), [], 'destroy() removed every namespace');
    for (const p of probes) assert.equal(isAlive(p.child.pid ?? 0), false, `probe in ${p.ns} still running`);
    assert.equal(existsSync(recordPath(lab.id)), false, 'ownership record removed');
  }
});

test('destroy() removes every namespace and process even when the body throws', async (t) => {
  if (!(await ready(t))) return;
  let id = '';
  let tracked = 0;
  let daemon = 0;
  await assert.rejects(
    withLab({ sites: [{ name: 'p', kind: 'port-restricted' }, { name: 'q', kind: 'public' }] }, async (lab) => {
      id = lab.id;
      tracked = lab.spawn(lab.site('p').host.ns, 'sleep', ['300']).pid ?? 0;
      const { stdout } = await lab.exec(lab.site('q').host.ns, 'sh', ['-c', 'sleep 300 >/dev/null 2>&1 & echo $!']);
      daemon = Number(stdout.trim());
      assert.ok(isAlive(tracked) && isAlive(daemon));
      assert.equal(nsOf(id).length, 5);
      throw new Error('body failed');
    }),
    /body failed/,
  );
  assert.deepEqual(nsOf(id), []);
  const { stdout } = await run('ip', ['netns', 'list']);
  assert.doesNotMatch(stdout, new RegExp(`lr${id}-`), '`ip netns list` agrees');
  assert.equal(isAlive(tracked), false, 'spawned process ended');
  assert.equal(isAlive(daemon), false, 'daemon started through exec() ended');
});

interface ChildReport {
  id: string;
  sleeper: number;
  daemon: number;
}

async function startChild(mode: 'wait' | 'throw'): Promise<{ child: ReturnType<typeof spawn>; report: ChildReport; exit: Promise<unknown> }> {
  const child = spawn(process.execPath, [CHILD, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exit = new Promise((r) => child.once('exit', (code, sig) => r(code ?? sig)));
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const line = await new Promise<string>((res, rej) => {
    const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    rl.once('line', res);
    child.once('exit', () => rej(new Error(`lab-child exited early: ${stderr}`)));
  });
  return { child, report: JSON.parse(line) as ChildReport, exit };
}

for (const [mode, how] of [['wait', 'SIGTERM'], ['throw', 'an uncaught exception']] as const) {
  test(`a process that ends by ${how} removes its lab`, async (t) => {
    if (!(await ready(t))) return;
    const { child, report, exit } = await startChild(mode);
    assert.equal(nsOf(report.id).length, 4);
    if (mode === 'wait') child.kill('SIGTERM');
    assert.equal(await exit, mode === 'wait' ? 'SIGTERM' : 1);
    assert.deepEqual(nsOf(report.id), []);
    assert.equal(isAlive(report.sleeper), false);
    assert.equal(isAlive(report.daemon), false);
    assert.equal(existsSync(recordPath(report.id)), false);
  });
}

test('removeStaleLabs() removes labs of killed runs and nothing else', async (t) => {
  if (!(await ready(t))) return;
  // A lab of this (live) process and an lr* namespace nobody recorded must both survive.
  const mine = await createLab({ sites: [{ name: 'm', kind: 'public' }] });
  const foreignId = `${mine.id.slice(0, 4)}zz`;
  const foreign = `lr${foreignId}-foreign`;
  await run('ip', ['netns', 'add', foreign]);
  try {
    const { child, report, exit } = await startChild('wait');
    child.kill('SIGKILL'); // no handler runs: everything is left behind
    await exit;
    assert.equal(nsOf(report.id).length, 4, 'a SIGKILLed run leaves its namespaces');
    assert.ok(isAlive(report.sleeper) && isAlive(report.daemon), 'and its processes');

    // Only these ids: other test processes' labs are theirs to clean.
    const ids = [report.id, mine.id, foreignId];
    const young = await removeStaleLabs(60 * 60_000, { ids });
    assert.ok(young.kept.includes(report.id), 'younger than the threshold: kept');
    assert.equal(nsOf(report.id).length, 4);

    const res = await removeStaleLabs(0, { ids });
    assert.ok(res.labs.includes(report.id));
    assert.deepEqual(nsOf(report.id), []);
    assert.equal(isAlive(report.sleeper), false, 'processes in a stale lab are ended');
    assert.equal(isAlive(report.daemon), false);
    assert.equal(existsSync(recordPath(report.id)), false);
    assert.ok(res.kept.includes(mine.id), 'a live process\'s lab is kept');
    assert.equal(nsOf(mine.id).length, 3);
    assert.ok(listNamespaces().includes(foreign), 'an unrecorded lr* namespace is not ours: kept');
  } finally {
    await mine.destroy();
    await run('ip', ['netns', 'del', foreign]);
  }
});
