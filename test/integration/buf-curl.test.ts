import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startHelper, removeStateDir, type HelperProcess } from '../lib/helper-process.js';
import { REPO_ROOT } from '../lib/repo.js';

// buf curl is a client nobody on the team wrote: it reads our proto files (the schema a
// third-party developer has) and speaks both native gRPC and gRPC-Web.
const BUF = join(REPO_ROOT, 'node_modules', '.bin', 'buf');
const run = promisify(execFile);
let h: HelperProcess;

before(async () => {
  h = await startHelper({ pwaDir: null });
});
after(async () => {
  await h.stop('SIGKILL');
  removeStateDir(h.stateDir);
});

async function curl(protocol: 'grpc' | 'grpcweb', url: string, data: object, headers: string[] = []): Promise<{ out: unknown; stderr: string; code: number }> {
  const args = ['curl', '--schema', join(REPO_ROOT, 'proto'), '--protocol', protocol, '--data', JSON.stringify(data), ...headers.flatMap((x) => ['-H', x])];
  if (protocol === 'grpc') args.push('--http2-prior-knowledge');
  args.push(url);
  try {
    const { stdout, stderr } = await run(BUF, args, { cwd: REPO_ROOT, timeout: 30_000 });
    // Streams print one JSON document per message.
    const docs = stdout.trim() === '' ? [] : stdout.trim().split(/\n(?=\{)/).map((d) => JSON.parse(d) as unknown);
    return { out: docs.length === 1 ? docs[0] : docs, stderr, code: 0 };
  } catch (e) {
    const err = e as { code: number; stderr: string };
    return { out: null, stderr: err.stderr, code: err.code };
  }
}

test('buf curl over native gRPC: status, settings with token, refused without', async () => {
  const base = `http://127.0.0.1:${h.grpcPort}/lanrage.v1.`;
  const st = await curl('grpc', base + 'HelperService/GetStatus', {});
  assert.equal(st.code, 0, st.stderr);
  assert.equal((st.out as { status: { grpcPort: number } }).status.grpcPort, h.grpcPort);
  const denied = await curl('grpc', base + 'SettingsService/UpdateSettings', { settings: { deviceName: 'Curl' }, updateMask: 'deviceName' });
  assert.notEqual(denied.code, 0);
  assert.match(denied.stderr, /unauthenticated/i);
  const ok = await curl('grpc', base + 'SettingsService/UpdateSettings', { settings: { deviceName: 'Curl' }, updateMask: 'deviceName' }, [`Authorization: Bearer ${h.token}`]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal((ok.out as { settings: { deviceName: string } }).settings.deviceName, 'Curl');
});

test('buf curl over gRPC-Web through the helper HTTP port: unary and a server stream', async () => {
  const base = `http://localhost:${h.httpPort}/lanrage.v1.`;
  const st = await curl('grpcweb', base + 'SettingsService/GetSettings', {});
  assert.equal(st.code, 0, st.stderr);
  assert.equal((st.out as { settings: { deviceName: string } }).settings.deviceName, 'Curl');
  const stream = await curl('grpcweb', base + 'WatchService/Watch', { topics: ['WATCH_TOPIC_HELPER_STATUS'], maxDurationSeconds: 10 });
  assert.equal(stream.code, 0, stream.stderr);
  const msgs = stream.out as Array<Record<string, unknown>>;
  assert.ok(Array.isArray(msgs) && msgs.length === 2, `got ${JSON.stringify(msgs).slice(0, 300)}`);
  assert.ok(msgs[0]!.helperStatus);
  assert.ok(msgs[1]!.rotation);
  const bad = await curl('grpcweb', base + 'WatchService/Watch', { maxDurationSeconds: 1 });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /invalid_argument/i);
});
