// Game detection cost: CPU per /proc scan against the number of processes on the machine, to
// check the budget (<= 0.2 % of one core at 500 processes with a scan every 2 s, i.e. <= 4 ms of
// CPU per scan). Spawns extra sleeping processes (kept, ended by PID), then measures:
//   cold: the first scan (reads every process's exe link and command line),
//   warm: the steady state (settled processes: directory entry only, cached match),
//   young: every process younger than RECHECK_MS (one readlink each: the worst case),
//   start→detected: a Wine-style process (argv[0] C:\...\hl2.exe) appearing until the
//   polling detector emits 'started', at the helper's 2 s interval.
// BENCH_SI=1 also times one systeminformation.processes() call for comparison.
// Usage: node dist/test/bench/games.bench.js [counts, default 0,250,500,1000]
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadProfileFile } from '../../helper/games/load-profiles.js';
import { ProfileMatcher } from '../../helper/games/match.js';
import { LinuxProcSource, RECHECK_MS } from '../../helper/games/proc-source.js';
import { PollingGameDetector } from '../../helper/games/detector.js';
import { LINUX_SCAN_MS } from '../../helper/games/games.js';
import { loadLine, percentile } from './bench-lib.js';

const counts = (process.argv[2] ?? '0,250,500,1000').split(',').map(Number);
const profiles = loadProfileFile();
const matcher = new ProfileMatcher(profiles, 'linux');
const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) process.kill(c.pid!, 'SIGKILL');
});

const cpuMs = async (f: () => Promise<unknown>): Promise<number> => {
  const a = process.cpuUsage();
  await f();
  const d = process.cpuUsage(a);
  return (d.user + d.system) / 1000;
};

async function grow(to: number): Promise<void> {
  while (children.length < to) {
    const batch = Math.min(50, to - children.length);
    for (let i = 0; i < batch; i++) children.push(spawn('sleep', ['3600'], { stdio: 'ignore' }));
    await sleep(50);
  }
}

// What one helper scan does: list, then match (matches are cached per unchanged process, as in
// PollingGameDetector).
const matchCache = new WeakMap<object, unknown>();
async function scanOnce(src: LinuxProcSource): Promise<number> {
  let n = 0;
  for (const p of await src.list()) {
    let m = matchCache.get(p);
    if (m === undefined) {
      m = matcher.match(p) ?? null;
      matchCache.set(p, m);
    }
    if (m) n++;
  }
  return n;
}

// Other programs on this machine may start games too: wait for this pid's event only.
const eventFor = (det: PollingGameDetector, ev: 'started' | 'stopped', pid: number): Promise<void> =>
  new Promise((resolve) => {
    const on = (d: { pid: number }): void => {
      if (d.pid !== pid) return;
      det.off(ev, on);
      resolve();
    };
    det.on(ev, on);
  });

async function main(): Promise<void> {
  console.log(`games.bench: ${profiles.length} profiles; ${loadLine()}`);
  console.log('processes  cold scan ms CPU  warm scan ms CPU (p50 / p90)  % of one core at one scan per 2 s  all-young scan ms CPU p50');
  for (const extra of counts) {
    await grow(extra);
    await sleep(200);
    const total = (await new LinuxProcSource().list()).length;
    const coldRuns: number[] = [];
    for (let i = 0; i < 5; i++) coldRuns.push(await cpuMs(() => scanOnce(new LinuxProcSource())));
    // Steady state: every process already seen more than RECHECK_MS ago (clock moved forward).
    let fake = 0;
    const src = new LinuxProcSource('/proc', () => fake);
    await scanOnce(src);
    fake = RECHECK_MS;
    const warm: number[] = [];
    for (let i = 0; i < 50; i++) {
      warm.push(await cpuMs(() => scanOnce(src)));
      await sleep(10);
    }
    const p50 = percentile(warm, 50);
    const youngSrc = new LinuxProcSource();
    await scanOnce(youngSrc);
    const young: number[] = [];
    for (let i = 0; i < 20; i++) young.push(await cpuMs(() => scanOnce(youngSrc)));
    console.log(
      `${String(total).padStart(9)}  ${percentile(coldRuns, 50).toFixed(2).padStart(16)}  ${p50.toFixed(2).padStart(12)} / ${percentile(warm, 90).toFixed(2).padEnd(14)}  ${((p50 / LINUX_SCAN_MS) * 100).toFixed(3).padEnd(7)} %                             ${percentile(young, 50).toFixed(2)}`,
    );
  }

  // Start → detected, through the real polling detector at the helper's interval.
  const det = new PollingGameDetector(new LinuxProcSource(), matcher, LINUX_SCAN_MS);
  det.start();
  await sleep(300);
  const lat: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    const c = spawn('sleep', ['3600'], { stdio: 'ignore', argv0: 'C:\\Games\\Half-Life 2\\hl2.exe' });
    await eventFor(det, 'started', c.pid!);
    lat.push(Date.now() - t0);
    process.kill(c.pid!, 'SIGKILL');
    await eventFor(det, 'stopped', c.pid!);
    await sleep(Math.random() * 1000);
  }
  det.stop();
  console.log(`start → detected (scan every ${LINUX_SCAN_MS} ms): ${lat.map((x) => `${x} ms`).join(', ')}; mean ${(lat.reduce((a, b) => a + b, 0) / lat.length).toFixed(0)} ms`);

  if (process.env.BENCH_SI === '1') {
    const si = (await import('systeminformation')).default;
    const a = process.cpuUsage();
    const t0 = Date.now();
    const r = await si.processes();
    const d = process.cpuUsage(a);
    console.log(`systeminformation.processes(): ${r.list.length} processes, ${Date.now() - t0} ms wall, ${((d.user + d.system) / 1000).toFixed(0)} ms CPU in this process (plus its ps children)`);
  }
  console.log(`end: ${loadLine()}`);
  for (const c of children) process.kill(c.pid!, 'SIGKILL');
}

await main();
