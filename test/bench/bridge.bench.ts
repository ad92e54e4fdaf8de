// Benchmark: the cost of the in-process gRPC-Web bridge against native gRPC, measured in one run
// against the same helper, plus the live stream's message rate and the helper's idle footprint.
// Prints figures; asserts nothing about speed.
import { request } from 'node:http';
import { execFileSync } from 'node:child_process';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { SettingsServiceClient, GetSettingsRequest } from '../../helper/gen/lanrage/v1/settings.js';
import { WatchServiceClient } from '../../helper/gen/lanrage/v1/watch.js';
import { startHelper, removeStateDir } from '../lib/helper-process.js';

const N = Number(process.env.BENCH_CALLS ?? 2000);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function grpcWebUnary(port: number, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path: '/lanrage.v1.SettingsService/GetSettings', agent: keepAlive, headers: { host: `localhost:${port}`, 'content-type': 'application/grpc-web+proto', 'x-grpc-web': '1' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const all = Buffer.concat(chunks);
          if (!all.includes(Buffer.from('grpc-status:0'))) reject(new Error(`bad reply ${all.toString('latin1')}`));
          else resolve();
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

import { Agent } from 'node:http';
const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });

function cpuTicks(pid: number): number {
  const f = execFileSync('cat', [`/proc/${pid}/stat`]).toString().split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}

async function main(): Promise<void> {
  const h = await startHelper({ pwaDir: null, env: { LANRAGE_LOG: 'info' } });
  try {
    const client = new SettingsServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
    const native = (): Promise<void> => new Promise((res, rej) => client.getSettings({}, (e: ServiceError | null) => (e ? rej(e) : res())));
    const msg = Buffer.from(GetSettingsRequest.encode({}).finish());
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, msg.length]), msg]);
    const web = (): Promise<void> => grpcWebUnary(h.httpPort, frame);

    for (let i = 0; i < 200; i++) {
      await native();
      await web();
    }
    const tn: number[] = [];
    const tw: number[] = [];
    // Interleaved so both see the same machine state.
    for (let i = 0; i < N; i++) {
      let t = process.hrtime.bigint();
      await native();
      tn.push(Number(process.hrtime.bigint() - t) / 1e6);
      t = process.hrtime.bigint();
      await web();
      tw.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    client.close();
    const p50n = pct(tn, 50), p50w = pct(tw, 50);
    console.log(`unary GetSettings over ${N} calls each (same helper, interleaved)`);
    console.log(`  native gRPC      p50 ${p50n.toFixed(3)} ms  p99 ${pct(tn, 99).toFixed(3)} ms`);
    console.log(`  gRPC-Web bridge  p50 ${p50w.toFixed(3)} ms  p99 ${pct(tw, 99).toFixed(3)} ms  (HTTP/1.1 keep-alive, binary)`);
    console.log(`  bridge overhead  p50 +${(p50w - p50n).toFixed(3)} ms`);

    // Live stream rate over 10 s.
    const w = new WatchServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
    let metrics = 0;
    const t0 = Date.now();
    await new Promise<void>((resolve) => {
      const s = w.watch({ topics: [], maxDurationSeconds: 10 });
      s.on('data', (m: { metrics?: unknown }) => m.metrics && metrics++);
      s.on('end', resolve);
      s.on('error', () => resolve());
    });
    w.close();
    console.log(`live stream: ${metrics} metrics samples in ${((Date.now() - t0) / 1000).toFixed(1)} s = ${(metrics / ((Date.now() - t0) / 1000)).toFixed(2)} msg/s`);

    // Idle: nobody watching, 30 s.
    await new Promise((r) => setTimeout(r, 3000));
    const hz = 100;
    const c0 = cpuTicks(h.pid);
    const idleSecs = Number(process.env.BENCH_IDLE_SECONDS ?? 30);
    await new Promise((r) => setTimeout(r, idleSecs * 1000));
    const c1 = cpuTicks(h.pid);
    const rss = Number(execFileSync('cat', [`/proc/${h.pid}/status`]).toString().match(/VmRSS:\s+(\d+)/)![1]) * 1024;
    console.log(`helper idle over ${idleSecs} s: CPU ${(((c1 - c0) / hz / idleSecs) * 100).toFixed(2)} % of one core, RSS ${(rss / 1048576).toFixed(1)} MiB`);
  } finally {
    await h.stop();
    removeStateDir(h.stateDir);
    keepAlive.destroy();
  }
}

void main();
