import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { ApiError } from '../../helper/core/api-error.js';
import { createLogger } from '../../helper/core/log.js';
import { MemberLeftReason, Presence, type SessionResponse } from '../../helper/gen/lanrage/control/v1/control.js';
import { ManualClock } from '../../helper/core/clock.js';
import { ControlPlane } from '../../helper/control/control-plane.js';
import { registrationMessage } from '../../helper/control/registration.js';
import { SqliteControlStore } from '../../helper/control/sqlite-store.js';
import { identityPublicKeyRaw } from '../../helper/controlclient/identity.js';

const log = createLogger({ test: 'control-plane' }, () => {});

interface World {
  plane: ControlPlane;
  clock: ManualClock;
  store: SqliteControlStore;
  file: string;
}

function world(file = ':memory:', clock = new ManualClock()): World {
  const store = SqliteControlStore.open(file);
  return { plane: new ControlPlane({ store, log, clock, awayAfterMs: 15_000, dropAfterMs: 120_000 }), clock, store, file };
}

function withFile(fn: (file: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'lanrage-control-'));
  try {
    fn(join(dir, 'control.db'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Dev {
  key: KeyObject;
  wg: Buffer;
  disco: Buffer;
  name: string;
  id: string;
  events: SessionResponse[];
  closeSession?: () => void;
}

function newDev(name: string): Omit<Dev, 'id'> {
  return { key: generateKeyPairSync('ed25519').privateKey, wg: randomBytes(32), disco: randomBytes(32), name, events: [] };
}

function registerReq(plane: ControlPlane, d: Omit<Dev, 'id'>, tamper: { signer?: KeyObject; nonce?: Buffer } = {}) {
  const nonce = tamper.nonce ?? plane.getChallenge().nonce;
  return {
    identityPublicKey: identityPublicKeyRaw(d.key),
    nonce,
    signature: sign(null, registrationMessage(nonce, d.wg, d.disco, d.name), tamper.signer ?? d.key),
    name: d.name,
    wireguardPublicKey: d.wg,
    discoPublicKey: d.disco,
  };
}

function join_(w: World, name: string, session = true): Dev & { token: string } {
  const d = newDev(name);
  const res = w.plane.register(registerReq(w.plane, d));
  const dev: Dev & { token: string } = { ...d, id: res.deviceId, token: res.sessionToken };
  if (session) dev.closeSession = w.plane.openSession(dev.id, ['127.0.0.1:3478', '127.0.0.1:3479'], (e) => dev.events.push(e));
  return dev;
}

const code = (c: Status) => (e: unknown) => {
  assert.ok(e instanceof ApiError, String(e));
  assert.equal(e.code, c, `expected ${Status[c]}, got ${Status[e.code]}: ${e.message}`);
  return true;
};

const lastSnapshot = (d: Dev) => [...d.events].reverse().find((e) => e.snapshot)?.snapshot;

test('register: a valid signature gets a token; forged, replayed, expired and stolen identities are refused', () => {
  const w = world();
  const a = newDev('Alice');
  const req = registerReq(w.plane, a);
  const res = w.plane.register(req);
  assert.match(res.deviceId, /^[a-z2-7]{24}$/);
  assert.equal(w.plane.authenticate(res.sessionToken), res.deviceId);

  // Replay of the very same request: the nonce is spent.
  assert.throws(() => w.plane.register(req), code(Status.UNAUTHENTICATED));
  // A nonce the server never issued.
  assert.throws(() => w.plane.register(registerReq(w.plane, a, { nonce: randomBytes(32) })), code(Status.UNAUTHENTICATED));
  // Expired nonce.
  const late = registerReq(w.plane, a);
  w.clock.advance(61_000);
  assert.throws(() => w.plane.register(late), /unknown, already used or expired/);

  // Mallory presents Alice's identity key but can only sign with her own key.
  const mallory = newDev('Mallory');
  const stolen = registerReq(w.plane, { ...mallory, key: a.key }, { signer: mallory.key });
  assert.throws(() => w.plane.register(stolen), (e: ApiError) => code(Status.UNAUTHENTICATED)(e) && /signature does not verify/.test(e.message));
  // Signature over different keys than the ones sent (key swap in transit).
  const swapped = { ...registerReq(w.plane, a), wireguardPublicKey: randomBytes(32) };
  assert.throws(() => w.plane.register(swapped), code(Status.UNAUTHENTICATED));
  // Mallory registering Alice's WireGuard key under her own identity.
  assert.throws(() => w.plane.register(registerReq(w.plane, { ...mallory, wg: a.wg })), code(Status.ALREADY_EXISTS));

  // Re-registering the same identity with new keys keeps the id.
  const again = w.plane.register(registerReq(w.plane, { ...a, wg: randomBytes(32), name: 'Alice 2' }));
  assert.equal(again.deviceId, res.deviceId);
  assert.throws(() => w.plane.authenticate('nope'), code(Status.UNAUTHENTICATED));
  assert.throws(() => w.plane.authenticate(undefined), /authorization: Bearer/);

  // Bad inputs are INVALID_ARGUMENT before any crypto.
  assert.throws(() => w.plane.register({ ...registerReq(w.plane, a), name: 'bad;name' }), code(Status.INVALID_ARGUMENT));
  assert.throws(() => w.plane.register({ ...registerReq(w.plane, a), discoPublicKey: Buffer.alloc(5) }), code(Status.INVALID_ARGUMENT));
  assert.throws(() => w.plane.register({ ...registerReq(w.plane, a), nonce: Buffer.alloc(3) }), code(Status.INVALID_ARGUMENT));
});

test('parties: create, join with the secret, wrong secret refused, everyone sees keys, IPs and candidates', () => {
  const w = world();
  const host = join_(w, 'Host');
  const b = join_(w, 'Bob');
  const c = join_(w, 'Carol');
  const created = w.plane.createParty(host.id, { name: 'Friday LAN' });
  assert.equal(created.party?.members[0]?.virtualIp, '10.66.0.1');
  assert.equal(created.party?.hostDeviceId, host.id);

  assert.throws(() => w.plane.joinParty(b.id, { partyId: created.party!.id, inviteSecret: 'A'.repeat(43) }), code(Status.PERMISSION_DENIED));
  assert.equal(w.store.members(created.party!.id).length, 1, 'a refused join changes nothing');
  assert.throws(() => w.plane.joinParty(b.id, { partyId: 'aaaaaaaaaaaaaaaa', inviteSecret: created.inviteSecret }), code(Status.NOT_FOUND));
  assert.throws(() => w.plane.joinParty(b.id, { partyId: 'x', inviteSecret: created.inviteSecret }), code(Status.INVALID_ARGUMENT));

  w.plane.updateEndpoints(b.id, { candidates: ['198.51.100.2:41641'], nat: undefined });
  w.plane.joinParty(b.id, { partyId: created.party!.id, inviteSecret: created.inviteSecret });
  w.plane.joinParty(c.id, { partyId: created.party!.id, inviteSecret: created.inviteSecret });
  w.plane.updateEndpoints(c.id, { candidates: ['203.0.113.9:5000', '[2001:db8::9]:5000'], nat: undefined });

  const snap = w.plane.partyProto(created.party!.id)!;
  assert.deepEqual(
    snap.members.map((m) => [m.name, m.virtualIp, m.isHost, m.candidates]),
    [
      ['Host', '10.66.0.1', true, []],
      ['Bob', '10.66.0.2', false, ['198.51.100.2:41641']],
      ['Carol', '10.66.0.3', false, ['203.0.113.9:5000', '[2001:db8::9]:5000']],
    ],
  );
  assert.ok(snap.members[2]!.wireguardPublicKey.equals(c.wg));
  assert.ok(snap.members[2]!.discoPublicKey.equals(c.disco));
  // The host heard of both joins and Carol's update; Bob got a snapshot with himself in it.
  assert.deepEqual(host.events.filter((e) => e.memberJoined).map((e) => e.memberJoined!.name), ['Bob', 'Carol']);
  assert.deepEqual(host.events.filter((e) => e.memberUpdated).map((e) => e.memberUpdated!.candidates.length), [2]);
  assert.deepEqual(lastSnapshot(b)?.party?.members.map((m) => m.name), ['Host', 'Bob']);
  assert.deepEqual(lastSnapshot(b)?.stunServers, ['127.0.0.1:3478', '127.0.0.1:3479']);
  // Joining again is harmless and keeps the address.
  w.plane.joinParty(b.id, { partyId: created.party!.id, inviteSecret: created.inviteSecret });
  assert.equal(w.store.membership(b.id)?.virtualIp, '10.66.0.2');
});

test('leave, kick, host hand-over, stable IPs on rejoin, one party per device, empty party deleted', () => {
  const w = world();
  const host = join_(w, 'Host');
  const b = join_(w, 'Bob');
  const c = join_(w, 'Carol');
  const { party, inviteSecret } = w.plane.createParty(host.id, { name: 'LAN' });
  const pid = party!.id;
  w.plane.joinParty(b.id, { partyId: pid, inviteSecret });
  w.clock.advance(10);
  w.plane.joinParty(c.id, { partyId: pid, inviteSecret });

  assert.throws(() => w.plane.kick(b.id, { deviceId: c.id }), code(Status.PERMISSION_DENIED));
  assert.throws(() => w.plane.kick(host.id, { deviceId: host.id }), code(Status.INVALID_ARGUMENT));
  assert.equal(w.store.members(pid).length, 3);

  // Bob leaves and comes back: same address.
  w.plane.leaveParty(b.id);
  assert.deepEqual(c.events.at(-1), { memberLeft: { deviceId: b.id, reason: MemberLeftReason.MEMBER_LEFT_REASON_LEFT } });
  assert.equal(lastSnapshot(b)?.party, undefined);
  w.plane.joinParty(b.id, { partyId: pid, inviteSecret });
  assert.equal(w.store.membership(b.id)?.virtualIp, '10.66.0.2');

  // Host kicks Carol: she is told, the others see her leave as kicked.
  w.plane.kick(host.id, { deviceId: c.id });
  assert.ok(c.events.some((e) => e.kicked?.partyId === pid && e.kicked.byDeviceId === host.id));
  assert.equal(lastSnapshot(c)?.party, undefined);
  assert.deepEqual(b.events.at(-1), { memberLeft: { deviceId: c.id, reason: MemberLeftReason.MEMBER_LEFT_REASON_KICKED } });
  assert.throws(() => w.plane.kick(host.id, { deviceId: c.id }), code(Status.NOT_FOUND));

  // Carol creates her own party; Bob joins it and so leaves the first one.
  const second = w.plane.createParty(c.id, { name: 'Other' });
  w.plane.joinParty(b.id, { partyId: second.party!.id, inviteSecret: second.inviteSecret });
  assert.deepEqual(host.events.at(-1), { memberLeft: { deviceId: b.id, reason: MemberLeftReason.MEMBER_LEFT_REASON_LEFT } });
  assert.equal(w.store.membership(b.id)?.partyId, second.party!.id);

  // Carol (host of the second) leaves: Bob, the oldest remaining, becomes host and is told.
  w.plane.leaveParty(c.id);
  assert.equal(w.store.party(second.party!.id)?.hostDeviceId, b.id);
  const promoted = b.events.filter((e) => e.memberUpdated?.deviceId === b.id).at(-1);
  assert.equal(promoted?.memberUpdated?.isHost, true);
  // Last member leaves: the party is gone.
  w.plane.leaveParty(b.id);
  assert.equal(w.store.party(second.party!.id), undefined);
  w.plane.leaveParty(b.id); // idempotent
  w.plane.leaveParty(host.id);
  assert.equal(w.store.party(pid), undefined);
});

test('call-me-maybe reaches only the named peer in the same party', () => {
  const w = world();
  const [a, b, c, outsider] = [join_(w, 'A'), join_(w, 'B'), join_(w, 'C'), join_(w, 'Outsider')];
  const p = w.plane.createParty(a.id, { name: 'P' });
  w.plane.joinParty(b.id, { partyId: p.party!.id, inviteSecret: p.inviteSecret });
  w.plane.joinParty(c.id, { partyId: p.party!.id, inviteSecret: p.inviteSecret });
  w.plane.createParty(outsider.id, { name: 'Q' });
  for (const d of [a, b, c, outsider]) d.events.length = 0;

  assert.deepEqual(w.plane.callMeMaybe(a.id, { toDeviceId: b.id, candidates: ['203.0.113.1:1000'], spraySockets: 0, primed: [] }), { delivered: true });
  assert.deepEqual(b.events, [{ callMeMaybe: { fromDeviceId: a.id, candidates: ['203.0.113.1:1000'], spraySockets: 0, primed: [] } }]);
  assert.deepEqual(c.events, []);
  assert.deepEqual(outsider.events, []);
  assert.throws(() => w.plane.callMeMaybe(a.id, { toDeviceId: outsider.id, candidates: [], spraySockets: 0, primed: [] }), code(Status.NOT_FOUND));
  assert.throws(() => w.plane.callMeMaybe(outsider.id, { toDeviceId: a.id, candidates: [], spraySockets: 0, primed: [] }), code(Status.NOT_FOUND));
  assert.throws(() => w.plane.callMeMaybe(a.id, { toDeviceId: b.id, candidates: ['224.0.0.1:1'], spraySockets: 0, primed: [] }), code(Status.INVALID_ARGUMENT));
  // Empty candidates: the sender's published ones are sent.
  w.plane.updateEndpoints(a.id, { candidates: ['198.51.100.1:2000'], nat: undefined });
  b.events.length = 0;
  w.plane.callMeMaybe(a.id, { toDeviceId: b.id, candidates: [], spraySockets: 0, primed: [] });
  assert.deepEqual(b.events[0]?.callMeMaybe?.candidates, ['198.51.100.1:2000']);
  // Which of the receiver's candidates the caller primed is carried, checked like candidates.
  b.events.length = 0;
  w.plane.callMeMaybe(a.id, { toDeviceId: b.id, candidates: [], spraySockets: 0, primed: ['203.0.113.9:3000'] });
  assert.deepEqual(b.events[0]?.callMeMaybe?.primed, ['203.0.113.9:3000']);
  assert.throws(() => w.plane.callMeMaybe(a.id, { toDeviceId: b.id, candidates: [], spraySockets: 0, primed: ['junk'] }), code(Status.INVALID_ARGUMENT));
  // Birthday probing: the socket count is carried; beyond the bound it is refused.
  b.events.length = 0;
  w.plane.callMeMaybe(a.id, { toDeviceId: b.id, candidates: [], spraySockets: 256, primed: [] });
  assert.equal(b.events[0]?.callMeMaybe?.spraySockets, 256);
  assert.throws(() => w.plane.callMeMaybe(a.id, { toDeviceId: b.id, candidates: [], spraySockets: 257, primed: [] }), code(Status.INVALID_ARGUMENT));
  // A peer without a Session does not get it, and the caller learns so.
  b.closeSession!();
  assert.deepEqual(w.plane.callMeMaybe(a.id, { toDeviceId: b.id, candidates: [], spraySockets: 0, primed: [] }), { delivered: false });
  // Flooding is cut off.
  assert.throws(() => {
    for (let i = 0; i < 100; i++) w.plane.callMeMaybe(a.id, { toDeviceId: c.id, candidates: [], spraySockets: 0, primed: [] });
  }, code(Status.RESOURCE_EXHAUSTED));
});

test('presence: online while a session is open, away 15 s after it closes, dropped after 2 min away, everyone told', () => {
  const w = world();
  const host = join_(w, 'Host');
  const b = join_(w, 'Bob');
  const p = w.plane.createParty(host.id, { name: 'P' });
  const pid = p.party!.id;
  w.plane.joinParty(b.id, { partyId: pid, inviteSecret: p.inviteSecret });
  const presenceOfHost = () => w.plane.partyProto(pid)?.members.find((m) => m.deviceId === host.id)?.presence;

  host.closeSession!();
  w.clock.advance(14_000);
  assert.equal(presenceOfHost(), Presence.PRESENCE_ONLINE, 'still online within the grace period');
  // Reconnecting within the grace period: nobody is bothered.
  const again = w.plane.openSession(host.id, [], (e) => host.events.push(e));
  w.clock.advance(60_000);
  assert.equal(presenceOfHost(), Presence.PRESENCE_ONLINE);
  assert.equal(b.events.filter((e) => e.memberUpdated).length, 0);

  again();
  w.clock.advance(15_000);
  assert.equal(presenceOfHost(), Presence.PRESENCE_AWAY);
  assert.equal(b.events.at(-1)?.memberUpdated?.presence, Presence.PRESENCE_AWAY);
  // Back before the drop: online again, Bob is told.
  const third = w.plane.openSession(host.id, [], (e) => host.events.push(e));
  assert.equal(b.events.at(-1)?.memberUpdated?.presence, Presence.PRESENCE_ONLINE);
  third();
  w.clock.advance(15_000 + 119_000);
  assert.equal(w.store.membership(host.id)?.partyId, pid, 'not yet dropped');
  w.clock.advance(1_000);
  assert.equal(w.store.membership(host.id), undefined, 'dropped after 2 minutes away');
  assert.deepEqual(
    b.events.filter((e) => e.memberLeft || e.memberUpdated?.deviceId === b.id).map((e) => (e.memberLeft ? `left:${e.memberLeft.reason}` : `host:${e.memberUpdated!.deviceId === b.id}`)),
    [`left:${MemberLeftReason.MEMBER_LEFT_REASON_TIMED_OUT}`, 'host:true'],
  );
  assert.equal(w.store.party(pid)?.hostDeviceId, b.id);
  assert.equal(w.clock.pending, 0, 'no timers left behind');
});

test('a restarted control plane keeps devices, parties, members and IPs; members get the grace period to come back', () => {
  withFile((file) => {
    const w = world(file);
    const host = join_(w, 'Host');
    const b = join_(w, 'Bob');
    const p = w.plane.createParty(host.id, { name: 'Persist' });
    w.plane.joinParty(b.id, { partyId: p.party!.id, inviteSecret: p.inviteSecret });
    w.plane.updateEndpoints(b.id, { candidates: ['198.51.100.7:7777'], nat: undefined });
    const before = w.plane.partyProto(p.party!.id)!;
    w.plane.close();
    w.store.close();

    const w2 = world(file, w.clock);
    const after = w2.plane.partyProto(p.party!.id)!;
    assert.deepEqual(
      after.members.map((m) => [m.deviceId, m.virtualIp, m.isHost, m.candidates, m.presence]),
      before.members.map((m) => [m.deviceId, m.virtualIp, m.isHost, m.candidates, Presence.PRESENCE_ONLINE]),
    );
    // Session tokens are not persisted: the old token is refused, registering again works.
    assert.throws(() => w2.plane.authenticate(host.token), code(Status.UNAUTHENTICATED));
    const re = w2.plane.register(registerReq(w2.plane, host));
    assert.equal(re.deviceId, host.id);
    // The secret still works after the restart.
    const c = join_(w2, 'Carol');
    w2.plane.joinParty(c.id, { partyId: p.party!.id, inviteSecret: p.inviteSecret });
    assert.equal(w2.store.membership(c.id)?.virtualIp, '10.66.0.3');
    // Only Carol reconnected; the others are dropped if they never come back.
    w2.clock.advance(15_000 + 120_000);
    assert.deepEqual(w2.plane.partyProto(p.party!.id)?.members.map((m) => m.name), ['Carol']);
    w2.plane.close();
    w2.store.close();
  });
});
