import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { browse, diffServers, hasServers } from '../../helper/servers/browser.js';
import { ServerBrowser } from '../../helper/servers/server-browser.js';
import { createLogger } from '../../helper/core/log.js';
import type { FavoritesRepo } from '../../helper/store/favorites-repo.js';
import { serverPorts } from '../../helper/servers/local-servers.js';
import { parseNetTable } from '../../helper/servers/proc-sockets.js';
import { formatServers } from '../../helper/cli/servers.js';
import { MemberPresence } from '../../helper/gen/lanrage/v1/party.js';
import type { GameProfile } from '../../helper/games/profile.js';
import type { AnnouncedServer } from '../../helper/gen/lanrage/control/v1/control.js';

const A = 'aaaaaaaaaaaaaaaaaaaaaaaa';
const B = 'bbbbbbbbbbbbbbbbbbbbbbbb';
const C = 'cccccccccccccccccccccccc';
const srv = (over: Partial<AnnouncedServer> = {}): AnnouncedServer => ({
  id: 'openarena-27961', gameProfileId: 'openarena', gameName: 'OpenArena', port: 27961, name: 'Frag night', map: 'oa_dm1', players: 1, maxPlayers: 6, password: false, steamAppId: 0, ...over,
});
const member = (deviceId: string, name: string, virtualIp: string, over = {}) => ({ deviceId, name, virtualIp, isHost: false, isSelf: false, presence: MemberPresence.MEMBER_PRESENCE_ONLINE, joinedAt: undefined, ...over });

test('browser: servers of every member at their virtual IP with the RTT to them; away members and strangers are left out', () => {
  const party = { id: 'p', name: 'lan', inviteLink: '', networkCidr: '10.66.0.0/16', createdAt: undefined, inviteReach: 0, inviteNote: '',
    members: [member(A, 'alice', '10.66.0.1', { isSelf: true }), member(B, 'bob', '10.66.0.2'), member(C, 'carol', '10.66.0.3', { presence: MemberPresence.MEMBER_PRESENCE_AWAY })] };
  const announced = new Map([
    [B, { udpPorts: [], multicastGroups: [], gameProfileIds: [], servers: [srv(), srv({ id: 'tf2', gameName: 'Team Fortress 2', gameProfileId: 'tf2', port: 27015, steamAppId: 440, name: '' })] }],
    [C, { udpPorts: [], multicastGroups: [], gameProfileIds: [], servers: [srv()] }],
    ['dddddddddddddddddddddddd', { udpPorts: [], multicastGroups: [], gameProfileIds: [], servers: [srv()] }],
  ]);
  const list = browse({
    party, peers: [{ deviceId: B, rttMs: 12.345 } as never], localServers: [srv({ id: 'teeworlds-8303', gameName: 'Teeworlds', port: 8303 })], announced,
    favorites: new Set([`${B}/openarena-27961`]), seen: new Map(), now: 1000,
  });
  assert.deepEqual(list.map((s) => [s.address, s.hostName, s.local]), [
    ['10.66.0.2:27961', 'bob', false],
    ['10.66.0.2:27015', 'bob', false],
    ['10.66.0.1:8303', 'alice', true],
  ]);
  const oa = list[0]!;
  assert.equal(oa.rttMs, 12.3);
  assert.equal(oa.favorite, true);
  assert.equal(oa.players, 1);
  assert.equal(list[1]!.connectUrl, 'steam://connect/10.66.0.2:27015');
  assert.equal(list[1]!.name, 'Team Fortress 2', 'a server without a name shows its game');
  assert.equal(browse({ party: undefined, peers: [], localServers: [srv()], announced, favorites: new Set(), seen: new Map(), now: 0 }).length, 0);

  // Watch: a new player count is news; a 1 ms RTT wobble is not (within a 5 ms step); a server that went is removed.
  const d1 = diffServers(list, list.map((s) => (s.id === oa.id ? { ...s, rttMs: s.rttMs - 1 } : s)));
  assert.equal(d1.length, 0);
  const d2 = diffServers(list, [{ ...oa, players: 2 }]);
  assert.deepEqual(d2.map((c) => [c.server.id, c.removed]), [[oa.id, false], [list[1]!.id, true], [list[2]!.id, true]]);
  assert.match(formatServers(list).join('\n'), /★ 10\.66\.0\.2:27961 +OpenArena — "Frag night" on oa_dm1 +1\/6 players +12 ms +host bob/);
});

test('server browser at rest: no server anywhere lists nothing without building the party, its peers or reading favorites', () => {
  const calls = { party: 0, peers: 0, favorites: 0, published: 0 };
  const sb = new ServerBrowser({
    log: createLogger({}, () => undefined),
    games: { detector: { running: () => [], on: () => undefined }, catalog: { get: () => undefined } },
    settings: () => ({ broadcastPorts: [] }),
    party: () => (calls.party++, undefined),
    peers: () => (calls.peers++, []),
    favorites: { list: () => (calls.favorites++, new Set<string>()) } as unknown as FavoritesRepo,
    publish: () => void calls.published++,
    targetsChanged: () => undefined,
  });
  assert.deepEqual(sb.list(), []);
  assert.deepEqual(sb.snapshotEvents(), []);
  assert.deepEqual(sb.targets(), { ports: [], groups: [], carried: [] });
  assert.deepEqual(calls, { party: 0, peers: 0, favorites: 0, published: 0 });
  // What decides it: a server here, or one a member announced (an announcement of ports alone lists nothing).
  const ann = (servers: AnnouncedServer[]) => new Map([[B, { udpPorts: [27960], multicastGroups: [], gameProfileIds: [], servers }]]);
  assert.equal(hasServers([], new Map()), false);
  assert.equal(hasServers([], ann([])), false);
  assert.equal(hasServers([srv()], new Map()), true);
  assert.equal(hasServers([], ann([srv()])), true);
});

test('a process is a server of its game when it listens on a game, query or discovery port', () => {
  const oa: GameProfile = {
    id: 'openarena', name: 'OpenArena', discovery: { udpBroadcastPorts: [27960, 27961, 27962, 27963], multicastGroups: [] }, gamePorts: [{ port: 27960, proto: 'udp' }],
    query: { protocol: 'openarena', port: 27960 }, executables: { windows: [], linux: ['ioq3ded'], wine: [] }, sources: [], custom: false,
  };
  assert.deepEqual(serverPorts(oa, [{ proto: 'udp', port: 27961 }]), [{ port: 27961, queryPort: 27961 }]);
  assert.deepEqual(serverPorts(oa, [{ proto: 'udp', port: 27960 }, { proto: 'tcp', port: 80 }]), [{ port: 27960, queryPort: 27960 }]);
  assert.deepEqual(serverPorts(oa, [{ proto: 'udp', port: 40000 }]), [], 'a client listening on a random port is not a server');
  const noQuery: GameProfile = { ...oa, id: 'x', query: undefined };
  assert.deepEqual(serverPorts(noQuery, [{ proto: 'udp', port: 27960 }]), [{ port: 27960, queryPort: undefined }]);
  const master: GameProfile = { ...oa, id: 'mt', query: { protocol: 'minetest', port: 30000 }, gamePorts: [{ port: 30000, proto: 'udp' }] };
  assert.deepEqual(serverPorts(master, [{ proto: 'udp', port: 30000 }]), [{ port: 30000, queryPort: undefined }], 'no query through an internet master list');
});

test('/proc/net tables: unconnected UDP and listening TCP sockets by inode', () => {
  const udp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  1: 00000000:6D39 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 123456 2 0000000000000000 0
  2: 0100007F:A1B2 0200007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 654321 2 0000000000000000 0`;
  assert.deepEqual([...parseNetTable(udp, '07')], [['123456', 27961]]);
});

test('server browser: its timers run only while a game runs here or a server exists here or in announcements', async () => {
  mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
  try {
    let running: Array<{ pid: number; profileId: string; exe: string; detectedAt: number }> = [];
    const listeners: Array<() => void> = [];
    let runningCalls = 0;
    let peersCalls = 0;
    const sb = new ServerBrowser({
      log: createLogger({}, () => undefined),
      games: { detector: { running: () => (runningCalls++, running), on: (_e: string, fn: () => void) => void listeners.push(fn) }, catalog: { get: () => undefined } },
      settings: () => ({ broadcastPorts: [] }),
      party: () => undefined,
      peers: () => (peersCalls++, []),
      favorites: { list: () => new Set<string>() } as unknown as FavoritesRepo,
      publish: () => undefined,
      targetsChanged: () => undefined,
      sameNetns: () => true,
    } as unknown as ConstructorParameters<typeof ServerBrowser>[0]);
    const settle = async (): Promise<void> => {
      for (let j = 0; j < 10; j++) await Promise.resolve();
    };
    sb.start();
    await settle();
    const atRest = runningCalls;
    mock.timers.tick(30_000);
    await settle();
    assert.equal(runningCalls, atRest, 'no game, no server: no periodic scan');
    assert.equal(sb.idle(), true);
    // A game starts here: scanned every 5 s while it runs.
    running = [{ pid: 7, profileId: 'openarena', exe: 'ioq3ded', detectedAt: 0 }];
    for (const fn of listeners) fn();
    await settle();
    const before = runningCalls;
    mock.timers.tick(10_000);
    await settle();
    assert.ok(runningCalls > before, 'a game runs: re-scanned');
    // It stops: the timers stop after the next scan.
    running = [];
    for (const fn of listeners) fn();
    await settle();
    assert.equal(sb.idle(), true);
    // A member announces a server: the list is re-built every 5 s (with the members' RTTs).
    const handlers = new Map<string, (...a: unknown[]) => void>();
    sb.setChannel({ deviceId: A, announce: async () => undefined, party: () => null, on: (e: string, fn: (...a: unknown[]) => void) => void handlers.set(e, fn), off: () => undefined } as never);
    handlers.get('announcements')!([{ deviceId: B, announcement: { udpPorts: [], multicastGroups: [], gameProfileIds: ['openarena'], servers: [srv()] } }], true);
    assert.equal(sb.idle(), false);
    const p0 = peersCalls;
    mock.timers.tick(10_000);
    assert.equal(peersCalls - p0, 2, 'every 5 s while a server is announced');
    handlers.get('memberLeft')!({ deviceId: B });
    assert.equal(sb.idle(), true);
    sb.stop();
  } finally {
    mock.timers.reset();
  }
});
