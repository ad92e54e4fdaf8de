// What watching costs: the helper's CPU (its own time plus its reaped children's, so processes
// that systeminformation spawns count too) with nobody watching, then with one Watch stream open
// through the gRPC-Web bridge as a browser tab has it, and that stream's bytes per second.
//   node dist/test/bench/metrics-cpu.bench.js                       this build
//   BENCH_HELPER_MAIN=/work/main/dist/helper/main.js node ...       another build (before/after)
//   BENCH_SECONDS=60 (each phase), BENCH_ROUNDS=2
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { HELPER_MAIN } from '../lib/repo.js';
import { clockTicks, fmt, loadLine } from './bench-lib.js';

const MAIN = process.env.BENCH_HELPER_MAIN ?? HELPER_MAIN;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);

/** utime + stime + cutime + cstime in clock ticks. */
function ticksWithChildren(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
}

async function measure(pid: number, seconds: number): Promise<number> {
  const t0 = performance.now();
  const k0 = ticksWithChildren(pid);
  await sleep(seconds * 1000);
  return ((ticksWithChildren(pid) - k0) / clockTicks() / ((performance.now() - t0) / 1000)) * 100;
}

async function main(): Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), 'lanrage-bench-'));
  const child = spawn(process.execPath, [MAIN, 'helper', '--state-dir', stateDir, '--http-port', '0', '--grpc-port', '0', '--control-port', '0', '--interface', `lrb${randomBytes(3).toString('hex')}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LANRAGE_LOG: 'info' },
  });
  try {
    const httpPort = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('helper not ready in 30 s')), 30_000);
      createInterface({ input: child.stderr! }).on('line', (line) => {
        try {
          const r = JSON.parse(line) as { msg?: string; httpPort?: number };
          if (r.msg === 'helper ready' && r.httpPort) {
            clearTimeout(timer);
            resolve(r.httpPort);
          }
        } catch {
          // not a log record
        }
      });
    });
    console.log(`helper ${MAIN}`);
    console.log(`${loadLine()}; ${SECONDS} s per phase, ${ROUNDS} rounds`);
    await sleep(5000);
    for (let round = 1; round <= ROUNDS; round++) {
      const idle = await measure(child.pid!, SECONDS);
      // One tab: the PWA's Watch over gRPC-Web text through the helper's HTTP port.
      const ac = new AbortController();
      let bytes = 0;
      const res = await fetch(`http://127.0.0.1:${httpPort}/lanrage.v1.WatchService/Watch`, {
        method: 'POST',
        headers: { 'content-type': 'application/grpc-web-text', accept: 'application/grpc-web-text', 'x-grpc-web': '1' },
        body: Buffer.from([0, 0, 0, 0, 0]).toString('base64'),
        signal: ac.signal,
      });
      const reader = res.body!.getReader();
      const pump = (async () => {
        for (;;) {
          const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
          if (done) return;
          bytes += value?.length ?? 0;
        }
      })();
      await sleep(3000);
      const b0 = bytes;
      const t0 = performance.now();
      const watched = await measure(child.pid!, SECONDS);
      const bps = (bytes - b0) / ((performance.now() - t0) / 1000);
      ac.abort();
      await pump;
      console.log(`round ${round}: helper CPU unwatched ${fmt(idle, 2)} % of a core, one tab watching ${fmt(watched, 2)} %; Watch stream ${fmt(bps)} B/s (${loadLine()})`);
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(stateDir, { recursive: true, force: true });
  }
}

await main();
