import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProfileFile } from '../../helper/games/load-profiles.js';
import { ProfileMatcher, type ProcInfo } from '../../helper/games/match.js';
import { PollingGameDetector, type Detection, type ProcessSource } from '../../helper/games/detector.js';
import { FULL_READ_MS, LinuxProcSource, loadavgKey, RECHECK_MS, YIELD_EVERY } from '../../helper/games/proc-source.js';
import { GameCatalog, MemoryProfileStore } from '../../helper/games/catalog.js';

const builtins = loadProfileFile();

class ListSource implements ProcessSource {
  readonly platform = 'linux' as const;
  procs: ProcInfo[] = [];
  list(): ProcInfo[] {
    return this.procs;
  }
}

test('detector: started once per process, stopped when it goes, re-matched when the profiles change', async () => {
  const src = new ListSource();
  const catalog = new GameCatalog(builtins, new MemoryProfileStore());
  const det = new PollingGameDetector(src, new ProfileMatcher(catalog.all(), 'linux'), 60_000, () => 1000);
  const events: string[] = [];
  det.on('started', (d: Detection) => events.push(`+${d.pid}:${d.profileId}`));
  det.on('stopped', (d: Detection) => events.push(`-${d.pid}:${d.profileId}`));
  const tee: ProcInfo = { pid: 10, exe: 'teeworlds-server', argv0: '/usr/games/teeworlds-server', cmdline: '/usr/games/teeworlds-server' };
  const mine: ProcInfo = { pid: 11, exe: 'sleep', argv0: 'mygame', cmdline: 'mygame' };
  src.procs = [tee, mine];
  await det.scan();
  await det.scan();
  assert.deepEqual(events, ['+10:teeworlds']);
  assert.deepEqual(det.running().map((d) => d.pid), [10]);

  // A custom profile for pid 11's name: the next scan finds it without the process restarting.
  catalog.addCustom({ id: 'custom-mygame', name: 'My game', discovery: { udpBroadcastPorts: [5000], multicastGroups: [] }, gamePorts: [], executables: { windows: [], linux: ['mygame'] } });
  det.setMatcher(new ProfileMatcher(catalog.all(), 'linux'));
  await det.scan();
  assert.deepEqual(events, ['+10:teeworlds', '+11:custom-mygame']);

  // An exec in place (same pid, new identity) is a stop and a start.
  src.procs = [{ pid: 10, exe: 'ioq3ded', argv0: '/usr/lib/ioquake3/ioq3ded', cmdline: '/usr/lib/ioquake3/ioq3ded +set com_basegame baseoa' }, mine];
  await det.scan();
  assert.deepEqual(events.slice(2), ['-10:teeworlds', '+10:openarena']);
  src.procs = [];
  await det.scan();
  assert.deepEqual(events.slice(4).sort(), ['-10:openarena', '-11:custom-mygame']);
  assert.deepEqual(det.running(), []);
});

test('detector: a failing source keeps the last state and reports the error', async () => {
  const src = new ListSource();
  const det = new PollingGameDetector(src, new ProfileMatcher(builtins, 'linux'), 60_000);
  src.procs = [{ pid: 10, exe: 'openttd', argv0: 'openttd', cmdline: 'openttd -D' }];
  await det.scan();
  const errors: Error[] = [];
  det.on('error', (e) => errors.push(e));
  src.list = () => {
    throw new Error('EMFILE');
  };
  await det.scan();
  assert.equal(errors[0]?.message, 'EMFILE');
  assert.deepEqual(det.running().map((d) => d.profileId), ['openttd']);
});

/** Writes a fake /proc/PID under `root`: its exe link and NUL-separated command line. */
function fakeProc(root: string): (pid: number, exe: string, argv: string[]) => void {
  return (pid, exe, argv) => {
    const d = join(root, String(pid));
    mkdirSync(d, { recursive: true });
    try {
      unlinkSync(join(d, 'exe'));
    } catch {
      // first time
    }
    symlinkSync(exe, join(d, 'exe'));
    writeFileSync(join(d, 'cmdline'), argv.map((a) => `${a}\0`).join(''));
  };
}

test('/proc source: reads exe and argv, notices an exec while a process is young, trusts settled ones, re-reads Wine argv', async () => {
  const root = mkdtempSync(join(tmpdir(), 'lanrage-proc-'));
  try {
    const proc = fakeProc(root);
    mkdirSync(join(root, 'self'));
    proc(100, '/usr/bin/sh', ['/bin/sh', '/usr/games/openarena-server']);
    proc(200, '/usr/lib/wine/wine64-preloader', ['/usr/lib/wine/wine64-preloader', 'Z:\\x.exe']);
    let now = 0;
    const src = new LinuxProcSource(root, () => now);
    const byPid = async (): Promise<Map<number, ProcInfo>> => new Map((await src.list()).map((p) => [p.pid, p]));
    assert.deepEqual((await byPid()).get(100), { pid: 100, exe: 'sh', argv0: '/bin/sh', cmdline: '/bin/sh /usr/games/openarena-server' });

    // The wrapper execs the engine 1 s later: same pid, new exe link → read again.
    now = 1000;
    proc(100, '/usr/lib/ioquake3/ioq3ded', ['/usr/lib/ioquake3/ioq3ded', '+set', 'com_basegame', 'baseoa']);
    assert.equal((await byPid()).get(100)?.exe, 'ioq3ded');
    // Wine rewrites argv without an exec: re-read on every scan.
    writeFileSync(join(root, '200', 'cmdline'), 'C:\\Games\\hl2.exe\0-game\0cstrike\0');
    assert.equal((await byPid()).get(200)?.argv0, 'C:\\Games\\hl2.exe');

    // Settled (older than RECHECK_MS): its entry is reused without reading it again.
    now = 1000 + RECHECK_MS;
    const before = (await byPid()).get(100);
    proc(100, '/usr/bin/other', ['other']);
    assert.equal((await byPid()).get(100), before, 'a settled process is not re-read');
    // Gone from /proc → gone from the list.
    rmSync(join(root, '100'), { recursive: true });
    assert.equal((await byPid()).has(100), false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('/proc source: a long scan lets the event loop run between reads (relayed packets are forwarded on the same thread)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'lanrage-proc-'));
  try {
    const n = YIELD_EVERY * 3 + 1;
    for (let pid = 1000; pid < 1000 + n; pid++) {
      mkdirSync(join(root, String(pid)));
      symlinkSync('/usr/bin/true', join(root, String(pid), 'exe'));
      writeFileSync(join(root, String(pid), 'cmdline'), 'true\0');
    }
    const src = new LinuxProcSource(root, () => 0);
    let ran = 0;
    const tick = (): void => {
      ran++;
      if (ran < 100) setImmediate(tick);
    };
    setImmediate(tick);
    const list = await src.list();
    const during = ran;
    assert.equal(list.length, n, 'every process is listed');
    assert.ok(during >= 3, `other callbacks ran ${during} times during the scan`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('detector: scans slow down to the idle interval while no game starts or stops, and speed up when one does', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const src = new ListSource();
    const scans: number[] = [];
    let t = 0;
    src.list = () => {
      scans.push(t);
      return src.procs;
    };
    const det = new PollingGameDetector(src, new ProfileMatcher(builtins, 'linux'), 2000, () => t, 6000);
    const advance = async (ms: number): Promise<void> => {
      for (let i = 0; i < ms / 500; i++) {
        t += 500;
        mock.timers.tick(500);
        for (let j = 0; j < 5; j++) await Promise.resolve();
      }
    };
    det.start();
    await advance(20_000);
    assert.deepEqual(scans, [0, 2000, 8000, 14000, 20000], 'at rest: backing off to every 6 s');
    // A game starts: noticed at the next scan, after which the pace is fast again.
    src.procs = [{ pid: 10, exe: 'openttd', argv0: 'openttd', cmdline: 'openttd -D' }];
    scans.length = 0;
    const started: number[] = [];
    det.on('started', () => started.push(t));
    await advance(12_000);
    assert.deepEqual(started, [26000], 'noticed at the next scan');
    assert.deepEqual(scans, [26000, 28000, 32000], 'fast again after the start, then backing off');
    det.stop();
  } finally {
    mock.timers.reset();
  }
});

test('/proc source: skips the listing while /proc/loadavg says no process came or went, re-reading only young and Wine processes; lists fully every 30 s', async () => {
  const root = mkdtempSync(join(tmpdir(), 'lanrage-proc-'));
  try {
    const proc = fakeProc(root);
    const loadavg = (threads: number, lastPid: number): void => writeFileSync(join(root, 'loadavg'), `0.10 0.20 0.30 1/${threads} ${lastPid}\n`);
    proc(100, '/usr/bin/bash', ['bash']);
    proc(200, '/usr/lib/wine/wine64-preloader', ['/usr/lib/wine/wine64-preloader', 'Z:\\x.exe']);
    proc(300, '/usr/bin/sh', ['/bin/sh', '/usr/games/openarena-server']);
    loadavg(90, 300);
    let now = 0;
    const src = new LinuxProcSource(root, () => now);
    const first = await src.list();
    assert.equal(first.length, 3);
    // Settled: nothing changed, the very same list comes back (the detector skips on identity).
    now = RECHECK_MS + 1;
    assert.equal(await src.list(), first, 'nothing changed: the same array');

    // A process appears in /proc, but loadavg did not move (as it would have): the listing is skipped.
    proc(400, '/usr/games/openttd', ['openttd', '-D']);
    now += 2000;
    assert.equal((await src.list()).some((p) => p.pid === 400), false, 'listing skipped while loadavg stands still');
    // The Wine process's argv is still re-read without a listing.
    writeFileSync(join(root, '200', 'cmdline'), 'C:\\Games\\hl2.exe\0-game\0cstrike\0');
    now += 2000;
    const wine = await src.list();
    assert.equal(wine.find((p) => p.pid === 200)?.argv0, 'C:\\Games\\hl2.exe');
    assert.notEqual(wine, first, 'a changed entry rebuilds the list');
    // The last PID moved: listed again.
    loadavg(91, 400);
    now += 2000;
    const withNew = await src.list();
    assert.equal(withNew.find((p) => p.pid === 400)?.exe, 'openttd');

    // A young process execs while loadavg stands still (an exec is no fork): re-read without a listing.
    proc(400, '/usr/lib/ioquake3/ioq3ded', ['/usr/lib/ioquake3/ioq3ded', '+set', 'com_basegame', 'baseoa']);
    now += 2000;
    assert.equal((await src.list()).find((p) => p.pid === 400)?.exe, 'ioq3ded');

    // A process goes without loadavg moving (not possible on Linux bar a PID wrap): the 30 s full read finds it.
    rmSync(join(root, '100'), { recursive: true });
    now += 2000;
    assert.equal((await src.list()).some((p) => p.pid === 100), true, 'still skipped');
    now += FULL_READ_MS;
    assert.equal((await src.list()).some((p) => p.pid === 100), false, 'a full read at least every 30 s');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('/proc source: a full listing that finds nothing new hands back the same array; a new process rebuilds it', async () => {
  const root = mkdtempSync(join(tmpdir(), 'lanrage-proc-'));
  try {
    for (const pid of [10, 11]) {
      mkdirSync(join(root, String(pid)));
      symlinkSync('/usr/bin/true', join(root, String(pid), 'exe'));
      writeFileSync(join(root, String(pid), 'cmdline'), 'true\0');
    }
    let now = 0;
    const src = new LinuxProcSource(root, () => now);
    const a = await src.list();
    now = 1000;
    assert.equal(await src.list(), a, 'young processes re-read, unchanged: same array');
    mkdirSync(join(root, '12'));
    symlinkSync('/usr/bin/true', join(root, '12', 'exe'));
    writeFileSync(join(root, '12', 'cmdline'), 'true\0');
    const b = await src.list();
    assert.notEqual(b, a);
    assert.equal(b.length, 3);
    const kept = a.find((p) => p.pid === 10);
    assert.equal(b.find((p) => p.pid === 10), kept, 'unchanged entries keep their object (cached matches)');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('loadavgKey: total threads and last PID', () => {
  assert.equal(loadavgKey('0.32 0.38 0.17 1/86 4712\n'), '86 4712');
  assert.equal(loadavgKey('garbage'), null);
});

test('detector: the same list as last time is not matched again', async () => {
  let iterations = 0;
  const procs: ProcInfo[] = [{ pid: 10, exe: 'openttd', argv0: 'openttd', cmdline: 'openttd -D' }];
  const counted = new Proxy(procs, {
    get(t, p, r) {
      if (p === Symbol.iterator) iterations++;
      return Reflect.get(t, p, r) as unknown;
    },
  });
  const src: ProcessSource = { platform: 'linux', list: () => counted };
  const det = new PollingGameDetector(src, new ProfileMatcher(builtins, 'linux'), 60_000, () => 1000);
  await det.scan();
  assert.equal(iterations, 1);
  assert.deepEqual(det.running().map((d) => d.profileId), ['openttd']);
  await det.scan();
  await det.scan();
  assert.equal(iterations, 1, 'unchanged list: nothing to match');
  det.setMatcher(new ProfileMatcher([], 'linux'));
  await det.scan();
  assert.equal(iterations, 2, 'new profiles: matched again');
  assert.deepEqual(det.running(), []);
});
