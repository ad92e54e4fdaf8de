import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile as execFileCb, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { REPO_ROOT, haveCommands, requireOrSkip } from '../lib/repo.js';

// The player's Debian package, installed onto THIS machine under a unique name (so nothing of a
// real install is touched) and purged at the end: install, run the unit's ExecStart (no systemd
// here) in a network namespace of its own (the default ports stay free), upgrade with the state
// kept, a half-installed package removed with its running helper, purge.

const execFile = promisify(execFileCb);
const run = (cmd: string, args: string[], env?: NodeJS.ProcessEnv) => execFile(cmd, args, { cwd: REPO_ROOT, maxBuffer: 16 << 20, ...(env && { env: { ...process.env, ...env } }) });

/** ExecStart and Environment= of a unit file. */
function unitCommand(unit: string): { argv: string[]; env: Record<string, string> } {
  const exec = /^ExecStart=(.+)$/m.exec(unit)?.[1];
  assert.ok(exec, 'the unit has an ExecStart');
  const env: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment=([A-Z_]+)=(\S+)$/gm)) env[m[1]!] = m[2]!;
  return { argv: exec.split(/\s+/), env };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('the .deb: installed, run from its unit, upgraded with state kept, a half-installed package removed with nothing left running, purged', { timeout: 1_500_000 }, async (t) => {
  const root = process.getuid?.() === 0;
  if (!requireOrSkip(root && haveCommands(['dpkg', 'dpkg-deb', 'ip']), 'root, dpkg, dpkg-deb and ip (installs a package)', t)) return;
  if (!requireOrSkip(existsSync(join(REPO_ROOT, 'dist', 'pwa', 'index.html')), 'the build (npm run build)', t)) return;
  const name = `lrdeb${randomBytes(3).toString('hex')}`;
  const out = mkdtempSync(join(tmpdir(), 'lanrage-deb-'));
  const ns = `${name}ns`;
  const started: ChildProcess[] = [];
  const startFromUnit = async (): Promise<ChildProcess> => {
    const { argv, env } = unitCommand(readFileSync(`/lib/systemd/system/${name}.service`, 'utf8'));
    const p = spawn('ip', ['netns', 'exec', ns, ...argv], { env: { ...process.env, ...env, LANRAGE_LOG: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] });
    started.push(p);
    const lines: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "helper ready" within 60 s:\n${lines.join('\n')}`)), 60_000);
      createInterface({ input: p.stderr! }).on('line', (l) => {
        lines.push(l);
        if (l.includes('"helper ready"')) {
          clearTimeout(timer);
          resolve();
        }
      });
      p.once('exit', (code) => reject(new Error(`the helper exited (${code}):\n${lines.join('\n')}`)));
    });
    return p;
  };
  const stop = async (p: ChildProcess): Promise<void> => {
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  };
  try {
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);

    const build = async (version: string): Promise<string> => {
      const { stdout } = await run('bash', ['installers/linux/build-deb.sh', '--out', out, '--name', name, '--version', version], { LANRAGE_SKIP_BUILD: '1' });
      return stdout.trim().split('\n').pop()!;
    };
    const deb1 = await build('0.1.0-1');
    const { stdout: listing } = await run('dpkg-deb', ['-c', deb1]);
    for (const f of [`./opt/${name}/dist/helper/main.js`, `./opt/${name}/dist/pwa/index.html`, `./lib/systemd/system/${name}.service`, `./etc/default/${name}`, `./usr/bin/${name}`, `./opt/${name}/node_modules/better-sqlite3/package.json`]) {
      assert.ok(listing.includes(f), `${f} is not in the package`);
    }
    assert.ok(!listing.includes(`./opt/${name}/node_modules/vite/`), 'build-only packages stay out');

    // Install.
    const { stdout: inst } = await run('dpkg', ['-i', '--force-confold', deb1]);
    assert.match(inst, /systemd is not running here; start the helper with: \/usr\/bin\/node /);
    const unit = readFileSync(`/lib/systemd/system/${name}.service`, 'utf8');
    assert.match(unit, new RegExp(`^ExecStart=/usr/bin/node /opt/${name}/dist/helper/main.js helper$`, 'm'));
    assert.match(unit, new RegExp(`^StateDirectory=${name}$`, 'm'));
    assert.match(readFileSync(`/etc/systemd/system/${name}.service.d/operator.conf`, 'utf8'), /^User=root$/m);
    assert.equal(statSync(`/var/lib/${name}`).mode & 0o777, 0o700);

    // Run what the unit runs; the CLI on the PATH reaches it through the state directory.
    let helper = await startFromUnit();
    const { stdout: status } = await run('ip', ['netns', 'exec', ns, `/usr/bin/${name}`, 'status', '--json']);
    assert.equal(JSON.parse(status).version, '0.1.0');
    const { stdout: page } = await run('ip', ['netns', 'exec', ns, process.execPath, '-e', "fetch('http://localhost:8666/').then(async (r) => console.log(r.status, (await r.text()).includes('<lr-app')))"]);
    assert.equal(page.trim(), '200 true', 'the PWA is served from the package');
    const token = readFileSync(`/var/lib/${name}/api-token`, 'utf8');
    await run('ip', ['netns', 'exec', ns, `/usr/bin/${name}`, 'settings', 'set', 'device_name', 'debtest']);
    await stop(helper);

    // Upgrade: the new version, the same state (token, settings). The same files under a newer
    // version number (repacked: a second build-deb.sh run takes minutes on a loaded machine).
    const tree = join(out, 'tree');
    await run('dpkg-deb', ['-R', deb1, tree]);
    const control = join(tree, 'DEBIAN', 'control');
    writeFileSync(control, readFileSync(control, 'utf8').replace(/^Version: .*$/m, 'Version: 0.1.0-2'));
    const deb2 = join(out, `${name}_0.1.0-2.deb`);
    await run('dpkg-deb', ['--root-owner-group', '--build', '-Zgzip', '-z1', tree, deb2]);
    rmSync(tree, { recursive: true, force: true });
    await run('dpkg', ['-i', '--force-confold', deb2]);
    const { stdout: st } = await run('dpkg-query', ['-W', '-f', '${Version} ${Status}', name]);
    assert.equal(st, '0.1.0-2 install ok installed');
    assert.equal(readFileSync(`/var/lib/${name}/api-token`, 'utf8'), token, 'the upgrade kept the token');
    helper = await startFromUnit();
    const { stdout: settings } = await run('ip', ['netns', 'exec', ns, `/usr/bin/${name}`, 'settings', '--json']);
    assert.equal(JSON.parse(settings).deviceName, 'debtest', 'the upgrade kept the settings');
    await stop(helper);

    // A bad setting leaves the package half-configured; its helper runs anyway (started by hand).
    writeFileSync(`/etc/default/${name}`, 'LANRAGE_OPERATOR=nosuchuser-lanrage\n');
    const bad = await run('dpkg', ['-i', '--force-confold', deb2]).then(() => null, (err: { stderr?: string }) => err);
    assert.ok(bad, 'the install must fail with an unknown operator');
    assert.match(bad.stderr ?? '', /operator user "nosuchuser-lanrage".*does not exist/);
    const { stdout: half } = await run('dpkg-query', ['-W', '-f', '${Status}', name]);
    assert.equal(half, 'install ok half-configured');
    helper = await startFromUnit();
    const pid = helper.pid!;
    const exited = new Promise((r) => helper.once('exit', r));

    // Removed: nothing left running, the program gone, the state kept until purge.
    await run('dpkg', ['-r', name]);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    assert.ok(!alive(pid), `the helper (PID ${pid}) still runs after removal`);
    assert.ok(!existsSync(`/opt/${name}`), 'program files left behind');
    assert.ok(!existsSync(`/usr/bin/${name}`));
    assert.ok(!existsSync(`/lib/systemd/system/${name}.service`));
    assert.ok(!existsSync(`/etc/systemd/system/${name}.service.d`));
    assert.ok(existsSync(`/var/lib/${name}/api-token`), 'remove keeps the state');
    await run('dpkg', ['--purge', name]);
    assert.ok(!existsSync(`/var/lib/${name}`), 'purge removes the state');
    assert.ok(!existsSync(`/etc/default/${name}`), 'purge removes the settings');
    const { stdout: gone } = await run('dpkg-query', ['-W', '-f', '${Status}', name]).catch(() => ({ stdout: 'not-installed' }));
    assert.ok(gone === 'not-installed' || gone.includes('not-installed'), gone);
  } finally {
    for (const p of started) if (p.exitCode === null && p.signalCode === null && p.pid) process.kill(p.pid, 'SIGKILL');
    await run('dpkg', ['--purge', name]).catch(() => undefined);
    rmSync(`/var/lib/${name}`, { recursive: true, force: true });
    await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    rmSync(out, { recursive: true, force: true });
  }
});
