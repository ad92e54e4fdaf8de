import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProfileFile, parseProfileData, ProfileDataError } from '../../helper/games/load-profiles.js';
import { checkProfile } from '../../helper/games/validate-profile.js';
import { ProfileMatcher } from '../../helper/games/match.js';
import { activeDiscovery } from '../../helper/games/discovery.js';

const builtins = loadProfileFile();

test('the built-in data file loads, ids are unique and every entry says where its facts come from', () => {
  assert.ok(builtins.length >= 9, `only ${builtins.length} profiles`);
  assert.equal(new Set(builtins.map((p) => p.id)).size, builtins.length);
  for (const p of builtins) {
    assert.equal(p.custom, false);
    assert.ok(p.sources.length > 0, p.id);
    assert.ok(p.sources.every((s) => s.kind !== 'user'), p.id);
  }
  const tee = builtins.find((p) => p.id === 'teeworlds');
  assert.deepEqual(tee?.discovery.udpBroadcastPorts, [8303, 8304, 8305, 8306, 8307, 8308, 8309, 8310]);
  assert.deepEqual(builtins.find((p) => p.id === 'minecraft-java')?.discovery.multicastGroups, [{ group: '224.0.2.60', port: 4445 }]);
});

test('a malformed data file fails with the file, the entry and the field named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lanrage-profiles-'));
  try {
    const file = join(dir, 'profiles.json');
    const good = { id: 'ok-game', name: 'OK', discovery: { udpBroadcastPorts: [1], multicastGroups: [] }, gamePorts: [], executables: { windows: [], linux: ['ok'] }, sources: [{ kind: 'docs', ref: 'x' }] };
    const bad = { ...good, id: 'bad-game', discovery: { udpBroadcastPorts: [70000], multicastGroups: [{ group: '10.0.0.1', port: 1 }] } };
    writeFileSync(file, JSON.stringify({ version: 1, profiles: [good, bad] }));
    assert.throws(
      () => loadProfileFile(file),
      (err: unknown) => {
        assert.ok(err instanceof ProfileDataError);
        assert.match(err.message, new RegExp(file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
        assert.match(err.message, /entry 1 \("bad-game"\): discovery\.udpBroadcastPorts\[0\]: 70000 is not a port number/);
        assert.match(err.message, /entry 1 \("bad-game"\): discovery\.multicastGroups\[0\]\.group: "10\.0\.0\.1" is not an IPv4 multicast address/);
        assert.doesNotMatch(err.message, /entry 0/);
        return true;
      },
    );
    writeFileSync(file, '{"version": 1, "profiles": [');
    assert.throws(() => loadProfileFile(file), /not valid JSON/);
    assert.throws(() => parseProfileData({ version: 1, profiles: [good, good] }, 'f'), /entry 1 \("ok-game"\): id: "ok-game" is already used by entry 0/);
    assert.throws(() => parseProfileData({ version: 1, profiles: [{ ...good, sorces: [] }] }, 'f'), /entry 0 \("ok-game"\): sorces: unknown field/);
    assert.throws(() => parseProfileData({ version: 2, profiles: [] }, 'f'), /version: 2/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hostile custom profiles are refused with the field named', () => {
  const base = { id: 'custom-x', name: 'X', discovery: { udpBroadcastPorts: [1234], multicastGroups: [] }, gamePorts: [{ port: 1234, proto: 'udp' }], executables: { windows: ['x.exe'], linux: [] } };
  const bad = (over: Record<string, unknown>, re: RegExp): void => {
    const r = checkProfile({ ...base, ...over }, { custom: true });
    assert.equal(r.ok, false, JSON.stringify(over).slice(0, 80));
    if (!r.ok) assert.match(r.errors.join('\n'), re);
  };
  bad({ name: 'evil\u0007name' }, /name: contains control/);
  bad({ name: 'a\u202Eexe.txt' }, /name: contains control or bidirectional/);
  bad({ name: 'x'.repeat(100_000) }, /name: is 100000 characters long/);
  bad({ discovery: { udpBroadcastPorts: [0], multicastGroups: [] } }, /udpBroadcastPorts\[0\]: 0 is not a port/);
  bad({ discovery: { udpBroadcastPorts: [70000], multicastGroups: [] } }, /70000 is not a port/);
  bad({ discovery: { udpBroadcastPorts: Array.from({ length: 10_000 }, (_, i) => i + 1), multicastGroups: [] } }, /has 10000 entries/);
  bad({ gamePorts: [{ port: 2400, last: 2300, proto: 'udp' }] }, /ends before it starts/);
  bad({ gamePorts: [{ port: 1, last: 65535, proto: 'udp' }] }, /covers 65535 ports/);
  bad({ gamePorts: [{ port: 1.5, proto: 'udp' }] }, /1\.5 is not a port/);
  bad({ executables: { windows: ['..\\..\\evil.exe'], linux: [] } }, /must be a file name/);
  bad({ executables: { windows: [], linux: [] } }, /at least one executable/);
  bad({ id: 'teeworlds' }, /custom profile ids start with "custom-"/);
  const ok = checkProfile(base, { custom: true });
  assert.ok(ok.ok);
  if (ok.ok) assert.deepEqual(ok.profile.sources, [{ kind: 'user', ref: 'entered by the user' }]);
});

test('matching: Linux binaries, Wine argv0 Windows paths, command-line hints', () => {
  const m = new ProfileMatcher(builtins, 'linux');
  assert.deepEqual(m.match({ pid: 1, exe: 'teeworlds-server', argv0: '/usr/games/teeworlds-server', cmdline: '/usr/games/teeworlds-server' }), { profileId: 'teeworlds', exe: 'teeworlds-server' });
  // Debian's openarena-server execs the engine shared with Quake III; the hint decides.
  assert.equal(m.match({ pid: 2, exe: 'ioq3ded', argv0: '/usr/lib/ioquake3/ioq3ded', cmdline: '/usr/lib/ioquake3/ioq3ded +set com_basegame baseoa' })?.profileId, 'openarena');
  assert.equal(m.match({ pid: 3, exe: 'ioq3ded', argv0: '/usr/lib/ioquake3/ioq3ded', cmdline: '/usr/lib/ioquake3/ioq3ded +map q3dm17' })?.profileId, 'ioquake3');
  // Wine/Proton: the exe link is the preloader, argv[0] the Windows path, any case.
  assert.equal(m.match({ pid: 4, exe: 'wine64-preloader', argv0: 'C:\\Games\\OpenTTD\\OPENTTD.EXE', cmdline: 'C:\\Games\\OpenTTD\\OPENTTD.EXE' })?.profileId, 'openttd');
  assert.equal(m.match({ pid: 5, exe: 'bash', argv0: 'bash', cmdline: 'bash' }), undefined);
  // Linux names are case-sensitive.
  assert.equal(m.match({ pid: 6, exe: 'OpenTTD', argv0: 'OpenTTD', cmdline: '' }), undefined);
  const w = new ProfileMatcher(builtins, 'windows');
  assert.equal(w.match({ pid: 7, exe: 'OpenTTD.exe', argv0: 'C:\\Program Files\\OpenTTD\\openttd.exe', cmdline: '' })?.profileId, 'openttd');
});

test('activeDiscovery: union of the running games\' ports and groups, sorted, no duplicates', () => {
  const d = activeDiscovery([{ profileId: 'openarena' }, { profileId: 'ioquake3' }, { profileId: 'minecraft-java' }, { profileId: 'gone' }], builtins);
  assert.deepEqual(d.udpPorts, [27960, 27961, 27962, 27963]);
  assert.deepEqual(d.groups, [{ group: '224.0.2.60', port: 4445 }]);
  assert.deepEqual(activeDiscovery([], builtins), { udpPorts: [], groups: [] });
});
