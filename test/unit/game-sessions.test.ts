import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GameSessions } from '../../helper/games/sessions.js';
import { GameSessionsRepo, SESSION_KEEP_MS, SESSION_MAX_ROWS } from '../../helper/store/game-sessions-repo.js';
import { openDatabase } from '../../helper/store/db.js';
import { HELPER_MIGRATIONS } from '../../helper/store/migrations.js';
import { gameHandlers } from '../../helper/api/game-service.js';
import type { ListGameSessionsResponse } from '../../helper/gen/lanrage/v1/games.js';
import { ApiError, Status } from '../../helper/core/api-error.js';
import { checkAnnouncement } from '../../helper/control/announcements.js';
import { membersPlaying, SessionRecorder } from '../../helper/games/session-recorder.js';
import { prometheusRegistry } from '../../helper/metrics/prometheus.js';
import { PathKind } from '../../helper/gen/lanrage/v1/peer.js';
import { createLogger } from '../../helper/core/log.js';
import type { GameCatalog } from '../../helper/games/catalog.js';
import type { GameDetector } from '../../helper/games/detector.js';
import type { PeerSample } from '../../helper/metrics/peer-metrics.js';

const S = 1000;

test('game sessions: one session per game from its first process to its last, with who played along and the mean RTT while both played', () => {
  const g = new GameSessions();
  g.setMembers([{ deviceId: 'bob', name: 'Bob', games: ['openarena'] }, { deviceId: 'carol', name: 'Carol', games: [] }], 0);
  g.started('openarena', 'OpenArena', 100, 10 * S);
  g.started('openarena', 'OpenArena', 101, 11 * S); // a second process of the same game
  // Samples: Bob plays along; Carol does not, so hers do not count.
  g.samples([{ deviceId: 'bob', rttMs: 20, direct: true }, { deviceId: 'carol', rttMs: 5, direct: true }]);
  g.samples([{ deviceId: 'bob', rttMs: 40, direct: false }]);
  g.samples([{ deviceId: 'bob', rttMs: 0, direct: true }]); // unknown RTT: not in the mean
  // Carol starts at 30 s, Bob quits at 40 s.
  g.setMembers([{ deviceId: 'bob', name: 'Bob', games: ['openarena'] }, { deviceId: 'carol', name: 'Carol', games: ['openarena', 'teeworlds'] }], 30 * S);
  g.samples([{ deviceId: 'carol', rttMs: 7, direct: true }]);
  g.setMembers([{ deviceId: 'bob', name: 'Bob', games: [] }, { deviceId: 'carol', name: 'Carol', games: ['openarena'] }], 40 * S);
  g.samples([{ deviceId: 'bob', rttMs: 999, direct: true }]); // after he stopped
  assert.equal(g.stopped('openarena', 100, 50 * S), undefined, 'another process of the game still runs');
  assert.deepEqual(g.openSessions(), [{ profileId: 'openarena', startMs: 10 * S }]);
  const rec = g.stopped('openarena', 101, 70 * S);
  assert.ok(rec);
  assert.equal(rec.profileId, 'openarena');
  assert.equal(rec.gameName, 'OpenArena');
  assert.equal(rec.startMs, 10 * S);
  assert.equal(rec.endMs, 70 * S);
  assert.deepEqual(rec.players, [
    { deviceId: 'carol', name: 'Carol', overlapMs: 40 * S, avgRttMs: 7, rttSamples: 1, directShare: 1 },
    { deviceId: 'bob', name: 'Bob', overlapMs: 30 * S, avgRttMs: 30, rttSamples: 2, directShare: 2 / 3 },
  ]);
  assert.deepEqual(g.openSessions(), []);
  assert.equal(g.stopped('openarena', 101, 71 * S), undefined, 'a stop without a session is ignored');
});

test('game sessions: a member who leaves the party stops playing along; alone is a session without players; endAll closes everything', () => {
  const g = new GameSessions();
  g.started('teeworlds', 'Teeworlds', 1, 0);
  g.setMembers([{ deviceId: 'bob', name: 'Bob', games: ['teeworlds'] }], 5 * S);
  g.setMembers([], 15 * S); // Bob left (or the party ended)
  g.started('openttd', 'OpenTTD', 2, 20 * S);
  const all = g.endAll(30 * S);
  assert.equal(all.length, 2);
  const tw = all.find((r) => r.profileId === 'teeworlds')!;
  assert.deepEqual(tw.players.map((p) => [p.deviceId, p.overlapMs, p.avgRttMs]), [['bob', 10 * S, 0]]);
  assert.deepEqual(all.find((r) => r.profileId === 'openttd')!.players, []);
  assert.deepEqual(g.openSessions(), []);
});

test('game sessions: the members list is built from announcements, named from the party', () => {
  const ann = checkAnnouncement({ udpPorts: [], multicastGroups: [], servers: [], gameProfileIds: ['openarena', 'openarena', 'doom'] });
  assert.deepEqual(ann.gameProfileIds, ['doom', 'openarena'], 'sorted, without duplicates');
  assert.throws(() => checkAnnouncement({ udpPorts: [], multicastGroups: [], servers: [], gameProfileIds: ['Bad Id!'] }), /game_profile_ids\[0\]/);
  assert.throws(() => checkAnnouncement({ udpPorts: [], multicastGroups: [], servers: [], gameProfileIds: Array.from({ length: 17 }, (_, i) => `g${i}`) }), /at most 16/);
  const m = membersPlaying(new Map([['bbbbbbbbbbbb', ann]]), new Map([['bbbbbbbbbbbb', 'Bob']]));
  assert.deepEqual(m, [{ deviceId: 'bbbbbbbbbbbb', name: 'Bob', games: ['doom', 'openarena'] }]);
  assert.equal(membersPlaying(new Map([['cccccccccccc', ann]]), new Map())[0]!.name, 'cccccccc', 'an unknown member is named by its id');
});

function repo(now = () => Date.now()): GameSessionsRepo {
  return new GameSessionsRepo(openDatabase(':memory:', HELPER_MIGRATIONS), now);
}

test('game sessions repo: newest first, paged by id, filtered by game; old and surplus rows pruned', () => {
  let now = 1_000_000_000_000;
  const r = repo(() => now);
  const player = { deviceId: 'bob', name: 'Bob', overlapMs: 5000, avgRttMs: 12.5, rttSamples: 5, directShare: 1 };
  const a = r.add({ profileId: 'openarena', gameName: 'OpenArena', startMs: now - 60_000, endMs: now, players: [player] });
  const b = r.add({ profileId: 'teeworlds', gameName: 'Teeworlds', startMs: now, endMs: now + 1000, players: [] });
  assert.ok(b.id > a.id);
  assert.deepEqual(r.list(10, 0, '').map((s) => s.id), [b.id, a.id]);
  assert.deepEqual(r.list(10, b.id, '').map((s) => s.id), [a.id]);
  assert.deepEqual(r.list(10, 0, 'openarena')[0]!.players, [player]);
  // 90 days later the first two go with the next insert.
  now += SESSION_KEEP_MS + 2000;
  r.add({ profileId: 'doom', gameName: 'Doom', startMs: now - 1, endMs: now, players: [] });
  assert.deepEqual(r.list(10, 0, '').map((s) => s.profileId), ['doom']);
  assert.ok(SESSION_MAX_ROWS >= 1000);
});

test('game sessions repo: the row cap keeps the newest', () => {
  const db = openDatabase(':memory:', HELPER_MIGRATIONS);
  const r = new GameSessionsRepo(db);
  const ins = db.prepare('INSERT INTO game_sessions(profile_id, game_name, started_ms, ended_ms, players) VALUES (?,?,?,?,?)');
  const now = Date.now();
  db.transaction(() => {
    for (let i = 0; i < SESSION_MAX_ROWS + 5; i++) ins.run('g', 'G', now, now, '[]');
  })();
  r.add({ profileId: 'last', gameName: 'Last', startMs: now, endMs: now, players: [] });
  assert.equal((db.prepare('SELECT COUNT(*) AS n FROM game_sessions').get() as { n: number }).n, SESSION_MAX_ROWS);
  assert.equal(r.list(1, 0, '')[0]!.profileId, 'last');
  // A damaged players column reads back as no players, not as a crash.
  db.prepare("UPDATE game_sessions SET players = 'not json' WHERE profile_id = 'last'").run();
  assert.deepEqual(r.list(1, 0, '')[0]!.players, []);
});

test('ListGameSessions: pages with a token, validates page size, token and game filter', () => {
  const r = repo();
  const t0 = Date.now() - 3600_000;
  for (let i = 0; i < 5; i++) r.add({ profileId: i % 2 ? 'openarena' : 'teeworlds', gameName: 'x', startMs: t0 + i * 1000, endMs: t0 + i * 1000 + 61_400, players: [] });
  const h = gameHandlers({} as GameCatalog, {} as GameDetector, r);
  const list = h.listGameSessions as (req: { pageSize: number; pageToken: string; profileId: string }) => ListGameSessionsResponse;
  const p1 = list({ pageSize: 2, pageToken: '', profileId: '' });
  assert.equal(p1.sessions.length, 2);
  assert.equal(p1.sessions[0]!.durationSeconds, 61);
  assert.ok(p1.sessions[0]!.id > p1.sessions[1]!.id);
  const p2 = list({ pageSize: 2, pageToken: p1.nextPageToken, profileId: '' });
  const p3 = list({ pageSize: 2, pageToken: p2.nextPageToken, profileId: '' });
  assert.equal(p3.sessions.length, 1);
  assert.equal(p3.nextPageToken, '', 'the last page says so');
  assert.equal(new Set([...p1.sessions, ...p2.sessions, ...p3.sessions].map((s) => s.id)).size, 5);
  assert.equal(list({ pageSize: 0, pageToken: '', profileId: 'openarena' }).sessions.length, 2);
  const invalid = (req: { pageSize: number; pageToken: string; profileId: string }, re: RegExp): void => {
    assert.throws(() => list(req), (e: unknown) => e instanceof ApiError && e.code === Status.INVALID_ARGUMENT && re.test(e.message));
  };
  invalid({ pageSize: 501, pageToken: '', profileId: '' }, /page_size/);
  invalid({ pageSize: 1, pageToken: '-1', profileId: '' }, /page_token/);
  invalid({ pageSize: 1, pageToken: "1' OR 1=1", profileId: '' }, /page_token/);
  invalid({ pageSize: 1, pageToken: '', profileId: 'A'.repeat(65) }, /profile_id/);
});

test('session recorder: detections and samples become a stored session, counted for Prometheus; open ones end on close', async () => {
  let now = Date.now();
  const r = repo(() => now);
  const recorded: number[] = [];
  const rec = new SessionRecorder({ repo: r, log: createLogger({}, () => {}), gameName: (id) => (id === 'openarena' ? 'OpenArena' : id), onRecorded: (s) => recorded.push(s.id), now: () => now });
  rec.members(membersPlaying(new Map([['bob', { udpPorts: [], multicastGroups: [], servers: [], gameProfileIds: ['openarena'] }]]), new Map([['bob', 'Bob']])));
  rec.started({ pid: 7, profileId: 'openarena', exe: 'ioq3ded', detectedAt: now });
  rec.started({ pid: 8, profileId: 'teeworlds', exe: 'teeworlds', detectedAt: now });
  const sample = { atMs: now, deviceId: 'bob', name: 'Bob', path: PathKind.PATH_KIND_RELAYED, fastPath: false, rttMs: 31, jitterMs: 0, lossRatio: 0, rxBps: 0, txBps: 0, rxPps: 0, txPps: 0, quality: 90, rxBytes: 0, txBytes: 0, rxPackets: 0, txPackets: 0 };
  rec.samples([sample]);
  const reg = prometheusRegistry({ peers: () => [], magic: () => null, lan: () => ({ enabled: false, ports: [], groups: [], captured: 0, forwarded: 0, received: 0, injected: 0, droppedDuplicate: 0, droppedRateLimited: 0, droppedInvalid: 0, droppedLoop: 0, droppedPolicy: 0, droppedNoListener: 0, errors: 0, problem: '', carried: [] }), gameSessions: () => ({ ended: rec.endedCounts(), playing: rec.playing() }) });
  assert.match(await reg.metrics(), /^lanrage_game_playing\{game="openarena"\} 1$/m);
  now += 10_000;
  rec.stopped({ pid: 7, profileId: 'openarena', exe: 'ioq3ded', detectedAt: 0 });
  const text = await reg.metrics();
  assert.match(text, /^lanrage_game_sessions_total\{game="openarena"\} 1$/m);
  assert.doesNotMatch(text, /^lanrage_game_playing\{game="openarena"\}/m);
  const [s] = r.list(1, 0, '');
  assert.equal(s!.gameName, 'OpenArena');
  assert.deepEqual(s!.players.map((p) => [p.name, p.avgRttMs, p.directShare, p.overlapMs]), [['Bob', 31, 0, 10_000]]);
  rec.close(); // teeworlds still runs: kept as ended now
  assert.equal(recorded.length, 2);
  assert.deepEqual(r.list(10, 0, '').map((x) => x.profileId), ['teeworlds', 'openarena']);
});

test('session recorder: a game process in another network namespace is not played here', () => {
  const r = repo();
  const rec = new SessionRecorder({ repo: r, log: createLogger({}, () => {}), gameName: (id) => id, onRecorded: () => {}, ours: (pid) => pid !== 99 });
  rec.started({ pid: 99, profileId: 'openarena', exe: 'ioq3ded', detectedAt: 0 });
  assert.deepEqual(rec.playing(), []);
  rec.started({ pid: 5, profileId: 'openarena', exe: 'ioq3ded', detectedAt: 0 });
  rec.stopped({ pid: 99, profileId: 'openarena', exe: 'ioq3ded', detectedAt: 0 });
  assert.deepEqual(rec.playing(), ['openarena'], 'the other namespace\'s process stopping ends nothing');
  rec.stopped({ pid: 5, profileId: 'openarena', exe: 'ioq3ded', detectedAt: 0 });
  assert.equal(r.list(10, 0, '').length, 1);
});

test('session recorder: while no game is played, the per-round samples are not copied', () => {
  const rec = new SessionRecorder({ repo: repo(), log: createLogger({}, () => {}), gameName: (id) => id, onRecorded: () => {} });
  let maps = 0;
  const list = new Proxy([] as PeerSample[], {
    get(t, p, r) {
      if (p === 'map') maps++;
      return Reflect.get(t, p, r) as unknown;
    },
  });
  rec.samples(list);
  assert.equal(maps, 0);
  rec.started({ pid: 5, profileId: 'openarena', exe: 'ioq3ded', detectedAt: 0 });
  rec.samples(list);
  assert.equal(maps, 1);
});
