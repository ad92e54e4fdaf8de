// Benchmark (issue 14 item 5): the control plane under 10,000 simulated devices — real keys
// (Ed25519 identity signing the registration challenge, X25519 WireGuard and disco keys), 2,500
// parties of 4, every device holding a Session stream open (that is its presence) and
// publishing new endpoints once per period (30 s, like a helper whose mapping keeps moving).
// Configurations, each on a fresh database: SQLite with one instance; PostgreSQL with one
// instance; PostgreSQL with two instances (devices alternate between them, so every party spans
// both and each update crosses the LISTEN/NOTIFY bus).
// Printed: setup time, UpdateEndpoints latency p50/p99 (and max) as the client sees it (answered
// once durable), events received vs expected, CPU per control instance and PostgreSQL (% of
// one core), database size, machine load.
// Time is not compressed by default: each device updates once per BENCH_PERIOD_S (30) at a
// random offset, measured over BENCH_WINDOW_S (30), i.e. 333 updates/s for 10,000 devices.
// Compress with BENCH_PERIOD_S=3 (ten times the rate). Scale with BENCH_DEVICES (multiple of 4).
// The load generator runs in this process, on the same 2 cores as the instances and PostgreSQL.
// Run as root after a build: node dist/test/bench/control-load.bench.js
import { generateKeyPairSync, randomBytes, randomInt, sign, type KeyObject } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { credentials, Metadata, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { ControlServiceClient, NatMapping, type SessionResponse } from '../../helper/gen/lanrage/control/v1/control.js';
import { registrationMessage } from '../../helper/control/registration.js';
import { identityPublicKeyRaw } from '../../helper/controlclient/identity.js';
import { havePostgres, TestPostgres } from '../lib/postgres.js';
import { startControlProcess, type ControlProcess } from '../lib/control-process.js';
import { childrenOf, CpuMeter, fmt, loadLine, percentile, rssKiB } from './bench-lib.js';

const DEVICES = Math.max(4, Math.floor(Number(process.env.BENCH_DEVICES ?? 10_000) / 4) * 4);
const PERIOD_S = Number(process.env.BENCH_PERIOD_S ?? 30);
const WINDOW_S = Number(process.env.BENCH_WINDOW_S ?? 30);
const CHANNELS = Number(process.env.BENCH_CHANNELS ?? 16); // HTTP/2 connections per instance; sessions and calls multiplex on them
const SETUP_CONCURRENCY = 64;
const CONFIGS = (process.env.BENCH_CONFIGS ?? 'sqlite1,pg1,pg2').split(',');

interface Device {
  identity: KeyObject;
  wg: Buffer;
  disco: Buffer;
  name: string;
  id: string;
  token: string;
  client: ControlServiceClient;
  stream?: ClientReadableStream<SessionResponse>;
  events: number;
}

let tearingDown = false;
let sessionsBroken = 0;
let firstError: string | undefined;

const raw = (k: KeyObject): Buffer => k.export({ format: 'der', type: 'spki' }).subarray(-32);

function makeDevices(n: number): Device[] {
  const out: Device[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      identity: generateKeyPairSync('ed25519').privateKey,
      wg: raw(generateKeyPairSync('x25519').publicKey),
      disco: raw(generateKeyPairSync('x25519').publicKey),
      name: `bench-${i}`,
      id: '',
      token: '',
      client: undefined as unknown as ControlServiceClient,
      events: 0,
    });
  }
  return out;
}

const md = (token: string): Metadata => {
  const m = new Metadata();
  m.set('authorization', `Bearer ${token}`);
  return m;
};

function call<Req, Res>(fn: (req: Req, meta: Metadata, opts: { deadline: number }, cb: (err: ServiceError | null, res: Res) => void) => unknown, req: Req, token = ''): Promise<Res> {
  return new Promise((resolve, reject) => {
    fn(req, md(token), { deadline: Date.now() + 60_000 }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

async function pool<T>(items: readonly T[], n: number, fn: (x: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

async function setup(devices: Device[], urls: string[]): Promise<void> {
  const channels = urls.map((u) => Array.from({ length: CHANNELS }, () => new ControlServiceClient(new URL(u).host, credentials.createInsecure(), { 'grpc.max_receive_message_length': 4 << 20 })));
  // Device i talks to instance i % urls.length: every party of 4 consecutive devices spans them all.
  devices.forEach((d, i) => (d.client = channels[i % urls.length]![Math.floor(i / urls.length) % CHANNELS]!));
  let online = 0;
  let parties = 0;
  const t0 = performance.now();
  const progress = setInterval(() => console.log(`  setup ${fmt((performance.now() - t0) / 1000)} s: ${online} devices online, ${parties} parties full; ${loadLine()}`), 30_000);
  try {
    await setupDevices(devices, () => online++);
    await setupParties(devices, () => parties++);
  } finally {
    clearInterval(progress);
  }
}

async function setupDevices(devices: Device[], done: () => void): Promise<void> {
  await pool(devices, SETUP_CONCURRENCY, async (d) => {
    const c = d.client;
    const ch = await call(c.getChallenge.bind(c), {});
    const signature = sign(null, registrationMessage(ch.nonce, d.wg, d.disco, d.name), d.identity);
    const reg = await call(c.register.bind(c), { identityPublicKey: identityPublicKeyRaw(d.identity), nonce: ch.nonce, signature, name: d.name, wireguardPublicKey: d.wg, discoPublicKey: d.disco });
    d.id = reg.deviceId;
    d.token = reg.sessionToken;
    await new Promise<void>((resolve, reject) => {
      const s = c.session({}, md(d.token));
      d.stream = s;
      let first = true;
      s.on('data', () => {
        d.events++;
        if (first) {
          first = false;
          done();
          resolve();
        }
      });
      s.on('error', (e: ServiceError) => {
        if (first) reject(e);
        else if (!tearingDown && sessionsBroken++ === 0) console.log(`  first session broke at ${new Date().toISOString()}: ${e.code} ${e.details}; ${loadLine()}`);
      });
    });
  });
}

async function setupParties(devices: Device[], done: () => void): Promise<void> {
  const hosts = Array.from({ length: devices.length / 4 }, (_, k) => k * 4);
  await pool(hosts, SETUP_CONCURRENCY, async (i) => {
    const host = devices[i]!;
    const p = await call(host.client.createParty.bind(host.client), { name: `party-${i / 4}` }, host.token);
    for (const m of devices.slice(i + 1, i + 4)) await call(m.client.joinParty.bind(m.client), { partyId: p.party!.id, inviteSecret: p.inviteSecret }, m.token);
    done();
  });
}

interface Result {
  config: string;
  setupS: number;
  updates: number;
  errors: number;
  p50: number;
  p99: number;
  max: number;
  eventsGot: number;
  eventsWant: number;
  cpu: number[];
  rssMiB: number[];
  pgCpu: number;
  dbSize: string;
  load: string;
  /** Session streams that broke during the run (each is a member that would have reconnected). */
  broken: number;
  /** This process (the load generator) over the window, % of one core. */
  benchCpu: number;
  /** Its event-loop delay p99 over setup and window, ms: latency it adds to every figure. */
  benchLagP99: number;
}

async function runConfig(config: string, devices: Device[]): Promise<Result> {
  const usePg = config.startsWith('pg');
  const instances = Number(config.slice(-1));
  let db: TestPostgres | undefined;
  const procs: ControlProcess[] = [];
  try {
    tearingDown = false;
    sessionsBroken = 0;
    if (usePg) db = await TestPostgres.start();
    // BENCH_PROFILE=DIR: each instance writes a V8 CPU profile there (open it in Chrome's DevTools).
    const nodeArgs = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
    // BENCH_GRPC_TRACE=keepalive,...: grpc-js tracing in the instances (their log is printed when sessions break).
    const env = process.env.BENCH_GRPC_TRACE ? { GRPC_TRACE: process.env.BENCH_GRPC_TRACE, GRPC_VERBOSITY: 'DEBUG' } : {};
    for (let i = 0; i < instances; i++) procs.push(await startControlProcess(usePg ? ['--db', db!.url()] : [], env, nodeArgs));
    for (const d of devices) d.events = 0;
    const lag = monitorEventLoopDelay({ resolution: 20 });
    lag.enable();
    const t0 = performance.now();
    await setup(devices, procs.map((p) => p.url));
    const setupS = (performance.now() - t0) / 1000;
    console.log(`  setup done at ${new Date().toISOString()} (${fmt(setupS)} s), event-loop delay max so far ${fmt(lag.max / 1e6)} ms`);
    await sleep(2000); // let the joins' fan-out settle
    for (const d of devices) d.events = 0;

    const pgPids = db?.pid ? [db.pid, ...childrenOf(db.pid)] : [];
    const cpu = new CpuMeter([...procs.map((p) => p.pid), ...pgPids, process.pid]);
    const lat: number[] = [];
    let errors = 0;
    const end = performance.now() + WINDOW_S * 1000;
    await Promise.all(
      devices.map(async (d) => {
        let next = performance.now() + randomInt(PERIOD_S * 1000);
        while (next < end) {
          await sleep(Math.max(0, next - performance.now()));
          const a = performance.now();
          try {
            await call(d.client.updateEndpoints.bind(d.client), { candidates: [`203.0.113.${randomInt(1, 255)}:${randomInt(1024, 65535)}`], nat: { mapping: NatMapping.NAT_MAPPING_ENDPOINT_INDEPENDENT, portMapped: false, portDelta: 0 }, relayed: [] }, d.token);
            lat.push(performance.now() - a);
          } catch (e) {
            errors++;
            firstError ??= `${(e as ServiceError).code}: ${(e as ServiceError).details}`;
          }
          next += PERIOD_S * 1000;
        }
      }),
    );
    await sleep(1000);
    lag.disable();
    const shares = cpu.stop();
    if (sessionsBroken > 0) for (const p of procs) console.log(`  instance ${p.pid} log (tail):\n${p.log().slice(-4000)}`);
    const sorted = lat.sort((x, y) => x - y);
    const dbSize = db ? (await db.query<{ s: string }>("SELECT pg_size_pretty(pg_database_size('lanrage')) AS s"))[0]!.s : '(sqlite file)';
    return {
      config,
      setupS,
      updates: lat.length,
      errors,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted.at(-1) ?? NaN,
      eventsGot: devices.reduce((s, d) => s + d.events, 0),
      eventsWant: lat.length * 4, // member_updated to the whole party, the sender included
      cpu: procs.map((p) => shares.get(p.pid)!),
      rssMiB: procs.map((p) => rssKiB(p.pid) / 1024),
      pgCpu: pgPids.reduce((s, p) => s + (shares.get(p) || 0), 0),
      dbSize,
      load: loadLine(),
      broken: sessionsBroken,
      benchCpu: shares.get(process.pid)!,
      benchLagP99: lag.percentile(99) / 1e6,
    };
  } finally {
    tearingDown = true;
    for (const d of devices) d.stream?.cancel();
    for (const d of devices) d.client?.close();
    // SIGTERM (so that BENCH_PROFILE's --cpu-prof is written), SIGKILL if it lingers.
    for (const p of procs) {
      const t = setTimeout(() => p.proc.kill('SIGKILL'), 10_000);
      await p.stop('SIGTERM');
      clearTimeout(t);
    }
    await db?.destroy();
  }
}

async function main(): Promise<void> {
  if (CONFIGS.some((c) => c.startsWith('pg')) && !havePostgres()) {
    console.error('*** PostgreSQL (Debian package postgresql) and root are needed for the pg configurations');
    process.exit(1);
  }
  console.log(`control load: ${DEVICES} devices, ${DEVICES / 4} parties of 4, one endpoint update per device every ${PERIOD_S} s (${fmt(DEVICES / PERIOD_S)}/s), window ${WINDOW_S} s; ${loadLine()}`);
  const t = performance.now();
  const devices = makeDevices(DEVICES);
  console.log(`keys: ${DEVICES} × (Ed25519 + 2 × X25519) in ${fmt((performance.now() - t) / 1000, 1)} s`);
  const results: Result[] = [];
  for (const c of CONFIGS) {
    const r = await runConfig(c, devices);
    results.push(r);
    console.log(`${c}: done (${r.load})${firstError ? `; first error: ${firstError}` : ''}`);
    firstError = undefined;
  }
  console.log('\n| config | setup s | updates | errors | p50 ms | p99 ms | max ms | events got/want | sessions broken | CPU % per instance | RSS MiB per instance | PostgreSQL CPU % | load generator CPU % / event-loop delay p99 ms | DB size | load |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(
      `| ${r.config} | ${fmt(r.setupS, 1)} | ${r.updates} | ${r.errors} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${fmt(r.max, 0)} | ${r.eventsGot}/${r.eventsWant} | ${r.broken} | ${r.cpu.map((x) => fmt(x)).join(' + ')} | ${r.rssMiB.map((x) => fmt(x)).join(' + ')} | ${usePgLabel(r)} | ${fmt(r.benchCpu)} / ${fmt(r.benchLagP99)} | ${r.dbSize} | ${r.load} |`,
    );
  }
}

const usePgLabel = (r: Result): string => (r.config.startsWith('pg') ? fmt(r.pgCpu) : '-');

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
