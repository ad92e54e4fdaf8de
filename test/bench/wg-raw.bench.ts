// Benchmark: raw wireguard-go between two network namespaces, set up by our engine. This is the
// baseline later data-path work (the helper forwarder, the nftables fast path) is compared to.
// Run as root after a build: node dist/test/bench/wg-raw.bench.js
// Env: BENCH_RUNS (iperf3 runs, default 3), BENCH_SECONDS (per run, default 5).
// Prints figures; asserts nothing about speed.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateKeyPair } from '../../helper/wg/index.js';
import { commandExists, createLab, createTunnel, isRoot, nsExec, type Lab } from '../integration/wg-lab.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function iperf(lab: Lab, serverIp: string): Promise<number> {
  const server = spawn('ip', ['netns', 'exec', lab.b, 'iperf3', '-s', '-1', '-B', serverIp], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 100; i++) {
      if ((await nsExec(lab.b, 'ss', ['-Htln', 'sport = :5201'])).stdout.includes('5201')) break;
      await sleep(20);
    }
    const r = await nsExec(lab.a, 'iperf3', ['-c', serverIp, '-t', String(SECONDS), '-J'], (SECONDS + 20) * 1000);
    if (r.code !== 0) throw new Error(`iperf3 failed: ${r.stderr}${r.stdout.slice(0, 500)}`);
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
    return j.end.sum_received.bits_per_second / 1e6;
  } finally {
    server.kill();
  }
}

async function pingRtts(lab: Lab, ip: string): Promise<number[]> {
  const r = await nsExec(lab.a, 'ping', ['-n', '-c', '60', '-i', '0.016', '-W', '1', ip]);
  const rtts = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (rtts.length < 55) throw new Error(`ping lost too much: ${r.stdout.slice(-300)}`);
  return rtts;
}

async function measure(lab: Lab, ip: string, label: string): Promise<void> {
  const mbits: number[] = [];
  for (let i = 0; i < RUNS; i++) mbits.push(await iperf(lab, ip));
  const rtts = await pingRtts(lab, ip);
  console.log(
    `${label.padEnd(26)} TCP ${pct(mbits, 50).toFixed(0).padStart(6)} Mbit/s (runs: ${mbits.map((m) => m.toFixed(0)).join(', ')})` +
      `   RTT p50 ${pct(rtts, 50).toFixed(3)} ms  p99 ${pct(rtts, 99).toFixed(3)} ms  (${rtts.length} pings at 60 pps)`,
  );
}

async function main(): Promise<void> {
  const missing = ['ip', 'wireguard-go', 'iperf3', 'ping', 'ss'].filter((c) => !commandExists(c));
  if (!isRoot() || missing.length) throw new Error(`needs root and ${missing.join(', ') || 'nothing else'}`);
  const lab = createLab();
  try {
    const tun = await createTunnel(lab, { a: generateKeyPair(), b: generateKeyPair() });
    // Warm up the handshake so the first run does not pay for it.
    await nsExec(lab.a, 'ping', ['-n', '-c', '2', '-i', '0.2', '10.66.0.2']);
    console.log(`wireguard-go between two namespaces (veth), MTU 1420, ${RUNS} x ${SECONDS} s iperf3 TCP, median shown`);
    await measure(lab, '192.0.2.2', 'veth, no tunnel');
    await measure(lab, '10.66.0.2', 'wireguard-go tunnel (raw)');
    const ss = await nsExec(lab.a, 'ss', ['-Huamp', `sport = :${tun.portA}`]);
    const buf = [...ss.stdout.matchAll(/rb(\d+),t\d+,tb(\d+)/g)].map((m) => `rcv ${Number(m[1]) / 1024} KiB / snd ${Number(m[2]) / 1024} KiB`);
    console.log(`wireguard-go UDP socket buffers: ${[...new Set(buf)].join('; ')}`);
    await tun.da.call('close');
    await tun.db.call('close');
    await tun.da.end();
    await tun.db.end();
  } finally {
    await lab.cleanup();
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exitCode = 1;
});
