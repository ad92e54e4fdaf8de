// The WireGuard engine for real: wireguard-go in two network namespaces made here, joined by a
// veth, pinging each other's virtual IPs through the tunnel the engine built. Needs root,
// wireguard-go, ip, ping and ss: fails loudly in CI without them, skips loudly elsewhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { generateKeyPair, uapiSocketPath, type WgPeerStats } from '../../helper/wg/index.js';
import { requireOrSkip } from '../lib/repo.js';
import { commandExists, createLab, createTunnel, isRoot, nsExec, pidAlive, startDriver, type Lab } from './wg-lab.js';

function missing(): string[] {
  const m: string[] = [];
  if (!isRoot()) m.push('root (network namespaces)');
  for (const [cmd, pkg] of [['wireguard-go', 'wireguard-go'], ['ip', 'iproute2'], ['ping', 'iputils-ping'], ['ss', 'iproute2']] as const) {
    if (!commandExists(cmd)) m.push(`${cmd} (Debian ${pkg})`);
  }
  return m;
}

function ready(t: { skip(msg: string): void }): boolean {
  const m = missing();
  return requireOrSkip(m.length === 0, m.join(', '), t);
}

// -i 0.2 (root only) keeps the test short; -W bounds each reply's wait.
const ping = (ns: string, ip: string, count = 3, wait = 2) => nsExec(ns, 'ping', ['-n', '-i', '0.2', '-c', String(count), '-W', String(wait), ip]);

async function linkInNs(ns: string, name: string): Promise<{ mtu: number; up: boolean } | null> {
  const r = await nsExec(ns, 'ip', ['-j', 'link', 'show', 'dev', name]);
  if (r.code !== 0) return null;
  const [l] = JSON.parse(r.stdout) as Array<{ mtu: number; flags: string[] }>;
  return { mtu: l!.mtu, up: l!.flags.includes('UP') };
}

const wireguardGoIn = (ns: string): number[] =>
  execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
    .split('\n')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'wireguard-go';
      } catch {
        return false;
      }
    })
    .map(Number);

function peer(stats: WgPeerStats[], key: string): WgPeerStats {
  const p = stats.find((s) => s.publicKey === key);
  assert.ok(p, `no stats for peer ${key}`);
  return p;
}

async function withLab(fn: (lab: Lab) => Promise<void>): Promise<void> {
  const lab = createLab();
  try {
    await fn(lab);
  } finally {
    await lab.cleanup();
  }
}

test('two namespaces talk through the engine: handshake, counters, endpoint switch, peer removal, close', async (t) => {
  if (!ready(t)) return;
  await withLab(async (lab) => {
    const keys = { a: generateKeyPair(), b: generateKeyPair() };
    const started = Date.now();
    const tun = await createTunnel(lab, keys);
    const { da, db } = tun;

    // The engine's listen port is the one wireguard-go's socket really holds.
    for (const [ns, port, pid] of [[lab.a, tun.portA, tun.pidA], [lab.b, tun.portB, tun.pidB]] as const) {
      assert.ok(port > 0 && port <= 65535);
      const ss = await nsExec(ns, 'ss', ['-Huanp', `sport = :${port}`]);
      assert.match(ss.stdout, new RegExp(`"wireguard-go",pid=${pid},`), `nothing of wireguard-go ${pid} bound on ${port} in ${ns}: ${ss.stdout}`);
    }
    assert.deepEqual(await linkInNs(lab.a, tun.ifA), { mtu: 1420, up: true });
    // The /16 on the address gives the route to the whole party subnet.
    assert.match((await nsExec(lab.a, 'ip', ['route', 'show', 'dev', tun.ifA])).stdout, /^10\.66\.0\.0\/16 /m);

    const ab = await ping(lab.a, '10.66.0.2');
    assert.equal(ab.code, 0, `A -> B through the tunnel failed:\n${ab.stdout}${ab.stderr}`);
    const ba = await ping(lab.b, '10.66.0.1');
    assert.equal(ba.code, 0, `B -> A through the tunnel failed:\n${ba.stdout}${ba.stderr}`);

    const s1 = peer(await da.call<WgPeerStats[]>('stats'), tun.pubB);
    assert.equal(s1.endpoint, `192.0.2.2:${tun.portB}`);
    assert.ok(s1.lastHandshakeMs !== null && s1.lastHandshakeMs >= started - 1000 && s1.lastHandshakeMs <= Date.now() + 1000, `handshake time ${s1.lastHandshakeMs}`);
    assert.ok(s1.rxBytes > 0 && s1.txBytes > 0);
    assert.equal((await ping(lab.a, '10.66.0.2')).code, 0);
    const s2 = peer(await da.call<WgPeerStats[]>('stats'), tun.pubB);
    assert.ok(s2.rxBytes > s1.rxBytes && s2.txBytes > s1.txBytes, `counters did not grow: ${JSON.stringify([s1, s2])}`);
    assert.equal(peer(await db.call<WgPeerStats[]>('stats'), tun.pubA).endpoint, `192.0.2.1:${tun.portA}`);

    // Hostile input is refused before it reaches the device.
    const hostile = await da.try('setEndpoint', { publicKey: tun.pubB, endpoint: 'host.example:1' });
    assert.equal(hostile.ok, false);
    assert.match(hostile.error!, /WgInputError/);

    // The path switch steers traffic: to a dead port, nothing arrives...
    await da.call('setEndpoint', { publicKey: tun.pubB, endpoint: `192.0.2.2:1` });
    assert.equal(peer(await da.call<WgPeerStats[]>('stats'), tun.pubB).endpoint, '192.0.2.2:1');
    assert.notEqual((await ping(lab.a, '10.66.0.2', 2, 1)).code, 0, 'ping worked with the endpoint pointing at a dead port');
    // ...to B's second address, traffic flows, and B sees A arrive from A's second address.
    await da.call('setEndpoint', { publicKey: tun.pubB, endpoint: `198.51.100.2:${tun.portB}` });
    assert.equal(peer(await da.call<WgPeerStats[]>('stats'), tun.pubB).endpoint, `198.51.100.2:${tun.portB}`);
    assert.equal((await ping(lab.a, '10.66.0.2')).code, 0, 'no traffic after switching to the second path');
    assert.equal(peer(await db.call<WgPeerStats[]>('stats'), tun.pubA).endpoint, `198.51.100.1:${tun.portA}`);

    const unknown = await da.try('setEndpoint', { publicKey: generateKeyPair().publicKey, endpoint: '192.0.2.2:1' });
    assert.equal(unknown.ok, false);
    assert.match(unknown.error!, /has no peer/);

    // Removing the peer stops traffic both ways.
    await da.call('removePeer', { publicKey: tun.pubB });
    assert.deepEqual(await da.call('stats'), []);
    assert.notEqual((await ping(lab.a, '10.66.0.2', 2, 1)).code, 0, 'A still reaches B after removePeer');
    assert.notEqual((await ping(lab.b, '10.66.0.1', 2, 1)).code, 0, 'B still reaches A after A removed B');
    await da.call('removePeer', { publicKey: tun.pubB }); // removing twice is fine
    assert.deepEqual(await da.call('stats'), [], 'removePeer must not create the peer');

    // close(): interface, UAPI socket and process are all gone.
    for (const [d, ns, name, pid] of [[da, lab.a, tun.ifA, tun.pidA], [db, lab.b, tun.ifB, tun.pidB]] as const) {
      assert.ok(existsSync(uapiSocketPath(name)));
      await d.call('close');
      assert.equal(await linkInNs(ns, name), null, `${name} still exists after close`);
      assert.equal(existsSync(uapiSocketPath(name)), false, `${uapiSocketPath(name)} still exists after close`);
      assert.equal(pidAlive(pid), false, `wireguard-go ${pid} still runs after close`);
      assert.deepEqual(wireguardGoIn(ns), []);
      const again = await d.try('stats');
      assert.match(again.error ?? '', /closed/);
      await d.end();
    }
  });
});

test('a helper killed with -9 leaves wireguard-go running; removeStaleInterface cleans it up', async (t) => {
  if (!ready(t)) return;
  await withLab(async (lab) => {
    const name = lab.ifName('s');
    const key = generateKeyPair().privateKey;
    const opts = { name, privateKey: key, address: '10.66.0.9/16', mtu: 1400 };
    const crashed = await startDriver(lab.a);
    const { pid } = await crashed.call<{ pid: number }>('create', opts);
    await crashed.kill9();

    // The leftover is real: orphaned process, live interface, socket file.
    assert.equal(pidAlive(pid), true, 'wireguard-go died with its helper: nothing to clean, the test proves nothing');
    assert.notEqual(await linkInNs(lab.a, name), null);
    assert.ok(existsSync(uapiSocketPath(name)));

    const next = await startDriver(lab.a);
    const blocked = await next.try('create', opts);
    assert.equal(blocked.ok, false);
    assert.match(blocked.error!, /already exists/);

    assert.equal(await next.call('removeStale', { name }), true);
    assert.equal(pidAlive(pid), false, 'the orphaned wireguard-go survived');
    assert.equal(await linkInNs(lab.a, name), null);
    assert.equal(existsSync(uapiSocketPath(name)), false);
    assert.equal(await next.call('removeStale', { name }), false, 'a second cleanup found something');

    // The restarted helper takes the name back.
    const again = await next.call<{ pid: number }>('create', opts);
    assert.ok(pidAlive(again.pid));

    // wireguard-go itself dying: the engine logs it, refuses work, and close() still cleans up.
    process.kill(again.pid, 'SIGKILL');
    for (let i = 0; i < 100 && !next.stderr.some((l) => l.includes('exited unexpectedly')); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(next.stderr.some((l) => l.includes('wireguard-go exited unexpectedly')), 'the death of wireguard-go was not logged');
    const dead = await next.try('stats');
    assert.match(dead.error ?? '', /has exited/);
    assert.ok(existsSync(uapiSocketPath(name)), 'SIGKILL should leave the socket file behind');
    await next.call('close');
    assert.equal(existsSync(uapiSocketPath(name)), false);
    assert.equal(await linkInNs(lab.a, name), null);
    await next.end();
  });
});

test('a name served by a device in another namespace is refused, not taken over', async (t) => {
  if (!ready(t)) return;
  await withLab(async (lab) => {
    const name = lab.ifName('x');
    const da = await startDriver(lab.a);
    const db = await startDriver(lab.b);
    await da.call('create', { name, privateKey: generateKeyPair().privateKey, address: '10.66.0.1/16', mtu: 1420 });
    const r = await db.try('create', { name, privateKey: generateKeyPair().privateKey, address: '10.66.0.2/16', mtu: 1420 });
    assert.equal(r.ok, false);
    assert.match(r.error!, /served by a running WireGuard device/);
    assert.deepEqual(wireguardGoIn(lab.b), [], 'the refused start left a wireguard-go behind');
    assert.deepEqual(await da.call('stats'), []); // A's device still answers on its socket
    await da.call('close');
    await da.end();
    await db.end();
  });
});
