import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startHelper, removeStateDir, type HelperProcess } from '../lib/helper-process.js';
import { REPO_ROOT, requireOrSkip } from '../lib/repo.js';

// Debian's grpcio lives under /usr/bin/python3; a pyenv python3 on PATH cannot see it.
const PYTHON = '/usr/bin/python3';
const run = promisify(execFile);

function hasGrpcTools(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import grpc, grpc_tools'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

let h: HelperProcess | undefined;
const gen = mkdtempSync(join(tmpdir(), 'lanrage-py-'));
after(async () => {
  await h?.stop('SIGKILL');
  if (h) removeStateDir(h.stateDir);
  rmSync(gen, { recursive: true, force: true });
});

test('a Python client generated from proto/ calls Settings and reads the Watch stream', async (t) => {
  if (!requireOrSkip(hasGrpcTools(), 'python3-grpcio and python3-grpc-tools (Debian)', t)) return;
  const protoDir = join(REPO_ROOT, 'proto');
  const files = ['settings', 'watch', 'helper', 'metrics', 'party', 'peer', 'games', 'servers', 'network'].map((f) => `lanrage/v1/${f}.proto`);
  await run(PYTHON, ['-m', 'grpc_tools.protoc', `-I${protoDir}`, `--python_out=${gen}`, `--grpc_python_out=${gen}`, ...files]);
  h = await startHelper({ pwaDir: null });
  const { stdout } = await run(PYTHON, [join(REPO_ROOT, 'test', 'python', 'client.py'), gen, `127.0.0.1:${h.grpcPort}`, h.token, 'Py Player'], { timeout: 90_000 });
  const seen = JSON.parse(stdout) as { before: string; without_token: string; after: string; watch: string[] };
  assert.notEqual(seen.before, 'Py Player');
  assert.equal(seen.without_token, 'UNAUTHENTICATED');
  assert.equal(seen.after, 'Py Player');
  assert.equal(seen.watch[0], 'helper_status');
  assert.ok(seen.watch.filter((k) => k === 'metrics').length >= 3);
});
