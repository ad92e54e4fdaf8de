import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile as execFileCb, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { REPO_ROOT, haveCommands, requireOrSkip } from '../lib/repo.js';

// The README's first command on a fresh clone of this commit: `npm start` (scripts/start.sh)
// installs the npm packages from the committed lock with the real `npm ci`, builds, and starts
// the helper; a second start finds node_modules in sync and installs nothing. Slow (npm ci
// compiles better-sqlite3 when no prebuilt binary can be fetched): the figures are printed.
const execFile = promisify(execFileCb);

test('npm start on a fresh clone: npm ci from the committed lock, build, helper up; the next start installs nothing', { timeout: 1_800_000 }, async (t) => {
  if (!requireOrSkip(haveCommands(['git', 'npm']), 'git and npm', t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'lanrage-clone-'));
  const clone = join(dir, 'lanrage');
  let helperPid = 0;
  try {
    const { stdout: head } = await execFile('git', ['-C', REPO_ROOT, 'rev-parse', 'HEAD']);
    await execFile('git', ['clone', '--quiet', '--no-checkout', REPO_ROOT, clone]);
    await execFile('git', ['-C', clone, 'checkout', '--quiet', head.trim()]);
    assert.ok(!existsSync(join(clone, 'node_modules')), 'a fresh clone has no node_modules');

    const t0 = Date.now();
    const prep = await execFile('bash', ['scripts/start.sh', '--prepare'], { cwd: clone, maxBuffer: 64 << 20 });
    const msPrepare = Date.now() - t0;
    assert.match(prep.stdout, /== npm ci/, 'a fresh clone needs npm ci');
    assert.ok(existsSync(join(clone, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node')), 'better-sqlite3 built');
    assert.ok(existsSync(join(clone, 'dist/helper/main.js')) && existsSync(join(clone, 'dist/pwa/index.html')), 'helper and PWA built');
    await execFile(process.execPath, ['scripts/lock-check.mjs'], { cwd: clone });
    if (process.getuid?.() === 0) assert.doesNotMatch(prep.stdout, /MISSING Debian packages/);

    // Second start: nothing to install; the helper comes up (free ports: other helpers may run here).
    const t1 = Date.now();
    const p = spawn('bash', ['scripts/start.sh', '--state-dir', join(dir, 'state'), '--http-port', '0', '--grpc-port', '0', '--control-port', '0'], {
      cwd: clone,
      env: { ...process.env, LANRAGE_SKIP_BUILD: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    helperPid = p.pid ?? 0;
    const out: string[] = [];
    createInterface({ input: p.stdout! }).on('line', (l) => out.push(l));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "helper ready" within 60 s:\n${out.join('\n')}`)), 60_000);
      createInterface({ input: p.stderr! }).on('line', (l) => {
        out.push(l);
        if (l.includes('"helper ready"')) {
          clearTimeout(timer);
          resolve();
        }
      });
      p.once('exit', (code) => reject(new Error(`npm start exited (${code}):\n${out.join('\n')}`)));
    });
    const msStart = Date.now() - t1;
    assert.ok(!out.some((l) => l.includes('== npm ci')), 'node_modules was in sync: no second npm ci');
    assert.ok(out.some((l) => l.includes('starting the helper')));
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
    helperPid = 0;
    t.diagnostic(`fresh clone: npm ci + build ${(msPrepare / 1000).toFixed(0)} s; second start to "helper ready" ${(msStart / 1000).toFixed(1)} s`);
  } finally {
    if (helperPid) {
      try {
        process.kill(helperPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
