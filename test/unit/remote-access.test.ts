import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort } from '../browser/browser-lib.js';
import { authorize, decodeForwarded, encodeForwarded, type Policy } from '../../helper/authz/authz.js';
import { createLogger } from '../../helper/core/log.js';
import { PAIRING_TTL_MS, PairingCodes } from '../../helper/remote/pairing-codes.js';
import { AttemptLimiter } from '../../helper/remote/rate-limit.js';
import { RemoteAccess } from '../../helper/remote/remote-access.js';
import { hashSecret } from '../../helper/remote/secrets.js';
import { openDatabase } from '../../helper/store/db.js';
import { HELPER_MIGRATIONS } from '../../helper/store/migrations.js';
import { PairedDevicesRepo } from '../../helper/store/paired-devices-repo.js';
import { StateRepo } from '../../helper/store/state-repo.js';

const policy: Policy = { selfUid: 0, operatorUid: 1000, ownersKnowable: true };

test('authz: an unpaired device may only pair; paired devices never manage remote access', () => {
  assert.equal(authorize({ kind: 'pairing' }, 'pair', policy).ok, true);
  for (const need of ['read', 'control', 'admin'] as const) assert.deepEqual(authorize({ kind: 'pairing' }, need, policy).ok, false);
  const view = { kind: 'remote', scope: 'view', deviceId: 'abc' } as const;
  const control = { kind: 'remote', scope: 'control', deviceId: 'abc' } as const;
  assert.equal(authorize(view, 'read', policy).ok, true);
  assert.equal(authorize(view, 'control', policy).ok, false);
  assert.equal(authorize(control, 'control', policy).ok, true);
  const admin = authorize(control, 'admin', policy);
  assert.equal(admin.ok, false);
  assert.match(admin.ok ? '' : admin.message, /on the desktop/);
  // Locally, admin is control (the operator with the token, root) and other users get nothing.
  assert.equal(authorize({ kind: 'local', uid: 1000, via: 'web', tokenOk: true }, 'admin', policy).ok, true);
  assert.equal(authorize({ kind: 'local', uid: 1000, via: 'web', tokenOk: false }, 'admin', policy).ok, false);
  assert.equal(authorize({ kind: 'local', uid: 1001, via: 'grpc', tokenOk: true }, 'pair', policy).ok, false);
  assert.deepEqual(decodeForwarded(encodeForwarded({ kind: 'pairing' })), { kind: 'pairing' });
});

test('pairing codes: one-time, expire after 5 minutes, held only as hashes', () => {
  let now = 1_000_000;
  const codes = new PairingCodes(() => now);
  const a = codes.create('view');
  assert.match(a.code, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(codes.consume(a.code), 'view');
  assert.equal(codes.consume(a.code), null, 'replayed');
  const b = codes.create('control');
  now += PAIRING_TTL_MS;
  assert.equal(codes.consume(b.code), null, 'expired');
  assert.equal(codes.consume('x'.repeat(43)), null);
  assert.equal(codes.consume(''), null);
  const c = codes.create('control');
  assert.equal(JSON.stringify([...(codes as unknown as { pending: Map<string, unknown> }).pending.keys()]).includes(c.code), false);
  assert.ok((codes as unknown as { pending: Map<string, unknown> }).pending.has(hashSecret(c.code)));
});

test('attempt limiter: per source and in total, refilling with time', () => {
  let now = 0;
  const l = new AttemptLimiter({ burst: 2, perMinute: 2 }, { burst: 3, perMinute: 3 }, () => now);
  assert.deepEqual([l.take('a'), l.take('a'), l.take('a')], [true, true, false]);
  assert.deepEqual([l.take('b'), l.take('c')], [true, false], 'the global bucket is empty');
  now += 30_000;
  assert.equal(l.take('c'), true);
  now += 60_000;
  assert.equal(l.take('a'), true);
});

test('remote access: pairing stores only the token hash, revoke forgets it, bad input changes nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lanrage-remote-'));
  const db = openDatabase(join(dir, 'helper.db'), HELPER_MIGRATIONS);
  try {
    const devices = new PairedDevicesRepo(db);
    const ra = new RemoteAccess({ stateDir: dir, store: new StateRepo(db), devices, grpcTarget: () => '127.0.0.1:1', staticDir: null, policy, log: createLogger({ level: 'error' }), localAddresses: () => ['127.0.0.1'] });
    assert.equal(ra.view().enabled, false, 'off by default');
    assert.throws(() => ra.createPairing('view'), /remote access is off/);
    await assert.rejects(ra.set(true, '192.0.2.1', 0), /not an address of this machine/);
    await assert.rejects(ra.set(true, '127.0.0.1', 80), /port must be/);
    await assert.rejects(ra.set(true, 'evil; rm -rf', 0), /IPv4 or IPv6/);
    const port = await freePort();
    const on = await ra.set(true, '127.0.0.1', port);
    assert.equal(on.url, `https://127.0.0.1:${port}`);
    assert.match(on.fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const { link } = ra.createPairing('control');
    const code = link.split('#pair=')[1]!;
    assert.throws(() => ra.pair(code, '<b>x</b>'), /device_name/);
    const { token, device } = ra.pair(code, 'Pixel 8');
    assert.equal(device.scope, 'control');
    assert.throws(() => ra.pair(code, 'Again'), /already used/);
    const row = db.prepare<[], { token_hash: string }>('SELECT token_hash FROM paired_devices').get();
    assert.equal(row?.token_hash, hashSecret(token));
    assert.equal(ra.deviceFor(token)?.deviceId, device.deviceId);
    assert.equal(ra.deviceFor(token.slice(1) + 'A'), undefined);
    ra.revoke(device.deviceId);
    assert.equal(ra.deviceFor(token), undefined);
    assert.throws(() => ra.revoke(device.deviceId), /no paired device/);
    await ra.close();
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
