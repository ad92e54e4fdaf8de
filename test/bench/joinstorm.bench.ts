// Benchmark (issue 13): a join storm. N players, each at its own NAT site (the kinds of the issue,
// cycled: port-restricted, full-cone, address-restricted, symmetric, public, CGNAT,
// port-restricted, full-cone), real helpers, one control server and coturn. The first player
// creates the party; the N-1 others send JoinParty at the same moment (join-trigger.ts: clients
// connected beforehand, so N Node start-ups are not part of the figure). Then, per pair of players:
//   first packet  the later of the two sides' first usable path (relayed or direct; helper logs)
//   direct        the later of the two sides' first direct path
//   WG up         the later of the two sides' first completed WireGuard handshake (UAPI, ms)
// and per helper: CPU during the storm, path-finding datagrams; finally every direction pings
// through the tunnel. Times are from the moment the joins were released.
// Run as root after a build: node dist/test/bench/joinstorm.bench.js
// Env: BENCH_N (comma list, default "4,8"), BENCH_TIMEOUT_S (per storm, default 40 + 6·N),
// BENCH_EXEC_COUNT=1 (count nft/wg/ip processes per helper through PATH wrappers), BENCH_LOG_DIR
// (write every helper's and the control server's log there),
// BENCH_CPU_WINDOW_S (CPU-seconds per helper over a fixed window from the joins, default 30; 0 skips),
// BENCH_MACHINE_WINDOW_S (the whole machine's CPU by part of the lab over the first seconds after the joins, default 6; 0 skips),
// BENCH_START_BATCH (helpers started at once, default 2), BENCH_IDLE_S (helper CPU at rest after the storm, default 20 s; 0 skips),
// BENCH_IDLE_SETTLE_S (wait before measuring it, default 2 s: longer leaves V8's post-start-up heap shrinking out), LANRAGE_LAB_VERBOSE=1
// (helper logs on stderr). Prints figures; asserts nothing about speed.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { uapiGet, uapiSocketPath } from '../../helper/wg/uapi-socket.js';
import { labAvailable, withLab, type Lab, type LabSite, type NatKind } from '../lab/lab.js';
import { PartyLab, type PartyJson } from '../lab/party-lab.js';
import { childrenOf, clockTicks, comm, CpuMeter, cpuByClass, cpuTicksSplit, fmt, loadLine, percentile, snapshotByClass, type ClassCpu } from './bench-lib.js';

const KINDS: NatKind[] = ['port-restricted', 'full-cone', 'address-restricted', 'symmetric', 'public', 'cgnat', 'port-restricted', 'full-cone'];
const SHORT: Partial<Record<NatKind, string>> = { 'port-restricted': 'prestr', 'full-cone': 'fcone', 'address-restricted': 'arestr', symmetric: 'sym', public: 'pub', cgnat: 'cgnat' };
const DIRECT = 2;
const RELAYED = 3;
const TRIGGER = join(dirname(fileURLToPath(import.meta.url)), 'join-trigger.js');
const EXEC_COUNT = process.env.BENCH_EXEC_COUNT === '1';
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 20);
const IDLE_SETTLE_S = Number(process.env.BENCH_IDLE_SETTLE_S ?? 2);
const START_BATCH = Math.max(1, Number(process.env.BENCH_START_BATCH ?? 2));
const CPU_WINDOW_S = Number(process.env.BENCH_CPU_WINDOW_S ?? 30);
const MACHINE_WINDOW_S = Number(process.env.BENCH_MACHINE_WINDOW_S ?? 6);

/** Which part of the lab a process is, from its command line (null: not the lab's). */
function labClass(argv: readonly string[]): string | null {
  const main = argv.findIndex((a) => a.endsWith('/helper/main.js'));
  if (main >= 0) return argv[main + 1] === 'control' ? 'control' : 'helpers';
  const exe = (argv[0] ?? '').split('/').pop() ?? '';
  if (exe === 'wireguard-go') return 'wireguard-go';
  if (exe === 'turnserver') return 'coturn';
  if (argv.some((a) => a.endsWith('joinstorm.bench.js') || a.endsWith('join-trigger.js'))) return 'bench';
  return null;
}

/** "busy 12.0 of 12.0 CPU-s: helpers 8.44 (+0.67 in processes they ran), control 0.95, …" */
function classLine(c: ClassCpu): string {
  const parts = [...c.byClass].sort((x, y) => y[1].ownS + y[1].childrenS - (x[1].ownS + x[1].childrenS)).map(([k, v]) => `${k} ${fmt(v.ownS, 2)}${v.childrenS >= 0.005 ? ` (+${fmt(v.childrenS, 2)} in processes they ran: nft, ip)` : ''}`);
  return `busy ${fmt(c.busyS, 1)} of ${fmt(c.capacityS, 1)} CPU-s; ${parts.join(', ')}`;
}

const log = (s: string): void => void process.stderr.write(`[joinstorm] ${s}\n`);
const uptime = (): string => {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return loadLine();
  }
};

interface Rec {
  t: string;
  msg: string;
  peer?: string;
  sent?: { datagrams?: number };
}
const records = (lines: readonly string[]): Rec[] =>
  lines.flatMap((l) => {
    try {
      return [JSON.parse(l) as Rec];
    } catch {
      return [];
    }
  });

/** PATH wrappers that note "<parent pid> <command>" before running the real nft, wg or ip. */
function execWrappers(): { dir: string; file: string; mark(): void; counts(sinceMark?: boolean): Map<string, Map<string, number>> } {
  const dir = mkdtempSync(join(tmpdir(), 'lanrage-execcount-'));
  const file = join(dir, 'calls.log');
  writeFileSync(file, '');
  let marked = 0;
  for (const cmd of ['nft', 'wg', 'ip']) {
    const real = execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim();
    // Arguments pass through "$@" untouched: nothing is interpreted by this shell.
    // "$1" tells nft's writes (-f) from its listings (-j).
    writeFileSync(join(dir, cmd), `#!/bin/sh\necho "$PPID ${cmd} $1" >> '${file}'\nexec '${real}' "$@"\n`);
    chmodSync(join(dir, cmd), 0o755);
  }
  return {
    dir,
    file,
    mark() {
      marked = readFileSync(file, 'utf8').split('\n').length - 1;
    },
    counts(sinceMark = false) {
      const out = new Map<string, Map<string, number>>();
      const lines = readFileSync(file, 'utf8').split('\n');
      for (const line of sinceMark ? lines.slice(marked) : lines) {
        const [pid, cmd, arg] = line.split(' ');
        if (!pid || !cmd) continue;
        const m = out.get(pid) ?? new Map<string, number>();
        for (const k of cmd === 'nft' ? [cmd, arg === '-f' ? 'nft-f' : 'nft-other'] : [cmd]) m.set(k, (m.get(k) ?? 0) + 1);
        out.set(pid, m);
      }
      return out;
    },
  };
}

interface PairRow {
  a: LabSite;
  b: LabSite;
  first: number | null;
  direct: number | null;
  wg: number | null;
  path: string;
  pings: string;
}

async function storm(n: number): Promise<void> {
  const sites = Array.from({ length: n }, (_, i) => {
    const kind = KINDS[i % KINDS.length]!;
    return { name: `${SHORT[kind] ?? kind}${i}`, kind };
  });
  const timeoutMs = Number(process.env.BENCH_TIMEOUT_S ?? 40 + 6 * n) * 1000;
  console.log(`\n=== join storm, N=${n}: ${sites.map((s) => s.kind).join(', ')}`);
  console.log(`before: ${uptime()}`);
  const wrap = EXEC_COUNT ? execWrappers() : null;
  const savedPath = process.env.PATH;
  if (wrap) process.env.PATH = `${wrap.dir}:${savedPath ?? ''}`;
  try {
    await withLab({ sites }, async (lab) => {
      const pl = new PartyLab(lab);
      try {
        await pl.startControl({ relay: true, relayConf: 'uncapped' });
        // A few at a time: N Node start-ups at once on 2 cores only slow the set-up down (and on a
        // loaded machine miss the lab's 20 s "helper ready" wait).
        for (let i = 0; i < lab.sites.length; i += START_BATCH) await Promise.all(lab.sites.slice(i, i + START_BATCH).map((s) => pl.startHelper(s, { readyTimeoutMs: 120_000 })));
        const host = lab.sites[0]!;
        const created = await pl.cli<PartyJson>(host, ['create', 'Storm']);
        const link = created.party!.inviteLink;
        const joiners = lab.sites.slice(1);
        const triggers = await Promise.all(joiners.map((s) => startTrigger(lab, s, pl.helpers.get(s.name)!.stateDir, link)));
        // Let the start-up settle, so that the CPU figures are the storm's.
        await sleep(3000);
        const helperPids = new Map(lab.sites.map((s) => [s.name, pl.helpers.get(s.name)!.proc.pid!]));
        const controlPid = pl.control!.proc.pid!;
        const meter = new CpuMeter([...helperPids.values(), controlPid]);
        const split0 = new Map([...helperPids.values()].map((p) => [p, cpuTicksSplit(p)]));
        const load0 = loadLine();
        // This process's own timer lateness: a machine-wide stall shows here as in every helper.
        let stallMax = 0;
        let tick = performance.now();
        const stallTimer = setInterval(() => {
          const now = performance.now();
          stallMax = Math.max(stallMax, now - tick - 100);
          tick = now;
        }, 100);
        wrap?.mark();
        // CPU by part of the lab over the storm's first seconds (the whole machine, 2 cores here).
        const classes0 = snapshotByClass(labClass);
        let machine: ClassCpu | null = null;
        const machineTimer = MACHINE_WINDOW_S > 0 ? setTimeout(() => (machine = cpuByClass(classes0, snapshotByClass(labClass))), MACHINE_WINDOW_S * 1000) : null;
        const t0 = Date.now();
        for (const t of triggers) t.go();
        // A mark for tools watching stderr (a profiler started at the joins).
        log(`joins released at ${new Date(t0).toISOString()}`);
        const joinMs = await Promise.all(triggers.map((t) => t.result));
        log(`joins answered after p50 ${fmt(percentile(joinMs, 50))} ms, max ${fmt(Math.max(...joinMs))} ms; waiting for every WireGuard session`);

        // WireGuard's first completed handshake per (site, peer key), read from the UAPI sockets.
        const ifaceOf = (s: LabSite): string => `lr${lab.id}${lab.sites.indexOf(s)}`;
        const keyOf = new Map<string, LabSite>();
        const hs = new Map<string, number>(); // `${site}>${peerSite}` → ms after t0
        const allPairs: Array<[LabSite, LabSite]> = [];
        for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) allPairs.push([lab.sites[i]!, lab.sites[j]!]);
        const pairUp = (a: LabSite, b: LabSite): number | null => {
          const x = hs.get(`${a.name}>${b.name}`);
          const y = hs.get(`${b.name}>${a.name}`);
          return x === undefined || y === undefined ? null : Math.max(x, y);
        };
        let settledAt: number | null = null;
        while (Date.now() - t0 < timeoutMs) {
          await Promise.all(
            lab.sites.map(async (s) => {
              const st = await uapiGet(uapiSocketPath(ifaceOf(s))).catch(() => null);
              if (!st) return;
              if (st.publicKey) keyOf.set(st.publicKey, s);
              for (const p of st.peers) {
                const other = keyOf.get(p.publicKey);
                if (!other || p.lastHandshakeMs === null || p.lastHandshakeMs < t0 - 1000) continue;
                const k = `${s.name}>${other.name}`;
                if (!hs.has(k)) hs.set(k, Math.max(0, p.lastHandshakeMs - t0));
              }
            }),
          );
          if (allPairs.every(([a, b]) => pairUp(a, b) !== null)) {
            settledAt = Date.now();
            break;
          }
          // Handshake times are WireGuard's own (absolute): polling slower only notices the end
          // later. Every 100 ms, the bench (16 UAPI dumps each time) took 0.46 of the 12 CPU-s the
          // saturated 2 cores had in a 16-player storm's first 6 s.
          await sleep(500);
        }
        const cpu = meter.stop();
        clearInterval(stallTimer);
        if (machineTimer && machine === null) await sleep(Math.max(0, t0 + MACHINE_WINDOW_S * 1000 + 50 - Date.now()));
        const stormSecs = ((settledAt ?? Date.now()) - t0) / 1000;
        // The same window for every run (the storm's own length varies with the code and the load):
        // CPU-seconds per helper from the joins to t0 + CPU_WINDOW_S, path finding's tail included.
        let fixedCpuS: number[] = [];
        let fixedSplit = '';
        if (CPU_WINDOW_S > 0) {
          await sleep(Math.max(0, t0 + CPU_WINDOW_S * 1000 - Date.now()));
          const fixed = meter.stop();
          const secs = (Date.now() - t0) / 1000;
          fixedCpuS = lab.sites.map((s) => ((fixed.get(helperPids.get(s.name)!) ?? NaN) / 100) * secs);
          let user = 0;
          let sys = 0;
          for (const [p, a] of split0) {
            const b = cpuTicksSplit(p);
            user += b.user - a.user;
            sys += b.sys - a.sys;
          }
          fixedSplit = `user ${fmt(user / clockTicks() / n, 2)} + sys ${fmt(sys / clockTicks() / n, 2)}`;
        }
        const load1 = loadLine();
        if (settledAt === null) log(`not every session came up within ${timeoutMs} ms`);

        // Let upgrades in flight land, then read the tables and ping every direction.
        await sleep(3000);
        const tables = new Map<string, PartyJson>();
        // A helper starved for a minute (load 30+) does not answer the CLI: report it, go on without its table.
        for (const s of lab.sites) {
          await pl.cli<PartyJson>(s, ['party']).then(
            (t) => void tables.set(s.name, t),
            (err: Error) => log(`${s.name}: no party table (${err.message.split('\n')[0]})`),
          );
        }
        // Members carry the site's name (startHelper sets device_name): any table that answered names everyone.
        const members = [...tables.values()].flatMap((t) => t.party?.members ?? []);
        const self = (s: LabSite): { deviceId: string; virtualIp: string } => members.find((m) => m.name === s.name) ?? { deviceId: `?${s.name}`, virtualIp: '0.0.0.0' };
        const siteById = new Map(lab.sites.map((s) => [self(s).deviceId, s]));
        const pings = new Map<string, boolean>();
        await Promise.all(
          lab.sites.map(async (a) => {
            for (const b of lab.sites) {
              if (a === b) continue;
              const ok = await lab.exec(a.host.ns, 'ping', ['-n', '-c', '1', '-W', '3', self(b).virtualIp]).then(() => true, () => false);
              pings.set(`${a.name}>${b.name}`, ok);
            }
          }),
        );
        // Path events from the helpers' logs, per (site, peer site): ms after t0.
        const firstAt = new Map<string, number>();
        const directAt = new Map<string, number>();
        const datagrams = new Map<string, number>();
        for (const s of lab.sites) {
          for (const r of records(pl.helpers.get(s.name)!.logs)) {
            if (r.sent?.datagrams !== undefined) datagrams.set(s.name, Math.max(datagrams.get(s.name) ?? 0, r.sent.datagrams));
            const other = r.peer === undefined ? undefined : siteById.get(r.peer);
            if (!other) continue;
            const k = `${s.name}>${other.name}`;
            const at = Date.parse(r.t) - t0;
            if (r.msg === 'direct path' && !directAt.has(k)) directAt.set(k, at);
            if ((r.msg === 'direct path' || r.msg === 'relayed path') && !firstAt.has(k)) firstAt.set(k, at);
          }
        }
        const both = (m: Map<string, number>, a: LabSite, b: LabSite): number | null => {
          const x = m.get(`${a.name}>${b.name}`);
          const y = m.get(`${b.name}>${a.name}`);
          return x === undefined || y === undefined ? null : Math.max(0, x, y);
        };
        const pathName = (from: LabSite, to: LabSite): string => {
          const p = tables.get(from.name)?.peers.find((x) => x.deviceId === self(to).deviceId);
          return p?.path === DIRECT ? 'direct' : p?.path === RELAYED ? 'relayed' : `state ${p?.path ?? '?'}`;
        };
        const rows: PairRow[] = allPairs.map(([a, b]) => {
          const pa = pathName(a, b);
          const pb = pathName(b, a);
          return {
            a,
            b,
            first: both(firstAt, a, b),
            direct: both(directAt, a, b),
            wg: pairUp(a, b),
            path: pa === pb ? pa : `${pa}/${pb}`,
            pings: [pings.get(`${a.name}>${b.name}`), pings.get(`${b.name}>${a.name}`)].map((x) => (x ? 'ok' : 'NO')).join('/'),
          };
        });

        const ms = (x: number | null): string => (x === null ? '-' : `${x}`);
        console.log(`storm load: ${load0} → ${load1}; the bench's own worst timer lateness ${fmt(stallMax)} ms (machine stalls); JoinParty answered p50 ${fmt(percentile(joinMs, 50))} ms, max ${fmt(Math.max(...joinMs))} ms`);
        console.log(`${'pair'.padEnd(36)} ${'first pkt'.padStart(9)} ${'direct'.padStart(7)} ${'WG up'.padStart(7)}  path             ping a→b/b→a   (ms after the joins)`);
        for (const r of [...rows].sort((x, y) => (y.wg ?? 1e9) - (x.wg ?? 1e9))) {
          console.log(`${`${r.a.name} ↔ ${r.b.name}`.padEnd(36)} ${ms(r.first).padStart(9)} ${ms(r.direct).padStart(7)} ${ms(r.wg).padStart(7)}  ${r.path.padEnd(16)} ${r.pings}`);
        }
        const summary = (label: string, xs: Array<number | null>): void => {
          const got = xs.filter((x): x is number => x !== null);
          console.log(
            `  ${label.padEnd(22)} n=${String(got.length).padStart(3)}/${xs.length}  p50 ${fmt(percentile(got, 50)).padStart(6)}  p95 ${fmt(percentile(got, 95)).padStart(6)}  max ${fmt(got.length ? Math.max(...got) : NaN).padStart(6)} ms`,
          );
        };
        console.log(`summary N=${n} (${allPairs.length} pairs, ${n * (n - 1)} directions):`);
        summary('first packet', rows.map((r) => r.first));
        summary('direct (direct pairs)', rows.map((r) => r.direct));
        summary('WireGuard session up', rows.map((r) => r.wg));
        const okDirs = [...pings.values()].filter(Boolean).length;
        const directPairs = rows.filter((r) => r.path === 'direct').length;
        console.log(`  pings through the tunnel: ${okDirs}/${pings.size} directions; pairs direct ${directPairs}, relayed ${rows.filter((r) => r.path === 'relayed').length}, other ${rows.length - directPairs - rows.filter((r) => r.path === 'relayed').length}`);
        const helperCpu = lab.sites.map((s) => cpu.get(helperPids.get(s.name)!) ?? NaN);
        const wgGo = lab.sites.map((s) => wgGoCpuSeconds(helperPids.get(s.name)!));
        console.log(
          `  CPU over the storm (${stormSecs.toFixed(1)} s), % of one core: helpers mean ${fmt(helperCpu.reduce((x, y) => x + y, 0) / n)} max ${fmt(Math.max(...helperCpu))}` +
            ` (CPU-s per helper ${fmt((helperCpu.reduce((x, y) => x + y, 0) / n / 100) * stormSecs, 2)}); control ${fmt(cpu.get(controlPid) ?? NaN)}; wireguard-go total CPU-s per helper mean ${fmt(wgGo.reduce((x, y) => x + y, 0) / n, 2)}`,
        );
        const dg = lab.sites.map((s) => datagrams.get(s.name) ?? 0);
        if (fixedCpuS.length > 0) {
          const sorted = [...fixedCpuS].sort((x, y) => x - y);
          console.log(`  CPU-s per helper in the first ${CPU_WINDOW_S} s after the joins: mean ${fmt(fixedCpuS.reduce((x, y) => x + y, 0) / n, 2)} (${fixedSplit}) p50 ${fmt(sorted[Math.floor(n / 2)]!, 2)} max ${fmt(sorted[n - 1]!, 2)} (${lab.sites.map((s, i) => `${s.name} ${fmt(fixedCpuS[i]!, 2)}`).join(', ')}); load ${loadLine()}`);
        }
        if (machine) console.log(`  machine CPU in the first ${MACHINE_WINDOW_S} s after the joins: ${classLine(machine)}`);
        console.log(`  path-finding datagrams: ${dg.reduce((x, y) => x + y, 0)} in all, ${fmt(dg.reduce((x, y) => x + y, 0) / allPairs.length, 1)} per pair (per helper: ${lab.sites.map((s, i) => `${s.name} ${dg[i]}`).join(', ')})`);
        if (wrap) {
          const counts = wrap.counts();
          const line = lab.sites.map((s) => {
            const m = counts.get(String(helperPids.get(s.name))) ?? new Map<string, number>();
            return `${s.name} ${['nft', 'wg', 'ip'].map((c) => `${c}:${m.get(c) ?? 0}`).join(' ')}`;
          });
          console.log(`  processes run by each helper (whole run): ${line.join('; ')}`);
          const storm = wrap.counts(true);
          const writes = lab.sites.map((s) => storm.get(String(helperPids.get(s.name)))?.get('nft-f') ?? 0);
          const others = lab.sites.map((s) => storm.get(String(helperPids.get(s.name)))?.get('nft-other') ?? 0);
          console.log(`  nft runs per helper from the joins to here: rulesets (-f) mean ${fmt(writes.reduce((x, y) => x + y, 0) / writes.length, 1)} max ${Math.max(...writes)}, other (listings) mean ${fmt(others.reduce((x, y) => x + y, 0) / others.length, 1)} (${lab.sites.map((s, i) => `${s.name} ${writes[i]}+${others[i]}`).join(', ')})`);
        }
        if (IDLE_S > 0) {
          // Nobody watching, nothing sent: what the party costs each helper at rest.
          await sleep(IDLE_SETTLE_S * 1000);
          // Datagrams each site sends to the internet at rest (disco, WireGuard and TURN keepalives,
          // STUN, control): a count, so it does not move with the machine's load as CPU does.
          const wire0 = await Promise.all(lab.sites.map((s) => lab.linkCounters(s.host.ns)));
          const idleMeter = new CpuMeter([...helperPids.values()]);
          const idleFrom = new Date();
          await sleep(IDLE_S * 1000);
          const idle = idleMeter.stop();
          const wire1 = await Promise.all(lab.sites.map((s) => lab.linkCounters(s.host.ns)));
          const perMin = lab.sites.map((_, i) => ((wire1[i]!.txPackets - wire0[i]!.txPackets) * 60) / IDLE_S);
          const xs = lab.sites.map((s) => idle.get(helperPids.get(s.name)!) ?? NaN);
          // The window's wall times, to cut it out of a profile (LANRAGE_LAB_NODE_ARGS="--cpu-prof ...").
          log(`idle window ${idleFrom.toISOString()} - ${new Date().toISOString()} (settled ${IDLE_SETTLE_S} s)`);
          console.log(`  idle ${IDLE_S} s afterwards, % of one core per helper: mean ${fmt(xs.reduce((x, y) => x + y, 0) / n, 2)} max ${fmt(Math.max(...xs), 2)} (${lab.sites.map((s, i) => `${s.name} ${fmt(xs[i]!, 2)}`).join(', ')}); load ${loadLine()}`);
          console.log(`  packets each site sent to the internet at rest, per minute: mean ${fmt(perMin.reduce((x, y) => x + y, 0) / n, 1)} (${lab.sites.map((s, i) => `${s.name} ${fmt(perMin[i]!, 1)}`).join(', ')})`);
        }
        console.log(`after: ${uptime()}`);
        const logDir = process.env.BENCH_LOG_DIR;
        if (logDir) {
          mkdirSync(logDir, { recursive: true });
          for (const s of lab.sites) writeFileSync(join(logDir, `n${n}-${s.name}.log`), pl.helpers.get(s.name)!.logs.join('\n') + '\n');
          writeFileSync(join(logDir, `n${n}-control.log`), pl.control!.logs.join('\n') + '\n');
          writeFileSync(join(logDir, `n${n}-t0`), `${new Date(t0).toISOString()}\n`);
        }
      } finally {
        await Promise.all(lab.sites.map((s) => pl.stopHelper(s))).catch(() => undefined);
        pl.cleanup();
      }
    });
  } finally {
    process.env.PATH = savedPath;
    if (wrap) rmSync(wrap.dir, { recursive: true, force: true });
  }
}

/** wireguard-go below the helper: its whole CPU time so far, in seconds (it started with the join). */
function wgGoCpuSeconds(helperPid: number): number {
  for (const c of childrenOf(helperPid)) {
    try {
      if (comm(c) !== 'wireguard-go') continue;
      const s = readFileSync(`/proc/${c}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      // gone
    }
  }
  return NaN;
}

interface Trigger {
  go(): void;
  result: Promise<number>;
}

/** A join-trigger in the site's namespace, connected and waiting (see join-trigger.ts). */
async function startTrigger(lab: Lab, s: LabSite, stateDir: string, link: string): Promise<Trigger> {
  const child = lab.spawn(s.host.ns, process.execPath, [TRIGGER, '--state-dir', stateDir, link]);
  const lines = createInterface({ input: child.stdout! });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const next = (): Promise<string> =>
    new Promise((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`join-trigger in ${s.name} exited (${code}): ${err}`)));
    });
  const ready = await next();
  if (ready !== 'ready') throw new Error(`join-trigger in ${s.name}: ${ready}`);
  const result = next().then((l) => {
    const r = JSON.parse(l) as { ok: boolean; ms?: number; error?: string };
    if (!r.ok) throw new Error(`join in ${s.name} failed: ${r.error}`);
    return r.ms!;
  });
  result.catch(() => undefined);
  return { go: () => child.stdin!.write('go\n'), result };
}

async function main(): Promise<void> {
  const avail = await labAvailable();
  if (!avail.ok) {
    console.error(`joinstorm.bench needs the network lab (root, ip, nft): ${avail.why}`);
    process.exit(1);
  }
  if (!existsSync(TRIGGER)) throw new Error(`${TRIGGER} is missing: npm run build first`);
  const ns = (process.env.BENCH_N ?? '4,8').split(',').map((x) => Number(x.trim())).filter((x) => Number.isInteger(x) && x >= 2);
  console.log(`LANrage join-storm benchmark, ${new Date().toISOString()}, N = ${ns.join(', ')}`);
  for (const n of ns) await storm(n);
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exitCode = 1;
});
