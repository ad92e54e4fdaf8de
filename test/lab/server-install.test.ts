import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile as execFileCb, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { labAvailable, withLab } from './lab.js';
import { PartyLab, waitParty } from './party-lab.js';
import { REPO_ROOT, haveCommands, requireOrSkip } from '../lib/repo.js';

// installers/server/install.sh as an operator runs it, on the lab's "public server" namespace:
// install (staged under a temp root, a unique service user), start both services from their
// units' ExecStart as the service user (no systemd here), then two helpers behind random
// symmetric NATs (no direct path between them) play through it, relayed by its coturn.
const execFile = promisify(execFileCb);
const RELAYED = 3;

function waitLine(p: ChildProcess, re: RegExp, what: string, timeoutMs = 30_000): Promise<void> {
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: nothing matching ${re} within ${timeoutMs} ms:\n${lines.slice(-30).join('\n')}`)), timeoutMs);
    const on = (l: string): void => {
      lines.push(l);
      if (re.test(l)) {
        clearTimeout(t);
        resolve();
      }
    };
    createInterface({ input: p.stdout! }).on('line', on);
    createInterface({ input: p.stderr! }).on('line', on);
    p.once('exit', (code) => reject(new Error(`${what} exited (${code}):\n${lines.slice(-30).join('\n')}`)));
  });
}

test('installers/server: one command installs the control server and coturn; helpers at two symmetric NATs use it, relayed', { timeout: 300_000 }, async (t) => {
  const avail = await labAvailable();
  if (!requireOrSkip(avail.ok, `network lab (${avail.why ?? ''})`, t)) return;
  if (!requireOrSkip(haveCommands(['turnserver', 'openssl', 'setpriv', 'useradd', 'userdel']), 'coturn, openssl, setpriv, useradd', t)) return;
  const user = `lrsrv${randomBytes(3).toString('hex')}`;
  const root = mkdtempSync(join(tmpdir(), 'lanrage-server-'));
  chmodSync(root, 0o755);
  const runDir = `/run/${user}-turn`;
  const turnState = `/var/lib/${user}-turn`;
  try {
    await withLab({ sites: [{ name: 'a', kind: 'symmetric' }, { name: 'b', kind: 'symmetric' }] }, async (lab) => {
      const pl = new PartyLab(lab);
      try {
        const publicIp = lab.control.ip;
        const { stdout } = await execFile('bash', ['installers/server/install.sh', '--public-ip', publicIp, '--root', root, '--user', user], {
          cwd: REPO_ROOT,
          env: { ...process.env, LANRAGE_SKIP_BUILD: '1' },
          maxBuffer: 16 << 20,
        });
        // What the operator is told: the ports to open and the URL for players.
        for (const line of ['8670/tcp', '8671-8672/udp', '3478/udp and 3478/tcp', '49152-65535/udp']) assert.ok(stdout.includes(line), `the output does not list ${line}:\n${stdout}`);
        const url = /^CONTROL_URL=(\S+)$/m.exec(stdout)?.[1];
        assert.equal(url, `http://${publicIp}:8670`);

        // The secret: generated, private to root and the service user, the same on both sides.
        const secretFile = join(root, 'etc/lanrage/turn-secret');
        const secret = readFileSync(secretFile, 'utf8').trim();
        assert.ok(secret.length >= 40, 'a long random secret');
        assert.equal(statSync(secretFile).mode & 0o777, 0o640);
        const turnConf = readFileSync(join(root, 'etc/lanrage/turnserver.conf'), 'utf8');
        assert.match(turnConf, new RegExp(`^static-auth-secret=${secret.replace(/[+/=]/g, '\\$&')}$`, 'm'));
        assert.match(turnConf, new RegExp(`^allowed-peer-ip=${publicIp.replace(/\./g, '\\.')}$`, 'm'));
        assert.ok(!turnConf.includes('CHANGE-ME'));
        assert.match(turnConf, new RegExp(`^listening-ip=${publicIp.replace(/\./g, '\\.')}$`, 'm'));
        const { stdout: id } = await execFile('id', ['-u', user]);
        assert.ok(Number(id) > 0, 'a service user, not root');

        // Both units, started as systemd would: as the service user, with the runtime directory.
        const unitArgv = (unit: string): string[] => {
          const text = readFileSync(join(root, 'etc/systemd/system', unit), 'utf8');
          assert.match(text, new RegExp(`^User=${user}$`, 'm'));
          const exec = /^ExecStart=(.+)$/m.exec(text)![1]!;
          // Paths under the staging root, as the real root would have them.
          return exec.split(/\s+/).map((a) => a.replace(/^(\/opt\/lanrage|\/etc\/lanrage|\/var\/lib\/lanrage-control)/, `${root}$1`));
        };
        for (const d of [runDir, turnState]) {
          mkdirSync(d, { recursive: true, mode: 0o755 });
          chownSync(d, Number(id), Number(id));
        }
        const asUser = (argv: string[]) => lab.spawn(lab.control.ns, 'setpriv', ['--reuid', user, '--regid', user, '--init-groups', '--', ...argv], { env: { ...process.env, LANRAGE_LOG: 'info' } });
        const turn = asUser(unitArgv('lanrage-turn.service'));
        // coturn logs its listeners only to a log file; on stdout its servers being created is the last word.
        await waitLine(turn, /Total General servers: \d+/, 'coturn');
        await new Promise((r) => setTimeout(r, 1000));
        const control = asUser(unitArgv('lanrage-control.service'));
        await waitLine(control, /"control ready"/, 'lanrage control');

        // Two players behind random symmetric NATs, with the URL the installer printed.
        const [a, b] = [lab.site('a'), lab.site('b')];
        await pl.startHelper(a, { controlUrl: url });
        await pl.startHelper(b, { controlUrl: url });
        const created = await pl.cli<{ party: { inviteLink: string } }>(a, ['create', 'public']);
        assert.match(decodeURIComponent(created.party.inviteLink), new RegExp(`c=${url!.replace(/[./:]/g, '\\$&')}`));
        await pl.cli(b, ['join', created.party.inviteLink]);
        const fromB = await waitParty(pl, b, (p) => p.peers.length === 1 && p.peers[0]!.path === RELAYED, 60_000);
        const vipA = fromB.peers[0]!.virtualIp;
        let ok = false;
        for (let i = 0; i < 20 && !ok; i++) ok = await lab.exec(b.host.ns, 'ping', ['-c', '1', '-W', '1', vipA], { timeoutMs: 5000 }).then(() => true, () => false);
        assert.ok(ok, 'no ping through the relay');
        const { stdout: ping } = await lab.exec(b.host.ns, 'ping', ['-c', '5', '-i', '0.2', '-W', '2', vipA], { timeoutMs: 20_000 });
        assert.match(ping, / 0% packet loss/);
        t.diagnostic(`b → a: ${JSON.stringify(fromB.peers[0]!.pathReason)}`);
        for (const p of [control, turn]) if (p.pid && p.exitCode === null) process.kill(p.pid, 'SIGKILL');
      } finally {
        pl.cleanup();
      }
    });
  } finally {
    rmSync(runDir, { recursive: true, force: true });
    rmSync(turnState, { recursive: true, force: true });
    await execFile('userdel', [user]).catch(() => undefined);
    await execFile('groupdel', [user]).catch(() => undefined);
    if (existsSync(root)) rmSync(root, { recursive: true, force: true });
  }
});
