import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startHelper, removeStateDir, type HelperProcess } from '../lib/helper-process.js';
import { REPO_ROOT } from '../lib/repo.js';

// gRPC server reflection: a client with none of our files (buf curl --reflect) lists the local
// API's services. Calling methods through reflection is not claimed: buf curl cannot resolve the
// well-known types that @grpc/reflection serves (shared/STACK-NOTES.md), so README says to pass
// --schema proto for calls.
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

function declaredServices(): string[] {
  const dir = join(REPO_ROOT, 'proto', 'lanrage', 'v1');
  const out: string[] = [];
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.proto'))) {
    for (const m of readFileSync(join(dir, f), 'utf8').matchAll(/^service\s+(\w+)/gm)) out.push(`lanrage.v1.${m[1]!}`);
  }
  return out.sort();
}

test('buf curl --reflect lists every service of the local API without our proto files', async () => {
  // cwd outside the repository so that buf cannot find proto/ or buf.yaml by itself.
  const { stdout } = await run(BUF, ['curl', '--reflect', '--protocol', 'grpc', '--http2-prior-knowledge', '--list-services', `http://127.0.0.1:${h.grpcPort}`], { cwd: '/', timeout: 60_000 });
  const listed = stdout.trim().split('\n').filter((l) => l.startsWith('lanrage.'));
  const expected = declaredServices();
  assert.ok(expected.length >= 10, `expected our services in proto/, found ${expected.join(', ')}`);
  assert.deepEqual(listed.sort(), expected);
});
