import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { status as Status } from '@grpc/grpc-js';
import { ApiError } from '../../helper/core/api-error.js';
import { createLogger } from '../../helper/core/log.js';
import { ManualClock } from '../../helper/core/clock.js';
import type { AnnouncedServer, Announcement, SessionResponse } from '../../helper/gen/lanrage/control/v1/control.js';
import { ControlPlane } from '../../helper/control/control-plane.js';
import { registrationMessage } from '../../helper/control/registration.js';
import { SqliteControlStore } from '../../helper/control/sqlite-store.js';
import { identityPublicKeyRaw } from '../../helper/controlclient/identity.js';
import { ANNOUNCE_BURST, checkAnnouncement } from '../../helper/control/announcements.js';

// Announcements through the real control plane: members tell their party which discovery ports,
// groups and servers their games have; bad or oversized ones are refused with a clear status and
// change nothing for anybody.

const log = createLogger({ test: 'announcements' }, () => {});

function world() {
  const clock = new ManualClock();
  const plane = new ControlPlane({ store: SqliteControlStore.open(':memory:'), log, clock });
  const dev = (name: string) => {
    const key = generateKeyPairSync('ed25519').privateKey;
    const wg = randomBytes(32);
    const disco = randomBytes(32);
    const nonce = plane.getChallenge().nonce;
    const res = plane.register({ identityPublicKey: identityPublicKeyRaw(key), nonce, signature: sign(null, registrationMessage(nonce, wg, disco, name), key), name, wireguardPublicKey: wg, discoPublicKey: disco });
    const events: SessionResponse[] = [];
    const close = plane.openSession(res.deviceId, [], (e) => events.push(e));
    return { id: res.deviceId, events, close };
  };
  return { plane, clock, dev };
}

const server = (over: Partial<AnnouncedServer> = {}): AnnouncedServer => ({
  id: 'oa-27960', gameProfileId: 'openarena', gameName: 'OpenArena', port: 27960, name: 'Frag night', map: 'oa_dm1', players: 2, maxPlayers: 8, password: false, steamAppId: 0, ...over,
});
const ann = (over: Partial<Announcement> = {}): Announcement => ({ udpPorts: [27960], multicastGroups: [], servers: [server()], gameProfileIds: [], ...over });
const code = (c: Status) => (e: unknown) => {
  assert.ok(e instanceof ApiError, String(e));
  assert.equal(e.code, c, `expected ${Status[c]}, got ${Status[e.code]}: ${e.message}`);
  return true;
};

test('a member announces: every member (itself too) gets it, later joiners in their snapshot, and it goes when the member leaves', () => {
  const w = world();
  const a = w.dev('alice');
  const b = w.dev('bob');
  const party = w.plane.createParty(a.id, { name: 'lan' });
  assert.throws(() => w.plane.announce(b.id, { announcement: ann() }), code(Status.FAILED_PRECONDITION));
  w.plane.joinParty(b.id, { partyId: party.party!.id, inviteSecret: party.inviteSecret });
  b.events.length = 0;
  a.events.length = 0;
  w.plane.announce(a.id, { announcement: ann({ udpPorts: [27961, 27960, 27960] }) });
  const got = b.events.find((e) => e.announcement)?.announcement;
  assert.equal(got?.deviceId, a.id);
  assert.deepEqual(got?.announcement?.udpPorts, [27960, 27961], 'sorted, without duplicates');
  assert.equal(got?.announcement?.servers[0]?.name, 'Frag night');
  assert.ok(a.events.some((e) => e.announcement), 'the announcer hears its own announcement');
  // The same again: nobody is told twice.
  b.events.length = 0;
  w.plane.announce(a.id, { announcement: ann({ udpPorts: [27961, 27960] }) });
  assert.equal(b.events.length, 0);

  const c = w.dev('carol');
  w.plane.joinParty(c.id, { partyId: party.party!.id, inviteSecret: party.inviteSecret });
  const snap = [...c.events].reverse().find((e) => e.snapshot)!.snapshot!;
  assert.deepEqual(snap.announcements.map((x) => x.deviceId), [a.id]);

  w.plane.leaveParty(a.id);
  const d = w.dev('dave');
  w.plane.joinParty(d.id, { partyId: party.party!.id, inviteSecret: party.inviteSecret });
  const snap2 = [...d.events].reverse().find((e) => e.snapshot)!.snapshot!;
  assert.deepEqual(snap2.announcements, [], 'a member that left takes its servers with it');
});

test('bad announcements: a clear INVALID_ARGUMENT, nothing stored, nobody told; a flood: RESOURCE_EXHAUSTED', () => {
  const w = world();
  const a = w.dev('alice');
  const b = w.dev('bob');
  const party = w.plane.createParty(a.id, { name: 'lan' });
  w.plane.joinParty(b.id, { partyId: party.party!.id, inviteSecret: party.inviteSecret });
  w.plane.announce(a.id, { announcement: ann() });
  b.events.length = 0;
  const bad: Array<[string, Partial<Announcement>]> = [
    ['too many ports', { udpPorts: Array.from({ length: 65 }, (_, i) => 1000 + i) }],
    ['port 0', { udpPorts: [0] }],
    ['port 70000', { udpPorts: [70000] }],
    ['not multicast', { multicastGroups: ['10.0.0.1:5000'] }],
    ['group without port', { multicastGroups: ['224.0.2.60'] }],
    ['too many servers', { servers: Array.from({ length: 33 }, (_, i) => server({ id: `s${i}` })) }],
    ['control characters', { servers: [server({ name: 'evil\u001b[2Jname' })] }],
    ['long name', { servers: [server({ name: 'x'.repeat(129) })] }],
    ['players > max', { servers: [server({ players: 9, maxPlayers: 8 })] }],
    ['hostile id', { servers: [server({ id: '../../etc/passwd' })] }],
    ['duplicate id', { servers: [server(), server()] }],
    ['port 0 server', { servers: [server({ port: 0 })] }],
    ['bad profile', { servers: [server({ gameProfileId: 'Open Arena!' })] }],
  ];
  for (const [what, over] of bad) {
    assert.throws(() => w.plane.announce(a.id, { announcement: ann(over) }), code(Status.INVALID_ARGUMENT), what);
  }
  assert.equal(b.events.length, 0, 'nobody was told anything');
  const c = w.dev('carol');
  w.plane.joinParty(c.id, { partyId: party.party!.id, inviteSecret: party.inviteSecret });
  const snap = [...c.events].reverse().find((e) => e.snapshot)!.snapshot!;
  assert.deepEqual(snap.announcements[0]?.announcement, checkAnnouncement(ann()), 'the last good announcement stands');

  // Flood: the burst, then one per second.
  let ok = 0;
  let refused = 0;
  for (let i = 0; i < ANNOUNCE_BURST + 10; i++) {
    try {
      w.plane.announce(b.id, { announcement: ann({ udpPorts: [2000 + i] }) });
      ok++;
    } catch (e) {
      code(Status.RESOURCE_EXHAUSTED)(e);
      refused++;
    }
  }
  assert.equal(ok, ANNOUNCE_BURST);
  assert.equal(refused, 10);
  w.clock.advance(1000);
  w.plane.announce(b.id, { announcement: ann({ udpPorts: [3000] }) });
});
