// Issue 11: `lanrage remote` against a real helper. The listener needs an address of this machine
// that is not loopback: a veth pair to a namespace of our own (test/lab/phone-net) gives one,
// so nothing binds a real LAN address, and the namespace goes away after the test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { connect } from 'node:tls';
import { startHelper, removeStateDir, type HelperProcess } from '../lib/helper-process.js';
import { HELPER_MAIN } from '../lib/repo.js';
import { labAvailable } from '../lab/lab.js';
import { createPhoneNet, type PhoneNet } from '../lab/phone-net.js';

let h: HelperProcess | undefined;
let net: PhoneNet | undefined;
let skipWhy: string | undefined;

before(async () => {
  const lab = await labAvailable();
  if (!lab.ok) {
    skipWhy = `network namespaces (${lab.why ?? '?'})`;
    console.warn(`SKIPPING remote-cli: needs ${skipWhy}`);
    return;
  }
  net = await createPhoneNet();
  h = await startHelper({ pwaDir: null });
});
after(async () => {
  await h?.stop();
  if (h) removeStateDir(h.stateDir);
  await net?.destroy();
});

const lanrage = (command: string, ...args: string[]): { code: number | null; out: string; err: string } => {
  const r = spawnSync(process.execPath, [HELPER_MAIN, command, ...args, '--grpc', `127.0.0.1:${h!.grpcPort}`, '--state-dir', h!.stateDir], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const cli = (...args: string[]): ReturnType<typeof lanrage> => lanrage('remote', ...args);
const ok = (...args: string[]): string => {
  const r = cli(...args);
  assert.equal(r.code, 0, `lanrage remote ${args.join(' ')}: ${r.err}`);
  return r.out;
};

/** The SHA-256 fingerprint of the certificate the listener actually serves, "AB:CD:…". */
const servedFingerprint = (host: string, port: number): Promise<string> =>
  new Promise((resolve, reject) => {
    const s = connect({ host, port, rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.end();
    });
    s.once('error', reject);
  });

test('lanrage remote: on (LAN address only), pair prints a one-time link, devices, revoke, off', async (t) => {
  if (skipWhy) return t.skip(`needs ${skipWhy}`);
  assert.match(ok(), /phone access +off/);

  const loop = cli('on', '--address', '127.0.0.1');
  assert.equal(loop.code, 1);
  assert.match(loop.err, /INVALID_ARGUMENT: listen_address 127\.0\.0\.1 is not an address of this machine/);
  const early = cli('pair');
  assert.match(early.err, /FAILED_PRECONDITION: remote access is off/);
  assert.match(cli('on', '--address', net!.desktopIp, '--port', '80').err, /INVALID_ARGUMENT: port must be/);
  assert.match(ok(), /phone access +off/, 'a refused `on` left the listener on');

  const port = randomInt(20_000, 60_000);
  const on = ok('on', '--address', net!.desktopIp, '--port', String(port));
  const url = `https://${net!.desktopIp}:${port}`;
  assert.match(on, new RegExp(`url +${url.replace(/\./g, '\\.')}`));
  const fp = /SHA-256 ([0-9A-F:]+)/.exec(on)?.[1];
  assert.ok(fp && fp.length === 95, on);
  assert.equal(await servedFingerprint(net!.desktopIp, port), fp, 'the fingerprint printed is not the served certificate’s');
  const status = JSON.parse(ok('--json')) as { enabled: boolean; url: string; certificateSha256: string };
  assert.deepEqual([status.enabled, status.url, status.certificateSha256], [true, url, fp]);

  const pair = ok('pair', '--scope', 'control');
  assert.match(pair, new RegExp(`^  ${url.replace(/\./g, '\\.')}/#pair=[A-Za-z0-9_-]{43}$`, 'm'));
  assert.ok(pair.includes(fp), 'pair does not show the fingerprint to compare');
  const pj = JSON.parse(ok('pair', '--json')) as { link: string; expires: string };
  assert.ok(pj.link.startsWith(`${url}/#pair=`));
  const left = Date.parse(pj.expires) - Date.now();
  assert.ok(left > 60_000 && left <= 5 * 60_000 + 5_000, `expires in ${left} ms`);
  assert.match(cli('pair', '--scope', 'admin').err, /--scope takes view/);

  assert.match(ok('devices'), /no paired devices/);
  assert.deepEqual(JSON.parse(ok('devices', '--json')), { devices: [] });
  assert.match(cli('revoke', 'nosuchdevice').err, /NOT_FOUND: no paired device nosuchdevice/);
  assert.match(cli('revoke', 'a;b').err, /INVALID_ARGUMENT/);
  assert.match(cli('frobnicate').err, /usage: lanrage remote/);

  assert.match(ok('off'), /phone access +off/);
  await assert.rejects(servedFingerprint(net!.desktopIp, port), /ECONNREFUSED/);
});

// `lanrage servers` shares the service-command plumbing (helper/cli/call.ts serviceCommand) with
// `lanrage remote`: a read without the token, writes with it.
test('lanrage servers: lists the party\'s servers (none outside a party), favourites take a listed server\'s id (with the install token)', async (t) => {
  if (skipWhy) return t.skip(`needs ${skipWhy}`);
  const list = lanrage('servers', '--json');
  assert.equal(list.code, 0, list.err);
  assert.deepEqual(JSON.parse(list.out), { servers: [] });
  assert.match(lanrage('servers').out, /no game servers in the party right now/);
  const fav = lanrage('servers', 'fav');
  assert.equal(fav.code, 1);
  assert.match(fav.err, /usage: lanrage servers fav SERVER_ID/);
  assert.match(lanrage('servers', 'fav', 'nosuchserver').err, /INVALID_ARGUMENT: server_id must be a server id from ListServers/);
  const id = `${'a'.repeat(24)}/27960`;
  assert.match(lanrage('servers', 'fav', id).err, /NOT_FOUND: no server .* in the party right now/);
  const unfav = lanrage('servers', 'unfav', id);
  assert.equal(unfav.code, 0, unfav.err);
  assert.match(unfav.out, /removed from favourites/);
});
