import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GetSettingsRequest, UpdateSettingsRequest } from '../../helper/gen/lanrage/v1/settings.js';
import { startHelper, removeStateDir, type HelperProcess } from '../lib/helper-process.js';
import { HELPER_MAIN, REPO_ROOT, requireOrSkip } from '../lib/repo.js';
import { canMakeUsers, makeUser, type TempUser } from '../lib/unix-user.js';

// Issue 11 item 1: a second local user cannot change (or read) the root helper through any door —
// /api/session, gRPC-Web, native gRPC (our CLI, Python, buf curl) — even holding a stolen install
// token or forging the forwarding header; the operator (another user) can, without sudo.
// Real users (useradd), real clients run as them (runuser), the real helper running as root.

const run = promisify(execFile);
const BUF = join(REPO_ROOT, 'node_modules', '.bin', 'buf');
const PYTHON = '/usr/bin/python3';
const FORGED = 'local;uid=0;via=grpc;token=1';

let h: HelperProcess | undefined;
let op: TempUser | undefined;
let other: TempUser | undefined;
let scratch = '';

before(async () => {
  if (!canMakeUsers()) return;
  op = makeUser('lrop');
  other = makeUser('lrx');
  // Files the other users' clients read: world-readable, in a directory they can enter.
  scratch = mkdtempSync(join(tmpdir(), 'lanrage-users-'));
  chmodSync(scratch, 0o777);
  h = await startHelper({ pwaDir: null, extraArgs: ['--operator', op.name] });
});
after(async () => {
  await h?.stop('SIGKILL');
  if (h) removeStateDir(h.stateDir);
  op?.remove();
  other?.remove();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function ready(t: { skip(msg: string): void }): boolean {
  return requireOrSkip(canMakeUsers(), 'root with useradd/userdel/runuser (a second local user)', t);
}

function scratchFile(name: string, data: string | Buffer): string {
  const f = join(scratch, name);
  writeFileSync(f, data, { mode: 0o644 });
  return f;
}

const webFrame = (msg: Uint8Array): Buffer => {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, Buffer.from(msg)]);
};
const rename = (name: string): Uint8Array => UpdateSettingsRequest.encode({ settings: { deviceName: name, controlServerUrl: '', interfaceName: '', listenPort: 0, mtu: 0, broadcastEnabled: false, broadcastPorts: [], metricsRetentionHours: 0 }, updateMask: ['device_name'] }).finish();

async function deviceNameAsRoot(): Promise<string> {
  const { stdout } = await run(process.execPath, [HELPER_MAIN, 'settings', '--json', '--grpc', `127.0.0.1:${h!.grpcPort}`]);
  return (JSON.parse(stdout) as { deviceName: string }).deviceName;
}

/** grpc-status of a gRPC-Web call made with curl as `u` (from the headers or the trailer frame). */
async function webCall(u: TempUser, method: string, body: Buffer, headers: string[]): Promise<{ status: number | null; raw: string }> {
  const file = scratchFile(`req-${method.replace(/\W/g, '')}-${Date.now()}`, body);
  const r = await u.exec(['curl', '-s', '-i', '--data-binary', `@${file}`, '-H', 'content-type: application/grpc-web+proto', '-H', 'x-grpc-web: 1', ...headers.flatMap((x) => ['-H', x]), `http://127.0.0.1:${h!.httpPort}/${method}`]);
  const raw = r.stdout.toString('latin1');
  const m = /grpc-status:\s*(\d+)/i.exec(raw);
  return { status: m ? Number(m[1]) : null, raw };
}

async function cli(u: TempUser, args: string[], stateDir = '/nonexistent'): Promise<{ code: number; out: string }> {
  const r = await u.exec([process.execPath, HELPER_MAIN, ...args, '--grpc', `127.0.0.1:${h!.grpcPort}`, '--state-dir', stateDir]);
  return { code: r.code, out: r.stdout.toString() + r.stderr };
}

test('another local user gets no session token from /api/session', async (t) => {
  if (!ready(t)) return;
  const r = await other!.exec(['curl', '-s', '-w', '\n%{http_code}', `http://127.0.0.1:${h!.httpPort}/api/session`]);
  const out = r.stdout.toString();
  assert.match(out, /\n403$/, out);
  assert.equal(out.includes(h!.token), false, 'the token leaked');
  assert.match(out, new RegExp(`uid ${other!.uid} may not use this LANrage helper`));
  // Through localhost and [::1] names too (the helper listens on 127.0.0.1; Host must be ours).
  const named = await other!.exec(['curl', '-s', '-w', '\n%{http_code}', '-H', `Host: localhost:${h!.httpPort}`, `http://127.0.0.1:${h!.httpPort}/api/session`]);
  assert.match(named.stdout.toString(), /\n403$/);
});

test('another local user cannot change the helper over gRPC-Web, even with a stolen token and a forged forwarding header', async (t) => {
  if (!ready(t)) return;
  const before = await deviceNameAsRoot();
  const stolen = await webCall(other!, 'lanrage.v1.SettingsService/UpdateSettings', webFrame(rename('Mallory')), [`authorization: Bearer ${h!.token}`, `x-lanrage-forwarded-for: ${FORGED}`]);
  assert.equal(stolen.status, 7, stolen.raw.slice(0, 500)); // PERMISSION_DENIED
  const read = await webCall(other!, 'lanrage.v1.SettingsService/GetSettings', webFrame(GetSettingsRequest.encode({}).finish()), []);
  assert.equal(read.status, 7, read.raw.slice(0, 500));
  assert.equal(await deviceNameAsRoot(), before);
});

test('another local user cannot change or read the helper over native gRPC: our CLI, Python, buf curl', async (t) => {
  if (!ready(t)) return;
  const before = await deviceNameAsRoot();
  // The CLI without a token (it cannot read root's state directory).
  const status = await cli(other!, ['status']);
  assert.notEqual(status.code, 0);
  assert.match(status.out, /PERMISSION_DENIED/);
  const set = await cli(other!, ['settings', 'set', 'device_name', 'Mallory']);
  assert.match(set.out, /PERMISSION_DENIED/);
  // The CLI with a stolen token: a copy the other user can read.
  const stolenDir = join(scratch, 'stolen');
  scratchFile('stolen-api-token', h!.token);
  await run('mkdir', ['-p', stolenDir]);
  writeFileSync(join(stolenDir, 'api-token'), h!.token + '\n', { mode: 0o644 });
  chmodSync(stolenDir, 0o755);
  const withToken = await cli(other!, ['settings', 'set', 'device_name', 'Mallory'], stolenDir);
  assert.match(withToken.out, /PERMISSION_DENIED/, withToken.out);

  // Python's grpcio (Debian), raw bytes, stolen token and forged forwarding metadata.
  const py = `
import sys, grpc
target, token, forged, req = sys.argv[1], sys.argv[2], sys.argv[3], bytes.fromhex(sys.argv[4])
ch = grpc.insecure_channel(target)
call = ch.unary_unary('/lanrage.v1.SettingsService/UpdateSettings', request_serializer=None, response_deserializer=None)
try:
    call(req, metadata=(('authorization', 'Bearer ' + token), ('x-lanrage-forwarded-for', forged)), timeout=10)
    print('OK')
except grpc.RpcError as e:
    print(e.code().name)
`;
  const p = await other!.exec([PYTHON, '-c', py, `127.0.0.1:${h!.grpcPort}`, h!.token, FORGED, Buffer.from(rename('Mallory')).toString('hex')]);
  assert.equal(p.stdout.toString().trim(), 'PERMISSION_DENIED', p.stderr);

  // buf curl, from our proto files, same stolen token and forged header.
  const cache = join(scratch, 'bufcache');
  const b = await other!.exec([BUF, 'curl', '--schema', join(REPO_ROOT, 'proto'), '--protocol', 'grpc', '--http2-prior-knowledge', '-H', `authorization: Bearer ${h!.token}`, '-H', `x-lanrage-forwarded-for: ${FORGED}`, '--data', JSON.stringify({ settings: { deviceName: 'Mallory' }, updateMask: 'deviceName' }), `http://127.0.0.1:${h!.grpcPort}/lanrage.v1.SettingsService/UpdateSettings`], { env: { XDG_CACHE_HOME: cache, HOME: scratch } });
  assert.notEqual(b.code, 0);
  assert.match(b.stderr, /permission_denied/i, b.stderr);

  assert.equal(await deviceNameAsRoot(), before);
});

test('the operator controls the helper without sudo: CLI, /api/session and gRPC-Web', async (t) => {
  if (!ready(t)) return;
  // The CLI as the operator, no token anywhere it can read.
  const set = await cli(op!, ['settings', 'set', 'device_name', 'Operator One']);
  assert.equal(set.code, 0, set.out);
  assert.equal(await deviceNameAsRoot(), 'Operator One');
  const status = await cli(op!, ['status']);
  assert.equal(status.code, 0, status.out);

  // The operator's browser: a session, then a mutating gRPC-Web call with it.
  const s = await op!.exec(['curl', '-s', `http://127.0.0.1:${h!.httpPort}/api/session`]);
  const token = (JSON.parse(s.stdout.toString()) as { token: string }).token;
  assert.equal(token, h!.token);
  const ok = await webCall(op!, 'lanrage.v1.SettingsService/UpdateSettings', webFrame(rename('Operator Two')), [`authorization: Bearer ${token}`]);
  assert.equal(ok.status, 0, ok.raw.slice(0, 500));
  assert.equal(await deviceNameAsRoot(), 'Operator Two');
  // Still no mutation through the bridge without the session token (any page can post to localhost).
  const csrf = await webCall(op!, 'lanrage.v1.SettingsService/UpdateSettings', webFrame(rename('Evil Page')), []);
  assert.equal(csrf.status, 16, csrf.raw.slice(0, 500)); // UNAUTHENTICATED
  assert.equal(await deviceNameAsRoot(), 'Operator Two');
});

test('/metrics goes through helper/authz: root and the operator without a token, another user not even with it', async (t) => {
  if (!ready(t)) return;
  const url = `http://127.0.0.1:${h!.httpPort}/metrics`;
  const asRoot = await fetch(url);
  assert.equal(asRoot.status, 200);
  assert.match(await asRoot.text(), /lanrage_/);
  const asOp = await op!.exec(['curl', '-s', '-w', '\n%{http_code}', url]);
  assert.match(asOp.stdout.toString(), /lanrage_[\s\S]*\n200$/);
  for (const headers of [[], ['-H', `authorization: Bearer ${h!.token}`]]) {
    const r = await other!.exec(['curl', '-s', '-w', '\n%{http_code}', ...headers, url]);
    const out = r.stdout.toString();
    assert.match(out, /\n403$/, out);
    assert.equal(out.includes('lanrage_'), false);
  }
});

test('root keeps control with the install token; the helper logs who the operator is', async (t) => {
  if (!ready(t)) return;
  const line = h!.logs.find((l) => l.includes('"local access"'));
  assert.ok(line, 'no local access log line');
  assert.match(line, new RegExp(`"operatorUid":${op!.uid}`));
  const { stdout } = await run(process.execPath, [HELPER_MAIN, 'settings', 'set', 'device_name', 'Root Again', '--grpc', `127.0.0.1:${h!.grpcPort}`, '--state-dir', h!.stateDir]);
  assert.match(stdout, /Root Again/);
});
