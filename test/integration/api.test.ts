import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client, credentials, Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { HelperServiceClient, type GetStatusResponse } from '../../helper/gen/lanrage/v1/helper.js';
import { Settings, SettingsServiceClient, type GetSettingsResponse, type UpdateSettingsResponse } from '../../helper/gen/lanrage/v1/settings.js';
import { WatchServiceClient, WatchTopic, type WatchResponse } from '../../helper/gen/lanrage/v1/watch.js';
import { NetworkServiceClient, type GetNatReportResponse } from '../../helper/gen/lanrage/v1/network.js';
import { DiscordServiceService } from '../../helper/gen/lanrage/v1/discord.js';
import { GameServiceService } from '../../helper/gen/lanrage/v1/games.js';
import { HelperServiceService } from '../../helper/gen/lanrage/v1/helper.js';
import { MetricsServiceService } from '../../helper/gen/lanrage/v1/metrics.js';
import { NetworkServiceService } from '../../helper/gen/lanrage/v1/network.js';
import { PartyServiceService } from '../../helper/gen/lanrage/v1/party.js';
import { PeerServiceService } from '../../helper/gen/lanrage/v1/peer.js';
import { ServerBrowserServiceService } from '../../helper/gen/lanrage/v1/servers.js';
import { SettingsServiceService } from '../../helper/gen/lanrage/v1/settings.js';
import { WatchServiceService } from '../../helper/gen/lanrage/v1/watch.js';
import { MetricsServiceClient, type GetMetricsHistoryResponse } from '../../helper/gen/lanrage/v1/metrics.js';
import { startHelper, removeStateDir, type HelperProcess } from '../lib/helper-process.js';
import { HELPER_MAIN } from '../lib/repo.js';

const run = promisify(execFile);
const started: HelperProcess[] = [];
after(async () => {
  for (const h of started) {
    await h.stop('SIGKILL');
    removeStateDir(h.stateDir);
  }
});

async function helper(stateDir?: string): Promise<HelperProcess> {
  const h = await startHelper({ stateDir, pwaDir: null });
  if (!stateDir) started.push(h);
  return h;
}

function call<Res>(fn: (cb: (err: ServiceError | null, res: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
}

const auth = (token: string): Metadata => {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
};

async function settingsOf(port: number): Promise<Settings> {
  const c = new SettingsServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  try {
    return (await call<GetSettingsResponse>((cb) => c.getSettings({}, cb))).settings!;
  } finally {
    c.close();
  }
}

async function update(port: number, settings: Partial<Settings>, mask: string[], md: Metadata): Promise<Settings> {
  const c = new SettingsServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  try {
    const res = await call<UpdateSettingsResponse>((cb) => c.updateSettings({ settings: Settings.fromPartial(settings), updateMask: mask }, md, cb));
    return res.settings!;
  } finally {
    c.close();
  }
}

async function rejects(p: Promise<unknown>, code: Status, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: ServiceError) => {
    assert.equal(err.code, code, `expected ${Status[code]}, got ${Status[err.code]}: ${err.details}`);
    assert.match(err.details, message);
    return true;
  });
}

test('GetStatus reports the real helper', async () => {
  const h = await helper();
  const c = new HelperServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  const res = await call<GetStatusResponse>((cb) => c.getStatus({}, cb));
  c.close();
  assert.equal(res.status?.grpcPort, h.grpcPort);
  assert.equal(res.status?.httpPort, h.httpPort);
  assert.equal(res.status?.os, process.platform);
  assert.equal(res.status?.inParty, false);
  assert.ok(res.status!.version.length > 0);
});

test('settings: token required, wrong token refused, invalid values refused, nothing changes', async () => {
  const h = await helper();
  const before = await settingsOf(h.grpcPort);
  await rejects(update(h.grpcPort, { deviceName: 'Mallory' }, ['device_name'], new Metadata()), Status.UNAUTHENTICATED, /install token/);
  await rejects(update(h.grpcPort, { deviceName: 'Mallory' }, ['device_name'], auth('x'.repeat(43))), Status.UNAUTHENTICATED, /wrong/);
  await rejects(update(h.grpcPort, { deviceName: '<script>' }, ['device_name'], auth(h.token)), Status.INVALID_ARGUMENT, /device_name/);
  await rejects(update(h.grpcPort, { interfaceName: 'eth0;reboot' }, ['interface_name'], auth(h.token)), Status.INVALID_ARGUMENT, /interface_name/);
  await rejects(update(h.grpcPort, { mtu: 9000 }, ['mtu'], auth(h.token)), Status.INVALID_ARGUMENT, /mtu/);
  await rejects(update(h.grpcPort, { mtu: 1400 }, ['secret_key'], auth(h.token)), Status.INVALID_ARGUMENT, /unknown fields/);
  assert.deepEqual(await settingsOf(h.grpcPort), before);
  const after = await update(h.grpcPort, { deviceName: 'Alice PC', broadcastPorts: [4445, 27015] }, ['device_name', 'broadcast_ports'], auth(h.token));
  assert.equal(after.deviceName, 'Alice PC');
  assert.deepEqual(after.broadcastPorts, [4445, 27015]);
  assert.equal(after.mtu, before.mtu);
});

test('malformed and oversized protobuf get a clear status and change nothing', async () => {
  const h = await helper();
  const before = await settingsOf(h.grpcPort);
  const raw = new Client(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  const send = (payload: Buffer) =>
    call<Buffer | undefined>((cb) => raw.makeUnaryRequest('/lanrage.v1.SettingsService/UpdateSettings', (b: Buffer) => b, (b: Buffer) => b, payload, auth(h.token), cb));
  // Field 1 (settings) claims 200 bytes but only 3 follow.
  await rejects(send(Buffer.from([0x0a, 0xc8, 0x01, 1, 2, 3])), Status.INVALID_ARGUMENT, /not a valid/);
  await rejects(send(Buffer.alloc(2 * 1024 * 1024, 0x41)), Status.RESOURCE_EXHAUSTED, /larger than max|exceed/i);
  raw.close();
  assert.deepEqual(await settingsOf(h.grpcPort), before);
});

test('every method of every service in proto/lanrage/v1 is served: none answers UNIMPLEMENTED', async () => {
  const h = await helper();
  const raw = new Client(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  const services = [DiscordServiceService, GameServiceService, HelperServiceService, MetricsServiceService, NetworkServiceService, PartyServiceService, PeerServiceService, ServerBrowserServiceService, SettingsServiceService, WatchServiceService];
  const unimplemented: string[] = [];
  for (const def of services) {
    for (const m of Object.values(def)) {
      // An empty request without the token: mutating methods refuse it, reads answer; nothing changes.
      const code = await new Promise<number>((resolve) => {
        const md = new Metadata();
        md.set('grpc-timeout', '3S');
        if (m.responseStream) {
          const st = raw.makeServerStreamRequest(m.path, (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), md, { deadline: Date.now() + 1500 });
          st.on('data', () => { st.cancel(); resolve(Status.OK); });
          st.on('error', (e: ServiceError) => resolve(e.code));
        } else {
          raw.makeUnaryRequest(m.path, (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), md, { deadline: Date.now() + 3000 }, (err: ServiceError | null) => resolve(err ? err.code : Status.OK));
        }
      });
      if (code === Status.UNIMPLEMENTED) unimplemented.push(m.path);
    }
  }
  raw.close();
  assert.deepEqual(unimplemented, []);
});

test('NetworkService before any control server: no report yet, RunNetcheck needs the token and then a control server', async () => {
  const h = await helper();
  const c = new NetworkServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  const res = await call<GetNatReportResponse>((cb) => c.getNatReport({}, cb));
  assert.equal(res.report, undefined, 'no report is made up before a test ran');
  // Mutating calls check the token first: no token, no information.
  await rejects(call((cb) => c.runNetcheck({}, cb)), Status.UNAUTHENTICATED, /install token/);
  await rejects(call((cb) => c.runNetcheck({}, auth(h.token), cb)), Status.FAILED_PRECONDITION, /control server/);
  c.close();
});

test('Watch: snapshot first, then live metrics about every second, then rotation', async () => {
  const h = await helper();
  const c = new WatchServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  const got: WatchResponse[] = [];
  const t0 = Date.now();
  await new Promise<void>((resolve, reject) => {
    const s = c.watch({ topics: [], maxDurationSeconds: 10 });
    s.on('data', (m: WatchResponse) => got.push(m));
    s.on('error', reject);
    s.on('end', resolve);
  });
  c.close();
  const elapsed = Date.now() - t0;
  // Ten seconds as asked, not the default (120 s); the upper end allows for a loaded machine.
  assert.ok(elapsed >= 9500 && elapsed < 30_000, `stream lasted ${elapsed} ms`);
  assert.ok(got[0]?.helperStatus, 'first message is the helper status');
  assert.deepEqual(got.map((m) => m.sequence), got.map((_, i) => i + 1));
  const metrics = got.filter((m) => m.metrics);
  // About every second: never faster, and sampled at ~1 s steps by the samples' own clock (a
  // loaded machine may skip a tick, which the median does not mind; a count of 7 did).
  const gaps = metrics.slice(1).map((m, i) => m.metrics!.time!.getTime() - metrics[i]!.metrics!.time!.getTime()).sort((x, y) => x - y);
  const medianGap = gaps[Math.floor(gaps.length / 2)] ?? Infinity;
  assert.ok(metrics.length >= 3 && metrics.length <= 13 && medianGap >= 500 && medianGap <= 1500, `${metrics.length} metrics samples in 10 s, median step ${medianGap} ms`);
  assert.ok(metrics.every((m) => m.metrics!.memoryTotalBytes > 0 && m.metrics!.cpuPercent >= 0 && m.metrics!.cpuPercent <= 100));
  assert.match(got.at(-1)?.rotation?.reason ?? '', /rotation/);

  const only = new WatchServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  await rejects(new Promise((resolve, reject) => {
    const s = only.watch({ topics: [WatchTopic.WATCH_TOPIC_METRICS], maxDurationSeconds: 3 });
    s.on('data', () => {});
    s.on('error', reject);
    s.on('end', resolve);
  }), Status.INVALID_ARGUMENT, /10-3600/);
  only.close();
});

test('settings survive a restart (SIGTERM and kill -9); SIGTERM exits cleanly', async () => {
  const first = await helper();
  await update(first.grpcPort, { deviceName: 'Survivor' }, ['device_name'], auth(first.token));
  assert.equal(await first.stop('SIGTERM'), 0);
  const second = await helper(first.stateDir);
  assert.equal((await settingsOf(second.grpcPort)).deviceName, 'Survivor');
  await update(second.grpcPort, { mtu: 1380 }, ['mtu'], auth(second.token));
  await second.stop('SIGKILL');
  const third = await helper(first.stateDir);
  const s = await settingsOf(third.grpcPort);
  assert.equal(s.deviceName, 'Survivor');
  assert.equal(s.mtu, 1380);
  assert.equal(third.token, first.token, 'the install token is stable');
  await third.stop('SIGTERM');
});

test('metrics history holds downsampled samples', async () => {
  const h = await helper();
  const c = new MetricsServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  const w = new WatchServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  // Live sampling for a step and a bit; the step is written when the next one starts.
  await new Promise<void>((resolve) => {
    const s = w.watch({ topics: [WatchTopic.WATCH_TOPIC_METRICS], maxDurationSeconds: 22 });
    s.on('data', () => {});
    s.on('error', () => resolve());
    s.on('end', resolve);
  });
  const res = await call<GetMetricsHistoryResponse>((cb) => c.getMetricsHistory({ peerDeviceId: '' }, cb));
  assert.equal(res.stepSeconds, 120);
  assert.ok(res.samples.length >= 1, 'at least one stored step');
  assert.ok(res.samples.every((s) => s.memoryTotalBytes > 0));
  await rejects(call((cb) => c.getMetricsHistory({ since: new Date(2000), until: new Date(1000), peerDeviceId: '' }, cb)), Status.INVALID_ARGUMENT, /since/);
  c.close();
  w.close();
});

test('CLI: status and settings over native gRPC; a clear message when the helper is down', async () => {
  const h = await helper();
  const base = ['--grpc', `127.0.0.1:${h.grpcPort}`, '--state-dir', h.stateDir];
  const status = await run(process.execPath, [HELPER_MAIN, 'status', ...base]);
  assert.match(status.stdout, /LANrage helper .* running for/);
  assert.match(status.stdout, new RegExp(`gRPC 127.0.0.1:${h.grpcPort}`));
  const set = await run(process.execPath, [HELPER_MAIN, 'settings', 'set', 'device_name', 'From CLI', ...base]);
  assert.match(set.stdout, /device_name\s+From CLI/);
  assert.equal((await settingsOf(h.grpcPort)).deviceName, 'From CLI');
  const bad = await run(process.execPath, [HELPER_MAIN, 'settings', 'set', 'mtu', '5', ...base]).catch((e: { code: number; stderr: string }) => e);
  assert.equal((bad as { code: number }).code, 1);
  assert.match((bad as { stderr: string }).stderr, /INVALID_ARGUMENT: mtu must be 1280-1420/);
  await h.stop();
  const down = await run(process.execPath, [HELPER_MAIN, 'status', ...base]).catch((e: { code: number; stderr: string }) => e);
  assert.equal((down as { code: number }).code, 1);
  assert.match((down as { stderr: string }).stderr, /not answering .*npm start/);
});
