// Benchmark (issue 3): LANrage's data path between two players behind port-restricted NATs,
// against raw wireguard-go, in one run on one machine state:
//   1. TCP throughput (iperf3, client in site a → server on b's virtual IP) and
//   2. RTT p50/p99 at ~60 pps, for four paths that are all up at once and measured in
//      interleaved rounds (so a change in machine load hits every path alike):
//        raw wireguard-go on a plain veth pair (wg-raw.bench's setup, test/integration/wg-lab.ts),
//        raw wireguard-go between two lab sites through the same kind of NATs as LANrage's,
//        LANrage with the nftables fast path, LANrage through the helper (--fast-path off);
//   3. time from `lanrage join` to the first answered ping of the host's virtual IP (20 joins);
//   4. helper CPU and RSS while idle in a party.
// Each pair of players has its own two lab sites (a helper per site, both NATs port-restricted):
// a WireGuard interface that is not the helper's would otherwise become one of its LAN candidates.
// Run as root after a build: node dist/test/bench/party.bench.js
// Env: BENCH_SECONDS (iperf3 per round, default 8), BENCH_ROUNDS (default 2), BENCH_PINGS (per
// path, split over the rounds, default 600), BENCH_JOINS (default 20), BENCH_IDLE_SECONDS
// (default 20), BENCH_HOST_NAT (the hosts' NAT kind, e.g. public; the guests stay port-restricted),
// LANRAGE_PRIORITY=off (helpers leave scheduling priorities alone, helper/core/priority.ts; the raw
// wireguard-go paths follow the same setting, so both sides run at the same nice).
// Prints figures; asserts nothing about speed.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { raisePriority, WIREGUARD_NICE } from '../../helper/core/priority.js';
import { createLogger } from '../../helper/core/log.js';
import { generateKeyPair } from '../../helper/wg/index.js';
import { commandExists, createLab as createVethLab, createTunnel, isRoot, nsExec, startDriver, type Driver } from '../integration/wg-lab.js';
import { withLab, type Lab, type LabSite, type NatKind } from '../lab/lab.js';
import { PartyLab, waitParty, type PartyJson, type PeerJson } from '../lab/party-lab.js';
import { UdpProbe } from '../lab/udp-probe.js';
import { childrenOf, comm, CpuMeter, findProcess, fmt, loadLine, parseIperf, parsePing, percentile, rssKiB, systemCpu, systemCpuShares, type IperfResult } from './bench-lib.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 2));
const PINGS = Number(process.env.BENCH_PINGS ?? 600);
const JOINS = Number(process.env.BENCH_JOINS ?? 20);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 20);
const DIRECT = 2; // PathKind, as in peer.proto
const MTU = 1420; // the helper's default (helper/core/settings.ts)
const SITES = ['a', 'b', 'c', 'd', 'e', 'f'] as const;
const HOST_NAT = (process.env.BENCH_HOST_NAT ?? 'port-restricted') as NatKind;

type BenchPeer = PeerJson & { fastPath?: boolean };
interface Proc {
  name: string;
  pid: number;
}
type ServerSpawner = (ns: string, args: string[]) => ChildProcess;

/** One path under test: client namespace → server IP in the server namespace. */
interface PathUnderTest {
  label: string;
  clientNs: string;
  serverNs: string;
  serverIp: string;
  spawnServer: ServerSpawner;
  /** Processes whose CPU is reported during iperf3 (looked up per round: helpers may restart). */
  procs(): Proc[];
  /** What WireGuard on the client side sends to, checked before and after the rounds. */
  endpoint(): Promise<string>;
}

interface PathFigures {
  label: string;
  tcp: IperfResult[];
  rtts: number[];
  sent: number;
  received: number;
  cpu: Map<string, number[]>;
  /** Machine-wide shares during iperf3, per round. */
  machine: Array<ReturnType<typeof systemCpuShares>>;
  endpoints: string[];
}

const log = (s: string): void => void process.stderr.write(`[bench] ${s}\n`);

function uptime(): string {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return loadLine();
  }
}

async function waitListening(ns: string, port: number): Promise<void> {
  for (let i = 0; i < 150; i++) {
    if ((await nsExec(ns, 'ss', ['-Htln', `sport = :${port}`])).stdout.includes(String(port))) return;
    await sleep(20);
  }
  throw new Error(`iperf3 server in ${ns} did not listen`);
}

/** Pings once (1 s timeout) until an answer; the time from t0 until then, in ms. */
async function firstPing(ns: string, ip: string, t0: number, timeoutMs: number): Promise<number> {
  for (;;) {
    const t = performance.now();
    const r = await nsExec(ns, 'ping', ['-n', '-c', '1', '-W', '1', ip], 5000);
    if (r.code === 0) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`${ip} did not answer from ${ns} within ${timeoutMs} ms: ${r.stdout.slice(-200)}${r.stderr}`);
    // An immediate failure (no route yet) would otherwise spin.
    if (performance.now() - t < 50) await sleep(20);
  }
}

/** One round on one path: iperf3 for SECONDS, then this round's share of the pings at ~60 pps. */
async function measureRound(p: PathUnderTest, f: PathFigures, pings: number): Promise<void> {
  await nsExec(p.clientNs, 'ping', ['-n', '-c', '3', '-i', '0.2', '-W', '1', p.serverIp]); // handshake, ARP, caches
  const server = p.spawnServer(p.serverNs, ['iperf3', '-s', '-1', '-B', p.serverIp]);
  const procs = p.procs();
  try {
    await waitListening(p.serverNs, 5201);
    const meter = new CpuMeter(procs.map((x) => x.pid));
    const sys0 = systemCpu();
    const r = await nsExec(p.clientNs, 'iperf3', ['-c', p.serverIp, '-t', String(SECONDS), '-J'], (SECONDS + 30) * 1000);
    f.machine.push(systemCpuShares(sys0, systemCpu()));
    const cpu = meter.stop();
    if (r.code !== 0) throw new Error(`iperf3 for ${p.label} failed: ${r.stderr}${r.stdout.slice(0, 400)}`);
    f.tcp.push(parseIperf(r.stdout));
    for (const x of procs) {
      const list = f.cpu.get(x.name) ?? [];
      list.push(cpu.get(x.pid) ?? NaN);
      f.cpu.set(x.name, list);
    }
  } finally {
    server.kill();
  }
  await sleep(300);
  const out = await nsExec(p.clientNs, 'ping', ['-n', '-c', String(pings), '-i', '0.0167', '-W', '1', p.serverIp], pings * 20 + 30_000);
  const ping = parsePing(out.stdout);
  if (ping.rtts.length === 0) throw new Error(`no ping answered for ${p.label}: ${out.stdout.slice(-300)}${out.stderr}`);
  f.rtts.push(...ping.rtts);
  f.sent += ping.transmitted;
  f.received += ping.received;
}

async function measureAll(paths: PathUnderTest[]): Promise<PathFigures[]> {
  const figs = paths.map((p): PathFigures => ({ label: p.label, tcp: [], rtts: [], sent: 0, received: 0, cpu: new Map(), machine: [], endpoints: [] }));
  for (const [i, p] of paths.entries()) figs[i]!.endpoints.push(await p.endpoint());
  for (let r = 0; r < ROUNDS; r++) {
    const pings = Math.ceil(PINGS / ROUNDS);
    // Alternate the order so no path always runs right after the same other one.
    const order = r % 2 === 0 ? [...paths.keys()] : [...paths.keys()].reverse();
    for (const i of order) {
      log(`round ${r + 1}/${ROUNDS}: ${paths[i]!.label}: iperf3 ${SECONDS} s, ${pings} pings`);
      await measureRound(paths[i]!, figs[i]!, pings);
    }
  }
  for (const [i, p] of paths.entries()) figs[i]!.endpoints.push(await p.endpoint());
  return figs;
}

async function closeDrivers(ds: Driver[]): Promise<void> {
  for (const d of ds) {
    await d.call('close').catch(() => undefined);
    await d.end().catch(() => undefined);
  }
}

const wgEndpointIn = async (ns: string, iface: string): Promise<string> => {
  const r = await nsExec(ns, 'wg', ['show', iface, 'endpoints']);
  return r.stdout.trim().split(/\s+/)[1] ?? `? (${r.stderr.trim()})`;
};

// --- raw wireguard-go at LANrage's priority -------------------------------------------------------

const quiet = createLogger({ bench: 'party' }, () => undefined);

/**
 * LANrage's helper raises its wireguard-go to nice -10 (helper/core/priority.ts). The raw
 * wireguard-go paths must run at the same nice, so that "fast path - raw" compares one
 * wireguard-go with another at the same priority. The lab driver starts them through the helper's
 * own wireguard-go code, which raises them already; this makes sure of it (a driver that did not
 * would leave raw at nice 0) and LANRAGE_PRIORITY=off leaves both alone (raisePriority honours it).
 * Returns each process's threads' nice values (lowest..highest), for the log.
 */
function raiseRaw(pids: number[]): string {
  return pids
    .map((pid) => {
      raisePriority(pid, WIREGUARD_NICE, quiet, 'raw wireguard-go');
      let tids: number[] = [pid];
      try {
        tids = readdirSync(`/proc/${pid}/task`).map(Number);
      } catch {
        /* no task list: the process alone */
      }
      const nices = tids.flatMap((t) => {
        try {
          return [getPriority(t)];
        } catch {
          return [];
        }
      });
      return nices.length ? `${Math.min(...nices)}..${Math.max(...nices)}` : '?';
    })
    .join(' / ');
}

// --- raw wireguard-go between two lab sites, through their NATs --------------------------------

/**
 * Plain wireguard-go from site x's host to site y's host over the lab's public addresses. Two
 * port-restricted Linux NATs that punch at once deadlock (STACK-NOTES), so each side first sends
 * one TTL-2 datagram from its WireGuard port: it opens its own NAT's mapping without reaching the
 * far router; then both WireGuard handshakes pass.
 */
async function rawThroughNats(lab: Lab, x: LabSite, y: LabSite): Promise<{ path: PathUnderTest; drivers: Driver[] }> {
  const px = 42000 + randomInt(4000) * 2;
  const py = px + 1;
  const probes = await Promise.all([UdpProbe.start(lab, x.host.ns, { ports: [px] }), UdpProbe.start(lab, y.host.ns, { ports: [py] })]);
  await probes[0].send(px, `${y.publicIp}:${py}`, 'prime', { ttl: 2 });
  await probes[1].send(py, `${x.publicIp}:${px}`, 'prime', { ttl: 2 });
  await Promise.all(
    probes.map((q) => {
      const gone = q.child.exitCode !== null ? Promise.resolve() : new Promise((r) => q.child.once('exit', r));
      q.close();
      return gone;
    }),
  );
  const kx = generateKeyPair();
  const ky = generateKeyPair();
  const drivers = await Promise.all([startDriver(x.host.ns), startDriver(y.host.ns)]);
  const [dx, dy] = drivers;
  try {
    type Created = { listenPort: number; pid: number | null };
    const ifx = `lw${lab.id}x`;
    const cx = await dx.call<Created>('create', { name: ifx, privateKey: kx.privateKey, address: '10.99.0.1/24', mtu: MTU, listenPort: px });
    const cy = await dy.call<Created>('create', { name: `lw${lab.id}y`, privateKey: ky.privateKey, address: '10.99.0.2/24', mtu: MTU, listenPort: py });
    await dy.call('setPeer', { publicKey: kx.publicKey, endpoint: `${x.publicIp}:${px}`, allowedIps: ['10.99.0.1/32'], persistentKeepaliveSeconds: 25 });
    await dx.call('setPeer', { publicKey: ky.publicKey, endpoint: `${y.publicIp}:${py}`, allowedIps: ['10.99.0.2/32'], persistentKeepaliveSeconds: 25 });
    const nice = raiseRaw([cx.pid ?? NaN, cy.pid ?? NaN].filter(Number.isInteger));
    const up = await firstPing(x.host.ns, '10.99.0.2', performance.now(), 15_000);
    log(`raw wireguard-go through the NATs (sites ${x.name} → ${y.name}, nice ${nice}) answered after ${up.toFixed(0)} ms`);
    const path: PathUnderTest = {
      label: 'raw wireguard-go, via lab NATs',
      clientNs: x.host.ns,
      serverNs: y.host.ns,
      serverIp: '10.99.0.2',
      spawnServer: (ns, args) => lab.spawn(ns, args[0]!, args.slice(1)),
      procs: () => [{ name: 'wg-go client', pid: cx.pid ?? NaN }, { name: 'wg-go server', pid: cy.pid ?? NaN }],
      endpoint: () => wgEndpointIn(x.host.ns, ifx),
    };
    return { path, drivers };
  } catch (err) {
    await closeDrivers(drivers);
    throw err;
  }
}

// --- LANrage -----------------------------------------------------------------------------------

/** The helper's node process and its wireguard-go child. */
function helperProcs(pl: PartyLab, s: LabSite, role: string): Proc[] {
  const leader = pl.helpers.get(s.name)?.proc.pid;
  const pid = leader === undefined ? null : findProcess(leader, 'node');
  if (pid === null) throw new Error(`no node process for the helper of ${s.name} (pid ${leader})`);
  const out: Proc[] = [{ name: `helper ${role}`, pid }];
  for (const c of childrenOf(pid)) {
    try {
      if (comm(c) === 'wireguard-go') out.push({ name: `wg-go ${role}`, pid: c });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

const onPath = (fast: boolean) => (p: PartyJson): boolean =>
  p.peers.length === 1 && p.peers.every((x) => x.path === DIRECT && (x as BenchPeer).fastPath === fast);

/** A two-player party (host x, guest y); resolves once both see the wanted kind of direct path. */
async function party(pl: PartyLab, x: LabSite, y: LabSite, fast: boolean, label: string): Promise<{ path: PathUnderTest; link: string }> {
  const created = await pl.cli<PartyJson>(x, ['create', `Bench ${x.name}${y.name}`]);
  const link = created.party?.inviteLink;
  if (!link) throw new Error(`create answered without an invite link: ${JSON.stringify(created)}`);
  const t0 = performance.now();
  await pl.cli(y, ['join', link]);
  const px = await waitParty(pl, x, onPath(fast), 30_000);
  await waitParty(pl, y, onPath(fast), 30_000);
  log(`${label}: direct path (fastPath ${fast}) on both sides ${(performance.now() - t0).toFixed(0)} ms after the join`);
  const lab = pl.lab;
  const iface = `lr${lab.id}${lab.sites.indexOf(x)}`;
  const path: PathUnderTest = {
    label,
    clientNs: x.host.ns,
    serverNs: y.host.ns,
    serverIp: px.peers[0]!.virtualIp,
    spawnServer: (ns, args) => lab.spawn(ns, args[0]!, args.slice(1)),
    procs: () => [...helperProcs(pl, x, 'client'), ...helperProcs(pl, y, 'server')],
    endpoint: () => wgEndpointIn(x.host.ns, iface),
  };
  return { path, link };
}

interface JoinFigures {
  mode: string;
  toPing: number[];
  cliMs: number[];
  problems: string[];
}

/** y leaves and joins x's party JOINS times; each: `join` → first answered ping of x's virtual IP. */
async function joins(pl: PartyLab, x: LabSite, y: LabSite, link: string): Promise<JoinFigures> {
  const f: JoinFigures = { mode: 'leave + join, same helper', toPing: [], cliMs: [], problems: [] };
  let fresh = false;
  for (let i = 0; i < JOINS; i++) {
    try {
      if (fresh) {
        await pl.stopHelper(y);
        const dir = mkdtempSync(join(tmpdir(), `lanrage-lab-bench-${y.name}-`));
        pl.dirs.push(dir);
        await pl.startHelper(y, { stateDir: dir });
      } else {
        await pl.cliText(y, ['leave']);
        await waitParty(pl, x, (p) => p.peers.length === 0 && p.party?.members.length === 1, 20_000);
      }
      await sleep(300);
      const t0 = performance.now();
      const joined = await pl.cli<PartyJson>(y, ['join', link]);
      f.cliMs.push(performance.now() - t0);
      const hostIp = joined.party?.members.find((m) => m.isHost)?.virtualIp;
      if (!hostIp) throw new Error(`join answered without a host member: ${JSON.stringify(joined)}`);
      f.toPing.push(await firstPing(y.host.ns, hostIp, t0, 30_000));
    } catch (err) {
      f.problems.push(`join ${i + 1}: ${(err as Error).message.split('\n')[0]}`);
      if (!fresh) {
        fresh = true;
        f.mode = `fresh helpers from join ${i + 1} on (leave + join failed)`;
      } else if (f.problems.length > 3) {
        throw new Error(`joins keep failing: ${f.problems.join('; ')}`);
      }
    }
  }
  return f;
}

interface IdleRow {
  name: string;
  cpuPct: number;
  rssMiB: number;
}

async function idle(groups: Array<{ label: string; procs: Proc[] }>): Promise<Array<{ label: string; rows: IdleRow[] }>> {
  log(`idle ${IDLE_SECONDS} s`);
  const all = groups.flatMap((g) => g.procs);
  const meter = new CpuMeter(all.map((p) => p.pid));
  await sleep(IDLE_SECONDS * 1000);
  const cpu = meter.stop();
  return groups.map((g) => ({ label: g.label, rows: g.procs.map((p) => ({ name: p.name, cpuPct: cpu.get(p.pid) ?? NaN, rssMiB: rssKiB(p.pid) / 1024 })) }));
}

// --- report ------------------------------------------------------------------------------------

const median = (xs: number[]): number => percentile(xs, 50);

function report(figs: PathFigures[], jf: JoinFigures, idles: Array<{ label: string; rows: IdleRow[] }>): string[] {
  const odd: string[] = [];
  const veth = figs.find((r) => r.label.includes('veth'))!;
  const raw = figs.find((r) => r.label.includes('NATs'))!;
  const mb = (f: PathFigures): number => median(f.tcp.map((t) => t.mbits));
  console.log(`\nTCP a→b: iperf3 ${ROUNDS} x ${SECONDS} s per path (median shown), ping RTT over ${PINGS} pings at 60 pps, rounds interleaved; MTU ${MTU}`);
  console.log(`×raw = ÷ raw wireguard-go via the same lab NATs; ×veth = ÷ raw wireguard-go on a plain veth pair`);
  console.log(`${'path'.padEnd(31)} ${'Mbit/s'.padStart(6)} ${'runs'.padStart(9)} ${'×raw'.padStart(5)} ${'×veth'.padStart(5)} ${'retr'.padStart(6)}  ${'p50 ms'.padStart(6)} ${'p99 ms'.padStart(6)} ${'lost'.padStart(7)}  CPU% during iperf (mean of rounds)`);
  for (const f of figs) {
    const retr = f.tcp.reduce((s, t) => s + t.retransmits, 0);
    const cpu = [...f.cpu].map(([n, xs]) => `${n} ${fmt(xs.reduce((s, x) => s + x, 0) / xs.length)}`).join(', ');
    console.log(
      `${f.label.padEnd(31)} ${fmt(mb(f)).padStart(6)} ${f.tcp.map((t) => fmt(t.mbits)).join('/').padStart(9)} ${fmt(mb(f) / mb(raw), 2).padStart(5)} ${fmt(mb(f) / mb(veth), 2).padStart(5)} ${String(retr).padStart(6)}` +
        `  ${fmt(percentile(f.rtts, 50), 3).padStart(6)} ${fmt(percentile(f.rtts, 99), 3).padStart(6)} ${`${f.sent - f.received}/${f.sent}`.padStart(7)}  ${cpu}`,
    );
    if (f.sent - f.received > 0) odd.push(`${f.label}: ${f.sent - f.received} of ${f.sent} pings lost`);
  }
  console.log('machine-wide CPU during iperf3 (% of both cores, mean of rounds):');
  for (const f of figs) {
    const m = (k: 'user' | 'system' | 'softirq' | 'idle'): string => fmt(f.machine.reduce((s, x) => s + x[k], 0) / f.machine.length);
    console.log(`  ${f.label.padEnd(31)} user ${m('user')}  system ${m('system')}  softirq ${m('softirq')}  idle ${m('idle')}`);
  }
  console.log(`client-side WireGuard endpoint before/after: ${figs.map((f) => `${f.label.replace(/^(raw wireguard-go|LANrage),? /, '')} ${[...new Set(f.endpoints)].join(' → ')}`).join('; ')}`);
  const n = jf.toPing.length;
  console.log(`\njoin → first answered ping of the host's virtual IP (${jf.mode}), n=${n}:`);
  console.log(
    `  p50 ${fmt(percentile(jf.toPing, 50))} ms  p95 ${fmt(percentile(jf.toPing, 95))} ms  min ${fmt(Math.min(...jf.toPing))}  max ${fmt(Math.max(...jf.toPing))}` +
      `   (the join command itself returned after p50 ${fmt(percentile(jf.cliMs, 50))} ms, p95 ${fmt(percentile(jf.cliMs, 95))} ms)`,
  );
  console.log(`  all (ms): ${jf.toPing.map((x) => x.toFixed(0)).join(' ')}`);
  for (const p of jf.problems) console.log(`  problem: ${p}`);
  if (percentile(jf.toPing, 50) > 4500) odd.push('join → first ping is over 4.5 s: WireGuard\'s first handshake was lost and retried after its 5 s rekey timeout');
  console.log(`\nidle in a party, ${IDLE_SECONDS} s, CPU % of one core and RSS:`);
  for (const g of idles) console.log(`  ${g.label.padEnd(22)} ` + g.rows.map((r) => `${r.name} ${fmt(r.cpuPct, 2)}% ${fmt(r.rssMiB, 1)} MiB`).join('; '));
  return odd;
}

// --- main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (!isRoot()) {
    console.error('party.bench needs root (network namespaces, wireguard-go, nftables): run it as root, e.g. sudo node dist/test/bench/party.bench.js');
    process.exit(1);
  }
  const missing = ['ip', 'nft', 'wireguard-go', 'wg', 'iperf3', 'ping', 'ss', 'getconf'].filter((c) => !commandExists(c));
  if (missing.length) {
    console.error(`party.bench needs these commands: ${missing.join(', ')} (Debian: iproute2 nftables wireguard-go wireguard-tools iperf3 iputils-ping)`);
    process.exit(1);
  }
  const started = performance.now();
  console.log(`LANrage data-path benchmark, ${new Date().toISOString()}`);
  console.log(`start: ${uptime()}`);

  const vl = createVethLab();
  try {
    const tun = await createTunnel(vl, { a: generateKeyPair(), b: generateKeyPair() }, MTU);
    log(`raw wireguard-go on the veth pair at nice ${raiseRaw([tun.pidA, tun.pidB])}`);
    const vethPath: PathUnderTest = {
      label: 'raw wireguard-go, plain veth',
      clientNs: vl.a,
      serverNs: vl.b,
      serverIp: '10.66.0.2',
      spawnServer: (ns, args) => spawn('ip', ['netns', 'exec', ns, ...args], { stdio: 'ignore' }),
      procs: () => [{ name: 'wg-go client', pid: tun.pidA }, { name: 'wg-go server', pid: tun.pidB }],
      endpoint: () => wgEndpointIn(vl.a, tun.ifA),
    };
    try {
      // a (fast-path host), c (through-the-helper host) and e (raw host) share one NAT kind.
      const sites = SITES.map((name, i) => ({ name, kind: i % 2 === 0 ? HOST_NAT : ('port-restricted' as const) }));
      await withLab({ sites }, async (lab) => {
        const [a, b, c, d, e, f] = SITES.map((n) => lab.site(n)) as [LabSite, LabSite, LabSite, LabSite, LabSite, LabSite];
        const raw = await rawThroughNats(lab, e, f);
        const pl = new PartyLab(lab);
        try {
          await pl.startControl();
          const off = ['--fast-path', 'off'];
          await Promise.all([pl.startHelper(a), pl.startHelper(b), pl.startHelper(c, { extraArgs: off }), pl.startHelper(d, { extraArgs: off })]);
          const fast = await party(pl, a, b, true, 'LANrage fast path');
          const slow = await party(pl, c, d, false, 'LANrage through the helper');

          const figs = await measureAll([vethPath, raw.path, fast.path, slow.path]);

          await Promise.all([waitParty(pl, a, onPath(true)), waitParty(pl, c, onPath(false))]);
          await sleep(3000);
          const idles = await idle([
            { label: 'fast path (a, b)', procs: [...helperProcs(pl, a, 'a'), ...helperProcs(pl, b, 'b')] },
            { label: '--fast-path off (c, d)', procs: [...helperProcs(pl, c, 'c'), ...helperProcs(pl, d, 'd')] },
          ]);

          log(`${JOINS} joins (site b joins site a's party, fast path helpers)`);
          const jf = await joins(pl, a, b, fast.link);

          const odd = report(figs, jf, idles);
          for (const fg of figs.slice(2)) {
            const wantFast = fg === figs[2];
            if (fg.endpoints.some((ep) => ep.startsWith('127.') === wantFast)) odd.push(`${fg.label}: WireGuard endpoint ${fg.endpoints.join(' → ')} is not what that path should use`);
          }
          if (odd.length) console.log(`\nodd:\n${odd.map((o) => `  ${o}`).join('\n')}`);
        } finally {
          await Promise.all(SITES.map((n) => pl.stopHelper(lab.site(n)))).catch(() => undefined);
          await closeDrivers(raw.drivers);
          pl.cleanup();
        }
      });
    } finally {
      await closeDrivers([tun.da, tun.db]);
    }
  } finally {
    await vl.cleanup();
  }
  console.log(`\nend: ${uptime()}  (run took ${((performance.now() - started) / 1000).toFixed(0)} s)`);
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exitCode = 1;
});
