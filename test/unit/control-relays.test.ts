// Relays on the control server and in the client, without processes: the operator's flags, what
// GetRelays mints, the relayed addresses members publish, and what the client accepts from a server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { ApiError } from '../../helper/core/api-error.js';
import { parseArgs } from '../../helper/core/args.js';
import { ManualClock } from '../../helper/core/clock.js';
import { createLogger } from '../../helper/core/log.js';
import { ControlPlane } from '../../helper/control/control-plane.js';
import { registrationMessage } from '../../helper/control/registration.js';
import { DEFAULT_TURN_REALM, parseRelaySpec, relayConfigFromArgs, relayConfigFromFlags, type RelayConfig } from '../../helper/control/relay-config.js';
import { CONTROL_MIGRATIONS, SqliteControlStore } from '../../helper/control/sqlite-store.js';
import { DEFAULT_TURN_TTL_SECONDS, MAX_TURN_TTL_SECONDS, verifyTurnCredentials } from '../../helper/control/turn-credentials.js';
import { identityPublicKeyRaw } from '../../helper/controlclient/identity.js';
import { relayOffersFromProto } from '../../helper/controlclient/relays.js';
import { memberFromProto } from '../../helper/controlclient/state.js';
import { Member, NatMapping, Presence, RelayTransport, type Relay } from '../../helper/gen/lanrage/control/v1/control.js';
import { openDatabase } from '../../helper/store/db.js';

const log = createLogger({ test: 'control-relays' }, () => {});
const SECRET = 'a-long-enough-turn-secret-0123';
const files = (map: Record<string, string>) => (p: string): string => {
  const v = map[p];
  if (v === undefined) throw new Error(`ENOENT: no such file '${p}'`);
  return v;
};

// ---- flags ----

test('--relay HOST:PORT[/udp,tcp]: IPv4 literal, port range, known transports', () => {
  assert.deepEqual(parseRelaySpec('203.0.113.2:3478'), { host: '203.0.113.2', port: 3478, transports: ['udp', 'tcp'] });
  assert.deepEqual(parseRelaySpec('198.51.100.7:443/tcp'), { host: '198.51.100.7', port: 443, transports: ['tcp'] });
  assert.deepEqual(parseRelaySpec('192.0.2.1:3478/TCP,udp'), { host: '192.0.2.1', port: 3478, transports: ['udp', 'tcp'] });
  for (const bad of ['relay.example.com:3478', '[2001:db8::1]:3478', '2001:db8::1:3478', '300.1.1.1:3478', '0.0.0.0:3478', '224.0.0.1:3478', ' 203.0.113.2:3478']) {
    assert.throws(() => parseRelaySpec(bad), /IPv4|not reachable|multicast/, bad);
  }
  for (const bad of ['203.0.113.2:0', '203.0.113.2:65536', '203.0.113.2:080', '203.0.113.2:']) assert.throws(() => parseRelaySpec(bad), /port/, bad);
  assert.throws(() => parseRelaySpec('203.0.113.2'), /port is missing/);
  assert.throws(() => parseRelaySpec('203.0.113.2:3478/sctp'), /unknown transport "sctp"/);
  assert.throws(() => parseRelaySpec('203.0.113.2:3478/'), /unknown transport ""/);
  assert.throws(() => parseRelaySpec('203.0.113.2:3478/udp,tls'), /unknown transport "tls"/);
});

test('relay configuration: the secret comes from a file (trimmed, checked); TTL and realm have defaults and bounds', () => {
  const read = files({ '/s': `  ${SECRET}\n`, '/short': 'tooshort\n', '/spaces': 'has a space in it, long enough\n', '/empty': '\n' });
  assert.equal(relayConfigFromFlags({ relay: [] }, read), undefined, 'no relay: nothing to hand out');
  const c = relayConfigFromFlags({ relay: ['203.0.113.2:3478', '198.51.100.9:443/tcp'], turnSecretFile: '/s' }, read);
  assert.deepEqual(c, {
    relays: [
      { host: '203.0.113.2', port: 3478, transports: ['udp', 'tcp'] },
      { host: '198.51.100.9', port: 443, transports: ['tcp'] },
    ],
    secret: SECRET,
    ttlSeconds: DEFAULT_TURN_TTL_SECONDS,
    realm: DEFAULT_TURN_REALM,
  });
  assert.equal(DEFAULT_TURN_REALM, 'lanrage');
  assert.throws(() => relayConfigFromFlags({ relay: ['203.0.113.2:3478'] }, read), /--relay needs --turn-secret-file/);
  assert.throws(() => relayConfigFromFlags({ relay: ['203.0.113.2:3478'], turnSecretFile: '/short' }, read), /--turn-secret-file \/short: the TURN secret must be 16-256/);
  assert.throws(() => relayConfigFromFlags({ relay: ['203.0.113.2:3478'], turnSecretFile: '/spaces' }, read), /without spaces/);
  assert.throws(() => relayConfigFromFlags({ relay: ['203.0.113.2:3478'], turnSecretFile: '/empty' }, read), /16-256/);
  assert.throws(() => relayConfigFromFlags({ relay: ['203.0.113.2:3478'], turnSecretFile: '/nope' }, read), /--turn-secret-file \/nope: cannot read it/);
  assert.throws(() => relayConfigFromFlags({ relay: [], turnSecretFile: '/s' }, read), /no --relay/);
  assert.throws(() => relayConfigFromFlags({ relay: ['203.0.113.2:3478', '203.0.113.2:3478/tcp'], turnSecretFile: '/s' }, read), /given twice/);
  assert.throws(() => relayConfigFromFlags({ relay: ['nope:1'], turnSecretFile: '/s' }, read), /--relay "nope:1"/);
  const ttl = (v: string): RelayConfig | undefined => relayConfigFromFlags({ relay: ['203.0.113.2:3478'], turnSecretFile: '/s', turnTtl: v }, read);
  assert.equal(ttl('1')?.ttlSeconds, 1);
  assert.equal(ttl(String(MAX_TURN_TTL_SECONDS))?.ttlSeconds, MAX_TURN_TTL_SECONDS);
  for (const bad of ['0', String(MAX_TURN_TTL_SECONDS + 1), '-5', '1.5', '10s', '']) assert.throws(() => ttl(bad), /--turn-ttl must be 1-/, bad);
  const realm = (v: string): RelayConfig | undefined => relayConfigFromFlags({ relay: ['203.0.113.2:3478'], turnSecretFile: '/s', turnRealm: v }, read);
  assert.equal(realm('turn.example.org')?.realm, 'turn.example.org');
  for (const bad of ['', 'has space', 'a"b', 'x'.repeat(65), '-lead']) assert.throws(() => realm(bad), /--turn-realm/, bad);
});

test('relay flags from the command line: --relay repeats, the others take their last value', () => {
  const read = files({ '/run/secret': SECRET });
  const args = parseArgs(['control', '--relay', '203.0.113.2:3478', '--relay=203.0.113.3:3480/udp', '--turn-secret-file', '/run/secret', '--turn-ttl', '60', '--turn-realm', 'lab']);
  assert.deepEqual(relayConfigFromArgs(args, read), {
    relays: [
      { host: '203.0.113.2', port: 3478, transports: ['udp', 'tcp'] },
      { host: '203.0.113.3', port: 3480, transports: ['udp'] },
    ],
    secret: SECRET,
    ttlSeconds: 60,
    realm: 'lab',
  });
  assert.equal(relayConfigFromArgs(parseArgs(['control', '--grpc-port', '1']), read), undefined);
});

// ---- the control plane ----

function plane(relays?: RelayConfig, file = ':memory:') {
  const clock = new ManualClock(1_700_000_000_000);
  const store = SqliteControlStore.open(file);
  const p = new ControlPlane({ store, log, clock, ...(relays && { relays }) });
  const register = (name: string): string => {
    const key = generateKeyPairSync('ed25519').privateKey;
    const [wg, disco] = [randomBytes(32), randomBytes(32)];
    const nonce = p.getChallenge().nonce;
    return p.register({ identityPublicKey: identityPublicKeyRaw(key), nonce, signature: sign(null, registrationMessage(nonce, wg, disco, name), key), name, wireguardPublicKey: wg, discoPublicKey: disco }).deviceId;
  };
  return { p, clock, store, register };
}

const failsWith = (c: Status, re?: RegExp) => (e: unknown): boolean => {
  assert.ok(e instanceof ApiError, String(e));
  assert.equal(e.code, c, `expected ${Status[c]}, got ${Status[e.code]}: ${e.message}`);
  if (re) assert.match(e.message, re);
  return true;
};

const CFG: RelayConfig = {
  relays: [
    { host: '203.0.113.2', port: 3478, transports: ['udp', 'tcp'] },
    { host: '198.51.100.9', port: 443, transports: ['tcp'] },
  ],
  secret: SECRET,
  ttlSeconds: 300,
  realm: 'lanrage',
};

test('GetRelays: party members only; every configured relay with credentials minted now for the caller', () => {
  const { p, clock, register } = plane(CFG);
  const a = register('Alice');
  assert.throws(() => p.getRelays(a), failsWith(Status.FAILED_PRECONDITION, /join a party first: relays are for party members/));
  p.createParty(a, { name: 'LAN' });
  const { relays } = p.getRelays(a);
  assert.deepEqual(
    relays.map((r) => [r.host, r.port, r.transports, r.realm]),
    [
      ['203.0.113.2', 3478, [RelayTransport.RELAY_TRANSPORT_UDP, RelayTransport.RELAY_TRANSPORT_TCP], 'lanrage'],
      ['198.51.100.9', 443, [RelayTransport.RELAY_TRANSPORT_TCP], 'lanrage'],
    ],
  );
  const r = relays[0]!;
  assert.equal(r.username, `${clock.now() / 1000 + 300}:${a}`, 'TURN REST username for this device');
  assert.equal(r.expiresAt?.getTime(), clock.now() + 300_000);
  assert.ok(verifyTurnCredentials(SECRET, r.username, r.password, clock.now()));
  assert.ok(!verifyTurnCredentials('another-secret-of-enough-length', r.username, r.password, clock.now()));
  assert.ok(!JSON.stringify(relays).includes(SECRET), 'the secret itself is never sent');
  clock.advance(2000);
  const again = p.getRelays(a).relays[0]!;
  assert.notEqual(again.username, r.username, 'fresh on every call');
  assert.ok(again.expiresAt!.getTime() > r.expiresAt!.getTime());
  p.leaveParty(a);
  assert.throws(() => p.getRelays(a), failsWith(Status.FAILED_PRECONDITION));
});

test('GetRelays without configured relays: an empty list (members only all the same)', () => {
  const { p, register } = plane();
  const a = register('Alice');
  assert.throws(() => p.getRelays(a), failsWith(Status.FAILED_PRECONDITION));
  p.createParty(a, { name: 'LAN' });
  assert.deepEqual(p.getRelays(a), { relays: [] });
});

test('relayed addresses: at most 4 IPv4 ip:port, refused whole (nothing changes) otherwise; stored with the member', () => {
  const { p, store, register } = plane(CFG);
  const a = register('Alice');
  const b = register('Bob');
  const { party, inviteSecret } = p.createParty(a, { name: 'LAN' });
  p.joinParty(b, { partyId: party!.id, inviteSecret });
  const events: string[] = [];
  p.openSession(b, [], (e) => e.memberUpdated?.deviceId === a && events.push(e.memberUpdated.relayed.join()));
  const relayedOf = (id: string): string[] => store.device(id)!.relayed;
  p.updateEndpoints(a, { candidates: ['198.51.100.2:41641'], nat: undefined, relayed: ['203.0.113.2:50000'] });
  assert.deepEqual(relayedOf(a), ['203.0.113.2:50000']);
  assert.deepEqual(events, ['203.0.113.2:50000'], 'b is told');
  assert.deepEqual(p.partyProto(party!.id)?.members.find((m) => m.deviceId === a)?.relayed, ['203.0.113.2:50000']);
  for (const bad of [
    ['203.0.113.2:1', '203.0.113.2:2', '203.0.113.2:3', '203.0.113.2:4', '203.0.113.2:5'],
    ['[2001:db8::1]:5000'],
    ['203.0.113.2'],
    ['relay:5000'],
    ['0.0.0.0:5000'],
    ['203.0.113.2:0'],
  ]) {
    assert.throws(() => p.updateEndpoints(a, { candidates: ['192.0.2.1:1'], nat: undefined, relayed: bad }), failsWith(Status.INVALID_ARGUMENT, /relayed/), bad.join());
    assert.deepEqual(relayedOf(a), ['203.0.113.2:50000'], 'unchanged');
    assert.deepEqual(store.device(a)!.candidates, ['198.51.100.2:41641'], 'candidates unchanged too');
  }
  // Leaving relayed out publishes none (callers that predate it).
  p.updateEndpoints(a, { candidates: ['198.51.100.2:41641'], nat: undefined });
  assert.deepEqual(relayedOf(a), []);
  p.updateEndpoints(a, { candidates: [], nat: undefined, relayed: ['203.0.113.2:50001', '203.0.113.2:50001', '203.0.113.2:50002'] });
  assert.deepEqual(relayedOf(a), ['203.0.113.2:50001', '203.0.113.2:50002'], 'duplicates dropped');
  // The same again is no change: nobody is told twice.
  p.updateEndpoints(a, { candidates: [], nat: undefined, relayed: ['203.0.113.2:50001', '203.0.113.2:50002'] });
  assert.deepEqual(events, ['203.0.113.2:50000', '', '203.0.113.2:50001,203.0.113.2:50002'], 'one member_updated per real change, none for refused ones');
});

test('database migration 2: devices from before it have no relayed addresses', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lanrage-relays-'));
  try {
    const file = join(dir, 'control.db');
    const v1 = openDatabase(file, CONTROL_MIGRATIONS.slice(0, 1));
    v1.prepare("INSERT INTO devices VALUES ('d', x'01', 'Old', x'02', x'03', '[\"192.0.2.1:1\"]', '{}', 1, 1)").run();
    v1.close();
    const store = SqliteControlStore.open(file);
    try {
      assert.deepEqual(store.device('d')?.relayed, []);
      assert.deepEqual(store.device('d')?.candidates, ['192.0.2.1:1']);
    } finally {
      store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- the client ----

const relay = (over: Partial<Relay> = {}): Relay => ({
  host: '203.0.113.2',
  port: 3478,
  transports: [RelayTransport.RELAY_TRANSPORT_TCP, RelayTransport.RELAY_TRANSPORT_UDP],
  username: '1700000300:abcdefghijklmnopqrstuvwx',
  password: 'c2VjcmV0LXBhc3N3b3JkLWJhc2U2NA==',
  expiresAt: new Date(1_700_000_300_000),
  realm: 'lanrage',
  ...over,
});

test('relay offers from the server are checked; bad entries are dropped, good ones kept', () => {
  const why: string[] = [];
  const offers = relayOffersFromProto(
    [
      relay(),
      relay({ host: 'relay.example.com' }),
      relay({ host: '2001:db8::1' }),
      relay({ host: '0.0.0.0' }),
      relay({ port: 0 }),
      relay({ port: 70000 }),
      relay({ transports: [] }),
      relay({ transports: [RelayTransport.RELAY_TRANSPORT_UNSPECIFIED, 7 as RelayTransport] }),
      relay({ username: '' }),
      relay({ username: 'x'.repeat(513) }),
      relay({ password: '' }),
      relay({ password: 'p\r\nInjected: 1' }),
      relay({ realm: 'r'.repeat(200) }),
      relay({ expiresAt: undefined }),
      relay(), // a duplicate
      relay({ host: '198.51.100.9', port: 443, transports: [RelayTransport.RELAY_TRANSPORT_TCP] }),
    ],
    (w) => why.push(w),
  );
  assert.deepEqual(offers, [
    { host: '203.0.113.2', port: 3478, transports: ['udp', 'tcp'], username: '1700000300:abcdefghijklmnopqrstuvwx', password: 'c2VjcmV0LXBhc3N3b3JkLWJhc2U2NA==', realm: 'lanrage', expiresAt: 1_700_000_300_000 },
    { host: '198.51.100.9', port: 443, transports: ['tcp'], username: '1700000300:abcdefghijklmnopqrstuvwx', password: 'c2VjcmV0LXBhc3N3b3JkLWJhc2U2NA==', realm: 'lanrage', expiresAt: 1_700_000_300_000 },
  ]);
  assert.equal(why.length, 14);
  assert.ok(why.some((w) => /not an IPv4 address/.test(w)) && why.some((w) => /listed twice/.test(w)) && why.some((w) => /no transport/.test(w)));
  assert.equal(relayOffersFromProto(Array.from({ length: 12 }, (_, i) => relay({ port: 3000 + i }))).length, 8, 'at most 8');
});

test('a member\'s relayed addresses: [] when absent (older server), invalid and IPv6 ones dropped, at most 4', () => {
  const base: Member = {
    deviceId: 'a'.repeat(24),
    name: 'Bob',
    virtualIp: '10.66.0.2',
    wireguardPublicKey: randomBytes(32),
    discoPublicKey: randomBytes(32),
    candidates: [],
    nat: { mapping: NatMapping.NAT_MAPPING_UNSPECIFIED, portMapped: false, portDelta: 0 },
    relayed: [],
    presence: Presence.PRESENCE_ONLINE,
    isHost: false,
    joinedAt: new Date(1000),
  };
  // What an older server sends: no field 11 at all.
  const { relayed: _omit, ...old } = base;
  void _omit;
  const decoded = Member.decode(Member.encode({ ...old, relayed: [] }).finish());
  assert.deepEqual(memberFromProto(decoded, '10.66.0.0/16', 'b'.repeat(24)).relayed, []);
  const m = memberFromProto(
    { ...base, relayed: ['203.0.113.2:50000', '[2001:db8::1]:5', 'junk', '203.0.113.2:50000', '203.0.113.2:1', '203.0.113.2:2', '203.0.113.2:3', '203.0.113.2:4'] },
    '10.66.0.0/16',
    'b'.repeat(24),
  );
  assert.deepEqual(m.relayed, ['203.0.113.2:50000', '203.0.113.2:1', '203.0.113.2:2', '203.0.113.2:3']);
});
