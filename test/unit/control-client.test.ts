import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatMapping, Presence, type Member } from '../../helper/gen/lanrage/control/v1/control.js';
import { backoffDelay } from '../../helper/controlclient/backoff.js';
import { deviceIdOf, identityPublicKeyRaw, loadOrCreateIdentity } from '../../helper/controlclient/identity.js';
import { memberFromProto, natFromProto, partyFromProto, withMember } from '../../helper/controlclient/state.js';
import { deviceIdFromIdentityKey } from '../../helper/control/ids.js';

test('identity: created once with mode 0600, loaded again, refused when not an Ed25519 key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lanrage-id-'));
  try {
    const file = join(dir, 'identity.pem');
    const k = loadOrCreateIdentity(file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(k.asymmetricKeyType, 'ed25519');
    const again = loadOrCreateIdentity(file);
    assert.ok(identityPublicKeyRaw(again).equals(identityPublicKeyRaw(k)));
    assert.equal(deviceIdOf(k), deviceIdFromIdentityKey(identityPublicKeyRaw(k)));
    assert.equal(identityPublicKeyRaw(k).length, 32);
    const rsa = join(dir, 'rsa.pem');
    writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o644 });
    assert.throws(() => loadOrCreateIdentity(rsa), /not Ed25519/);
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'hello');
    assert.throws(() => loadOrCreateIdentity(junk), /not a PEM private key/);
    assert.equal(readFileSync(junk, 'utf8'), 'hello', 'a broken identity is never overwritten');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('backoff grows exponentially with jitter up to the maximum', () => {
  const o = { initialMs: 100, maxMs: 1000 };
  assert.equal(backoffDelay(0, o, () => 1), 100);
  assert.equal(backoffDelay(0, o, () => 0), 50);
  assert.equal(backoffDelay(3, o, () => 1), 800);
  assert.equal(backoffDelay(10, o, () => 1), 1000);
  assert.equal(backoffDelay(1000, o, () => 0), 500);
});

const member = (over: Partial<Member> = {}): Member => ({
  deviceId: 'a'.repeat(24),
  name: 'Bob',
  virtualIp: '10.66.0.2',
  wireguardPublicKey: randomBytes(32),
  discoPublicKey: randomBytes(32),
  candidates: ['203.0.113.5:41641'],
  nat: { mapping: NatMapping.NAT_MAPPING_ENDPOINT_DEPENDENT, portMapped: false, portDelta: 1 },
  relayed: [],
  presence: Presence.PRESENCE_AWAY,
  isHost: false,
  joinedAt: new Date(1000),
  ...over,
});

test('what the control server sends is checked before the helper uses it', () => {
  const m = memberFromProto(member(), '10.66.0.0/16', 'b'.repeat(24));
  assert.equal(m.wgPublicKey.length, 44);
  assert.equal(m.presence, 'away');
  assert.deepEqual(m.nat, { mapping: 'endpoint-dependent', portMapped: false, portDelta: 1 });
  assert.equal(m.isSelf, false);
  for (const [bad, why] of [
    [{ wireguardPublicKey: Buffer.alloc(31, 1) }, /32-byte key/],
    [{ discoPublicKey: Buffer.alloc(32) }, /32-byte key/],
    [{ virtualIp: '10.66.255.255' }, /not a host address/],
    [{ virtualIp: '192.168.1.1' }, /not a host address/],
    [{ virtualIp: '10.66.0.2; rm -rf /' }, /not a host address/],
    [{ deviceId: '../../etc' }, /bad device id/],
    [{ name: 'x\n' }, /bad name/],
  ] as const) {
    assert.throws(() => memberFromProto(member(bad), '10.66.0.0/16', 'x'), why);
  }
  // Bad candidates and NAT hints are dropped, not fatal.
  const cleaned = memberFromProto(member({ candidates: ['224.0.0.1:1', 'evil', '198.51.100.1:1'], nat: { mapping: 42 as NatMapping, portMapped: true, portDelta: 99999 } }), '10.66.0.0/16', 'x');
  assert.deepEqual(cleaned.candidates, ['198.51.100.1:1']);
  assert.deepEqual(natFromProto({ mapping: 42 as NatMapping, portMapped: true, portDelta: 99999 }), { mapping: 'unknown', portMapped: true, portDelta: 0 });

  // A party with a broken member and a duplicate address keeps the good ones.
  const bad: string[] = [];
  const p = partyFromProto(
    {
      id: 'abcdefghijklmnop',
      name: 'P',
      hostDeviceId: 'a'.repeat(24),
      networkCidr: '10.66.0.0/16',
      members: [member({ isHost: true }), member({ deviceId: 'c'.repeat(24) }), member({ deviceId: 'd'.repeat(24), virtualIp: '10.66.0.0' })],
      createdAt: new Date(0),
    },
    'a'.repeat(24),
    (why) => bad.push(why),
  );
  assert.deepEqual(p.members.map((x) => [x.deviceId[0], x.isSelf]), [['a', true]]);
  assert.equal(bad.length, 2);
  assert.throws(() => partyFromProto({ id: 'nope', name: 'P', hostDeviceId: '', networkCidr: '10.66.0.0/16', members: [] }, 'x', () => {}), /bad party id/);

  // A member that becomes host takes the flag from the previous one.
  const next = withMember({ ...p, members: [...p.members] }, memberFromProto(member({ deviceId: 'e'.repeat(24), virtualIp: '10.66.0.9', isHost: true, joinedAt: new Date(500) }), '10.66.0.0/16', 'x'));
  assert.deepEqual(next.members.map((x) => [x.deviceId[0], x.isHost]), [['e', true], ['a', false]]);
  assert.equal(next.hostDeviceId, 'e'.repeat(24));
});
