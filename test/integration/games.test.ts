// Game detection end to end: a running helper notices real game servers from Debian packages
// (teeworlds-server; openarena-server, a shell script that execs the ioquake3 engine) and a
// Wine-style process (argv[0] a Windows path) starting and stopping, through ListGameDetections
// and the Watch stream's GAMES topic. The servers run in a private network namespace (unshare
// --net: only a down loopback) so they can neither reach the internet nor clash over ports with
// other tests. Custom profiles: hostile ones are refused and change nothing; a good one survives
// a helper restart and detects its game.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { credentials, Metadata, status as Status, type ServiceError, type ClientReadableStream } from '@grpc/grpc-js';
import {
  GameProfile,
  GameServiceClient,
  TransportProtocol,
  type CreateCustomGameProfileResponse,
  type GameDetection,
  type GameSession,
  type ListGameSessionsRequest,
  type ListGameSessionsResponse,
  type ListGameDetectionsResponse,
  type ListGameProfilesResponse,
} from '../../helper/gen/lanrage/v1/games.js';
import { WatchServiceClient, WatchTopic, type WatchResponse } from '../../helper/gen/lanrage/v1/watch.js';
import { startHelper, removeStateDir, type HelperProcess } from '../lib/helper-process.js';
import { HELPER_MAIN, requireOrSkip } from '../lib/repo.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { until } from '../lib/wait.js';
import { freePort } from '../lib/coturn.js';

const children = new Set<ChildProcess>();
const helpers: HelperProcess[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const h of helpers) {
    await h.stop('SIGKILL');
    removeStateDir(h.stateDir);
  }
});

function call<Res>(fn: (cb: (err: ServiceError | null, res: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
}
const auth = (token: string): Metadata => {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
};

function start(cmd: string, args: string[], argv0?: string): ChildProcess {
  const c = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'ignore'], ...(argv0 !== undefined && { argv0 }) });
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
}

async function killByPid(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise((r) => c.once('exit', r));
  process.kill(c.pid!, 'SIGKILL');
  await gone;
}

/** Watch GAMES events, collected as they arrive. */
function watchGames(h: HelperProcess): { events: GameDetection[]; stream: ClientReadableStream<WatchResponse>; close(): void } {
  const c = new WatchServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  const stream = c.watch({ topics: [WatchTopic.WATCH_TOPIC_GAMES], maxDurationSeconds: 600 });
  const events: GameDetection[] = [];
  stream.on('data', (r: WatchResponse) => {
    if (r.gameDetection) events.push(r.gameDetection);
  });
  stream.on('error', () => {});
  return {
    events,
    stream,
    close: () => {
      stream.cancel();
      c.close();
    },
  };
}

async function detections(c: GameServiceClient): Promise<GameDetection[]> {
  return (await call<ListGameDetectionsResponse>((cb) => c.listGameDetections({}, cb))).detections;
}

const serverCmds = ['/usr/games/teeworlds-server', '/usr/games/openarena-server', '/usr/bin/unshare'];

test('a real game server and a Wine-style process are detected while they run, and reported stopped when killed', async (t) => {
  const missing = serverCmds.filter((p) => !existsSync(p));
  if (!requireOrSkip(missing.length === 0 && process.getuid?.() === 0, `root and ${missing.join(', ') || 'the game servers'} (Debian teeworlds-server, openarena-server, util-linux)`, t)) return;
  const h = await startHelper({ pwaDir: null });
  helpers.push(h);
  const games = new GameServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  const w = watchGames(h);
  try {
    // teeworlds-server reads its console commands from argv; no master server registration.
    const t0 = Date.now();
    const tee = start('unshare', ['--net', '--', '/usr/games/teeworlds-server', 'sv_register 0', 'sv_port 8303']);
    const startedEv = await until('Watch GAMES: teeworlds started', () => w.events.find((e) => e.pid === tee.pid && e.running), 10_000, 20);
    const latency = Date.now() - t0;
    assert.equal(startedEv.profileId, 'teeworlds');
    assert.equal(startedEv.gameName, 'Teeworlds');
    assert.equal(startedEv.exe, 'teeworlds-server');
    const listed = (await detections(games)).find((d) => d.pid === tee.pid);
    assert.equal(listed?.profileId, 'teeworlds');
    assert.equal(listed?.running, true);
    // The CLI shows the same, for people and (--json) for scripts.
    const cli = ['--grpc', `127.0.0.1:${h.grpcPort}`, '--state-dir', h.stateDir];
    const human = await promisify(execFile)(process.execPath, [HELPER_MAIN, 'games', ...cli]);
    assert.match(human.stdout, new RegExp(`Teeworlds  pid ${tee.pid}  teeworlds-server`));
    assert.match(human.stdout, /LAN discovery: broadcast 8303-8310/);
    const json = JSON.parse((await promisify(execFile)(process.execPath, [HELPER_MAIN, 'games', '--json', ...cli])).stdout) as { detections: { pid: number; profileId: string }[] };
    assert.ok(json.detections.some((d) => d.pid === tee.pid && d.profileId === 'teeworlds'));
    const profilesOut = (await promisify(execFile)(process.execPath, [HELPER_MAIN, 'games', 'profiles', ...cli])).stdout;
    assert.match(profilesOut, /minecraft-java\s+Minecraft: Java Edition\n\s+discovery: multicast 224\.0\.2\.60:4445/);

    // OpenArena: the Debian wrapper script execs /usr/lib/ioquake3/ioq3ded +set com_basegame baseoa
    // in the same process, so the detector must notice the exec. dedicated 1 = LAN only.
    const oa = start('unshare', ['--net', '--', '/usr/games/openarena-server', '+set', 'dedicated', '1', '+set', 'net_port', '27960', '+map', 'oa_dm1']);
    const oaEv = await until('Watch GAMES: openarena started', () => w.events.find((e) => e.pid === oa.pid && e.running), 10_000, 20);
    assert.equal(oaEv.profileId, 'openarena', 'ioq3ded with baseoa is OpenArena, not Quake III');

    // Wine/Proton: the process's argv[0] is the Windows path of the game's exe.
    const wine = start('sleep', ['600'], 'C:\\Games\\Half-Life 2\\hl2.exe');
    const wineEv = await until('Watch GAMES: hl2.exe started', () => w.events.find((e) => e.pid === wine.pid && e.running), 10_000, 20);
    assert.equal(wineEv.exe, 'hl2.exe');
    const wine2 = start('sh', ['-c', 'read x', '-game', 'cstrike'], 'C:\\Steam\\steamapps\\common\\Counter-Strike Source\\hl2.exe');
    const wine2Ev = await until('Watch GAMES: CS:S hl2.exe started', () => w.events.find((e) => e.pid === wine2.pid && e.running), 10_000, 20);
    assert.equal(wine2Ev.profileId, 'counter-strike-source', 'the -game argument tells Source games apart');

    const pids = new Set((await detections(games)).map((d) => d.pid));
    for (const c of [tee, oa, wine, wine2]) assert.ok(pids.has(c.pid!), `pid ${c.pid} listed`);

    for (const c of [tee, oa, wine, wine2]) await killByPid(c);
    for (const c of [tee, oa, wine, wine2]) await until(`Watch GAMES: ${c.pid} stopped`, () => w.events.find((e) => e.pid === c.pid && !e.running), 10_000, 20);
    const left = new Set((await detections(games)).map((d) => d.pid));
    for (const c of [tee, oa, wine, wine2]) assert.ok(!left.has(c.pid!), `pid ${c.pid} no longer listed`);
    console.log(`# game start → Watch GAMES event: ${latency} ms (scan every 2 s)`);
  } finally {
    w.close();
    games.close();
  }
});

const goodCustom = (): GameProfile =>
  GameProfile.fromPartial({
    name: 'LANrage Test Game',
    broadcastPorts: [47777],
    discoveryGroups: [{ group: '239.1.2.3', port: 47778 }],
    ports: [{ protocol: TransportProtocol.TRANSPORT_PROTOCOL_UDP, first: 47777, last: 47780 }],
    linuxExecutables: ['lanrage-test-game'],
    windowsExecutables: ['LanrageTestGame.exe'],
  });

test('custom profiles: hostile ones get INVALID_ARGUMENT and change nothing; a good one persists across a restart and detects its game', async () => {
  const h = await startHelper({ pwaDir: null });
  helpers.push(h);
  let games = new GameServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  const list = async (): Promise<GameProfile[]> => (await call<ListGameProfilesResponse>((cb) => games.listGameProfiles({}, cb))).profiles;
  const before = await list();
  assert.ok(before.length >= 60, `${before.length} built-in profiles`);
  assert.ok(before.every((p) => !p.custom && p.sources.length > 0));
  const create = (p: GameProfile, md = auth(h.token)): Promise<CreateCustomGameProfileResponse> => call((cb) => games.createCustomGameProfile({ profile: p }, md, cb));
  const refused = async (p: GameProfile, re: RegExp): Promise<void> => {
    await assert.rejects(create(p), (err: ServiceError) => {
      assert.equal(err.code, Status.INVALID_ARGUMENT, err.details);
      assert.match(err.details, re);
      return true;
    });
  };
  const g = goodCustom();
  await refused({ ...g, name: 'bell\u0007\u001b[31mred' }, /name: contains control/);
  await refused({ ...g, name: 'x'.repeat(200_000) }, /name: is 200000 characters long/);
  await refused({ ...g, broadcastPorts: [0] }, /broadcastPorts\[0\]: 0 is not a port|udpBroadcastPorts\[0\]: 0 is not a port/);
  await refused({ ...g, broadcastPorts: [70000] }, /70000 is not a port/);
  await refused({ ...g, ports: [{ protocol: TransportProtocol.TRANSPORT_PROTOCOL_UDP, first: 2400, last: 2300 }] }, /ends before it starts/);
  await refused({ ...g, ports: [{ protocol: TransportProtocol.TRANSPORT_PROTOCOL_TCP, first: 1, last: 65535 }] }, /covers 65535 ports/);
  await refused({ ...g, ports: [{ protocol: TransportProtocol.TRANSPORT_PROTOCOL_UNSPECIFIED, first: 5, last: 5 }] }, /proto/);
  await refused({ ...g, broadcastPorts: Array.from({ length: 10_000 }, (_, i) => (i % 60000) + 1) }, /has 10000 entries/);
  await refused({ ...g, linuxExecutables: Array.from({ length: 10_000 }, (_, i) => `g${i}`) }, /has 10000 entries/);
  await refused({ ...g, discoveryGroups: [{ group: '8.8.8.8', port: 53 }] }, /not an IPv4 multicast address/);
  await refused({ ...g, windowsExecutables: ['C:\\evil\\x.exe'] }, /must be a file name/);
  await refused({ ...g, id: 'teeworlds' }, /custom profile ids start with "custom-"/);
  await refused({ ...g, linuxExecutables: [], windowsExecutables: [] }, /at least one executable/);
  // No token, no change.
  await assert.rejects(create(g, new Metadata()), (err: ServiceError) => err.code === Status.UNAUTHENTICATED);
  assert.deepEqual(await list(), before, 'nothing was stored');

  const created = (await create(g)).profile!;
  assert.equal(created.id, 'custom-lanrage-test-game');
  assert.equal(created.custom, true);
  await assert.rejects(create(g), (err: ServiceError) => err.code === Status.ALREADY_EXISTS);
  await assert.rejects(call((cb) => games.deleteCustomGameProfile({ id: 'teeworlds' }, auth(h.token), cb)), (err: ServiceError) => err.code === Status.INVALID_ARGUMENT && /built-in/.test(err.details));

  // Restart on the same state directory: the profile is still there and detects its game.
  games.close();
  await h.stop('SIGTERM');
  const h2 = await startHelper({ stateDir: h.stateDir, pwaDir: null });
  helpers.push(h2);
  games = new GameServiceClient(`127.0.0.1:${h2.grpcPort}`, credentials.createInsecure());
  const after2 = await list();
  const kept = after2.find((p) => p.id === 'custom-lanrage-test-game');
  assert.ok(kept, 'custom profile survived the restart');
  assert.deepEqual(kept.broadcastPorts, [47777]);
  assert.deepEqual(kept.discoveryGroups, [{ group: '239.1.2.3', port: 47778 }]);
  assert.deepEqual(kept.ports, [{ protocol: TransportProtocol.TRANSPORT_PROTOCOL_UDP, first: 47777, last: 47780 }]);
  assert.equal(after2.length, before.length + 1);
  const proc = start('sleep', ['600'], '/opt/test/lanrage-test-game');
  try {
    const seen = await pollDetections(games, proc.pid!);
    assert.equal(seen.profileId, 'custom-lanrage-test-game');
  } finally {
    await killByPid(proc);
  }
  await call((cb) => games.deleteCustomGameProfile({ id: 'custom-lanrage-test-game' }, auth(h2.token), cb));
  assert.equal((await list()).length, before.length);
  await assert.rejects(call((cb) => games.deleteCustomGameProfile({ id: 'custom-lanrage-test-game' }, auth(h2.token), cb)), (err: ServiceError) => err.code === Status.NOT_FOUND);
  games.close();
});

async function pollDetections(c: GameServiceClient, pid: number): Promise<GameDetection> {
  // Detection runs every 2 s; the bound is for a loaded machine (the loop ends when it is seen).
  const end = Date.now() + 30_000;
  for (;;) {
    const d = (await detections(c)).find((x) => x.pid === pid);
    if (d) return d;
    if (Date.now() > end) throw new Error(`pid ${pid} not detected in 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('game sessions: a real game server played and stopped is a stored session (Watch GAMES, ListGameSessions, CLI); one still running when the helper stops is kept too, and both survive a restart', async (t) => {
  if (!requireOrSkip(existsSync('/usr/games/teeworlds-server') && existsSync('/usr/bin/unshare') && process.getuid?.() === 0, 'root, teeworlds-server and unshare (Debian teeworlds-server, util-linux)', t)) return;
  const h = await startHelper({ pwaDir: null });
  helpers.push(h);
  let games = new GameServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  const c = new WatchServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  const stream = c.watch({ topics: [WatchTopic.WATCH_TOPIC_GAMES], maxDurationSeconds: 600 });
  const ended: GameSession[] = [];
  stream.on('data', (r: WatchResponse) => void (r.gameSession && ended.push(r.gameSession)));
  stream.on('error', () => {});
  const sessions = async (req: Partial<ListGameSessionsRequest> = {}): Promise<ListGameSessionsResponse> =>
    call<ListGameSessionsResponse>((cb) => games.listGameSessions({ pageSize: 0, pageToken: '', profileId: '', ...req }, cb));
  try {
    assert.deepEqual((await sessions()).sessions, []);
    // In the helper's own network namespace (a game elsewhere is not played here), on a free port.
    const tee = start('/usr/games/teeworlds-server', ['sv_register 0', `sv_port ${await freePort()}`, 'bindaddr 127.0.0.1']);
    await pollDetections(games, tee.pid!);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 3000));
    await killByPid(tee);
    const ev = await until('Watch GAMES: the session ended', () => ended.find((s) => s.profileId === 'teeworlds'), 30_000, 20);
    const played = Date.now() - t0;
    assert.equal(ev.gameName, 'Teeworlds');
    assert.ok(ev.durationSeconds >= 3 && ev.durationSeconds * 1000 <= played + 3000, `${ev.durationSeconds} s for a game that ran ~${played} ms (detection every 2 s)`);
    assert.deepEqual(ev.players, [], 'nobody else played: not in a party');
    const listed = (await sessions()).sessions;
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.id, ev.id);
    assert.equal(listed[0]!.endedAt!.getTime() - listed[0]!.startedAt!.getTime() >= 3000, true);

    // The CLI: people and scripts.
    const cli = ['--grpc', `127.0.0.1:${h.grpcPort}`, '--state-dir', h.stateDir];
    const human = (await promisify(execFile)(process.execPath, [HELPER_MAIN, 'games', '--sessions', ...cli])).stdout;
    assert.match(human, /Teeworlds {2}\d+ s {2}played alone/);
    const json = JSON.parse((await promisify(execFile)(process.execPath, [HELPER_MAIN, 'games', 'sessions', '--game', 'teeworlds', '--json', ...cli])).stdout) as { sessions: { profileId: string }[] };
    assert.deepEqual(json.sessions.map((s) => s.profileId), ['teeworlds']);

    // Bad requests change nothing and say why.
    await assert.rejects(sessions({ pageSize: 100_000 }), (err: ServiceError) => err.code === Status.INVALID_ARGUMENT && /page_size/.test(err.details));
    await assert.rejects(sessions({ pageToken: 'drop table' }), (err: ServiceError) => err.code === Status.INVALID_ARGUMENT && /page_token/.test(err.details));

    // A game still running when the helper stops: its session ends with the helper and is kept.
    const wine = start('sleep', ['600'], 'C:\\Games\\Half-Life 2\\hl2.exe');
    await pollDetections(games, wine.pid!);
    stream.cancel();
    c.close();
    games.close();
    await h.stop('SIGTERM');
    await killByPid(wine);
    const h2 = await startHelper({ stateDir: h.stateDir, pwaDir: null });
    helpers.push(h2);
    games = new GameServiceClient(`127.0.0.1:${h2.grpcPort}`, credentials.createInsecure());
    const after = (await sessions()).sessions;
    assert.deepEqual(after.map((s) => s.profileId), ['source-engine', 'teeworlds'], 'newest first, both kept across the restart');
    const page1 = await sessions({ pageSize: 1 });
    assert.equal(page1.sessions[0]!.profileId, 'source-engine');
    const page2 = await sessions({ pageSize: 1, pageToken: page1.nextPageToken });
    assert.deepEqual(page2.sessions.map((s) => s.profileId), ['teeworlds']);
    assert.equal(page2.nextPageToken, '');
  } finally {
    stream.cancel();
    c.close();
    games.close();
  }
});
