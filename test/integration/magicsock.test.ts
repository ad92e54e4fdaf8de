// Two MagicSocks on loopback, each with a plain UDP socket standing in for its WireGuard, and a
// real STUN answerer: what a user of the data path would check, minus the NATs (test/lab has those).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { createLogger } from '../../helper/core/log.js';
import { DiscoBox, generateDiscoKey } from '../../helper/net/disco.js';
import { MagicSock, type MagicPeer, type MagicSockOptions, type PathState } from '../../helper/net/magicsock.js';
import { startStunAnswerer, type StunAnswerer } from '../lab/drivers/stun-answerer.js';
import { until } from '../lib/wait.js';

interface FakeWg {
  sock: dgram.Socket;
  port: number;
  got: Array<{ data: Buffer; from: string }>;
  endpoints: Map<string, string>;
  /** Every endpoint the helper set, in order. */
  told: Array<{ key: string; ep: string }>;
}

async function fakeWg(): Promise<FakeWg> {
  const sock = dgram.createSocket('udp4');
  const w: FakeWg = { sock, port: 0, got: [], endpoints: new Map(), told: [] };
  sock.on('message', (data, r) => w.got.push({ data, from: `${r.address}:${r.port}` }));
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  w.port = sock.address().port;
  return w;
}

function wgPacket(type: number, tag: string): Buffer {
  return Buffer.concat([Buffer.from([type, 0, 0, 0]), Buffer.from(tag.padEnd(28, '.'))]);
}

interface Side {
  name: string;
  ms: MagicSock;
  wg: FakeWg;
  disco: ReturnType<typeof generateDiscoKey>;
  wgKey: string;
  paths: PathState[];
  cmmOut: string[][];
}

async function side(name: string, stun: StunAnswerer, relay: (to: string, cands: string[], primed: string[]) => void, extra: Partial<MagicSockOptions> = {}): Promise<Side> {
  const wg = await fakeWg();
  const disco = generateDiscoKey();
  const s: Side = { name, wg, disco, wgKey: generateDiscoKey().publicKey, paths: [], cmmOut: [], ms: null as unknown as MagicSock };
  s.ms = new MagicSock({
    port: 0,
    bindAddress: '127.0.0.1',
    allowLoopbackCandidates: true,
    discoPrivateKey: disco.privateKey,
    log: createLogger({ side: name }),
    stunServers: () => stun.ports.map((p) => `127.0.0.1:${p}`),
    wgPort: () => wg.port,
    setWgEndpoint: async (key, ep) => {
      wg.endpoints.set(key, ep);
      wg.told.push({ key, ep });
    },
    sendCallMeMaybe: (peer, cands, _spray, primed) => {
      s.cmmOut.push(cands);
      // The control plane relays it a moment later.
      setTimeout(() => relay(peer, cands, primed ?? []), 2);
    },
    ...extra,
  });
  s.ms.on('path', (_id: string, st: PathState) => s.paths.push(st));
  return s;
}

function peerOf(s: Side, cands: string[]): MagicPeer {
  return { id: s.name, discoPublicKey: s.disco.publicKey, wgPublicKey: s.wgKey, candidates: cands };
}

test('magicsock on loopback: direct path, WireGuard both ways through the proxy, held packets, unknown keys, ping', async (t) => {
  const stun = await startStunAnswerer('127.0.0.1', [0, 0]);
  const sides: Record<string, Side> = {};
  const relay = (from: string) => (to: string, cands: string[], primed: string[]): void => sides[to]?.ms.handleCallMeMaybe(from, cands, 0, primed);
  const A = await side('A', stun, relay('A'));
  const B = await side('B', stun, relay('B'));
  sides.A = A;
  sides.B = B;
  const stranger = dgram.createSocket('udp4');
  stranger.bind(0, '127.0.0.1');
  await once(stranger, 'listening');
  const strangerGot: Buffer[] = [];
  stranger.on('message', (m) => strangerGot.push(m));
  t.after(async () => {
    await A.ms.close();
    await B.ms.close();
    A.wg.sock.close();
    B.wg.sock.close();
    stranger.close();
    await stun.close();
  });

  const { port: pa } = await A.ms.start();
  const { port: pb } = await B.ms.start();
  const ca = await A.ms.localCandidates();
  const cb = await B.ms.localCandidates();
  assert.deepEqual(ca, [`127.0.0.1:${pa}`], 'bound to 127.0.0.1: that is the one candidate (STUN agrees)');
  assert.deepEqual(cb, [`127.0.0.1:${pb}`]);
  assert.deepEqual(A.ms.natInfo(), { mapping: 'endpoint-independent', publicAddress: `127.0.0.1:${pa}` }, 'two STUN ports saw the same mapping');

  // A learns about B first; B does not know A yet, so A's pings are dropped as unknown keys.
  const t0 = Date.now();
  A.ms.setPeers([peerOf(B, cb)]);
  const proxyAB = await until('A sets WireGuard\'s endpoint for B', () => A.wg.endpoints.get(B.wgKey));
  assert.match(proxyAB, /^127\.0\.0\.1:\d+$/);
  const [pxIp, pxPort] = [proxyAB.split(':')[0] as string, Number(proxyAB.split(':')[1])];
  // WireGuard A's handshake initiation goes out before any path exists: it must be held, not lost.
  A.wg.sock.send(wgPacket(1, 'held-1'), pxPort, pxIp);
  A.wg.sock.send(wgPacket(4, 'held-2'), pxPort, pxIp);
  await until('A holds the packets', () => A.ms.counters().wg_held === 2);
  assert.equal(A.ms.path('B')?.kind, 'connecting');
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(B.ms.counters().disco_unknown_key > 0, 'B dropped pings from a key it does not know');
  assert.equal(B.ms.counters().disco_pong_tx, 0, 'and did not answer them');

  B.ms.setPeers([peerOf(A, ca)]);
  await until('both direct', () => A.ms.path('B')?.kind === 'direct' && B.ms.path('A')?.kind === 'direct', 30_000);
  const timeToDirect = Date.now() - t0 - 300;
  // How fast is printed, not asserted: a loaded machine is slower, not wrong.
  t.diagnostic(`time to direct after B learned A: ${timeToDirect} ms`);
  assert.equal(A.ms.path('B')?.endpoint, `127.0.0.1:${pb}`);
  assert.equal(B.ms.path('A')?.endpoint, `127.0.0.1:${pa}`);

  // The held packets arrive at WireGuard B, in order, from B's proxy endpoint for A.
  const proxyBA = await until('B sets WireGuard\'s endpoint for A', () => B.wg.endpoints.get(A.wgKey));
  await until('held packets delivered', () => B.wg.got.length >= 2);
  assert.deepEqual(B.wg.got.map((g) => g.data.subarray(4, 10).toString()), ['held-1', 'held-2']);
  assert.ok(B.wg.got.every((g) => g.from === proxyBA), `from ${proxyBA}`);
  assert.equal(A.ms.counters().wg_flushed, 2);

  // And back: WireGuard B answers the endpoint it saw; WireGuard A receives it from its endpoint for B.
  const [bxIp, bxPort] = [proxyBA.split(':')[0] as string, Number(proxyBA.split(':')[1])];
  B.wg.sock.send(wgPacket(2, 'reply'), bxPort, bxIp);
  await until('reply at A', () => A.wg.got.length >= 1);
  assert.equal(A.wg.got[0]?.data.subarray(4, 9).toString(), 'reply');
  assert.equal(A.wg.got[0]?.from, proxyAB);
  // A burst of data packets, all delivered once.
  for (let i = 0; i < 50; i++) A.wg.sock.send(wgPacket(4, `d${i}`), pxPort, pxIp);
  await until('burst delivered', () => B.wg.got.length >= 52);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(B.wg.got.length, 52);

  // Only WireGuard may use a proxy port: a stranger's packet to it goes nowhere.
  const before = B.wg.got.length;
  stranger.send(wgPacket(4, 'intruder'), pxPort, pxIp);
  // ...and a WireGuard-typed packet to the public port from an address no peer uses is dropped.
  stranger.send(wgPacket(4, 'intruder'), pb, '127.0.0.1');
  await until('B counts the unknown source', () => B.ms.counters().wg_unknown_source >= 1);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(B.wg.got.length, before);

  // A disco packet sealed with a key A does not know: counted, ignored, unanswered.
  const stateBefore = A.ms.path('B');
  const unknownBefore = A.ms.counters().disco_unknown_key;
  const mallory = generateDiscoKey();
  const mbox = new DiscoBox(mallory.privateKey);
  mbox.addPeer(A.disco.publicKey);
  stranger.send(mbox.seal(A.disco.publicKey, { type: 'ping', txid: Buffer.alloc(12, 1) }), pa, '127.0.0.1');
  // One claiming to be B but not sealed by B's key: fails authentication.
  const forged = mbox.seal(A.disco.publicKey, { type: 'pong', txid: Buffer.alloc(12, 2), observed: '127.0.0.1:1' });
  Buffer.from(B.disco.publicKey, 'base64').copy(forged, 4);
  stranger.send(forged, pa, '127.0.0.1');
  await until('counted', () => A.ms.counters().disco_unknown_key === unknownBefore + 1 && A.ms.counters().disco_bad_auth === 1);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(strangerGot.length, 0, 'no answer to the stranger');
  assert.deepEqual(A.ms.path('B'), stateBefore, 'no state change');

  // ping(): answered over the active path, with an RTT.
  const res = await A.ms.ping('B', 3, 10_000);
  assert.equal(res.length, 3);
  for (const [i, r] of res.entries()) {
    assert.equal(r.seq, i + 1);
    assert.equal(r.answered, true);
    assert.equal(r.path, 'direct');
    assert.equal(r.via, `127.0.0.1:${pb}`);
    assert.ok(typeof r.rttMs === 'number' && r.rttMs >= 0, `rtt ${r.rttMs}`);
  }
  await assert.rejects(A.ms.ping('nobody', 1), /unknown peer/);

  const ctr = A.ms.counters();
  for (const k of ['rx_disco', 'tx_disco', 'rx_wireguard', 'tx_wireguard', 'rx_stun', 'disco_ping_tx', 'disco_pong_rx'] as const) assert.ok((ctr[k] ?? 0) > 0, `${k} counted`);
  assert.ok(A.paths.some((p) => p.kind === 'connecting') && A.paths.at(-1)?.kind === 'direct', 'path events emitted');

  // Membership change: B leaves A's party; its proxy port closes and its state is gone.
  A.ms.setPeers([]);
  assert.equal(A.ms.path('B'), undefined);
  const n = B.wg.got.length;
  A.wg.sock.send(wgPacket(4, 'after'), pxPort, pxIp);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(B.wg.got.length, n, 'nothing forwarded for a removed peer');
});

test('magicsock on loopback, fast path (nft stand-in): after a peer\'s handshake roams WireGuard to the proxy port, its answer points it back at the peer', async (t) => {
  const stun = await startStunAnswerer('127.0.0.1', [0, 0]);
  const sides: Record<string, Side> = {};
  const relay = (from: string) => (to: string, cands: string[], primed: string[]): void => sides[to]?.ms.handleCallMeMaybe(from, cands, 0, primed);
  // The rules are not installed (no root needed): what is checked is what WireGuard is told.
  const fast = { fastPath: true, nft: async () => {} };
  const A = await side('A', stun, relay('A'), fast);
  const B = await side('B', stun, relay('B'), fast);
  sides.A = A;
  sides.B = B;
  t.after(async () => {
    await A.ms.close();
    await B.ms.close();
    A.wg.sock.close();
    B.wg.sock.close();
    await stun.close();
  });
  const { port: pa } = await A.ms.start();
  const { port: pb } = await B.ms.start();
  const [ca, cb] = [await A.ms.localCandidates(), await B.ms.localCandidates()];
  A.ms.setPeers([peerOf(B, cb)]);
  B.ms.setPeers([peerOf(A, ca)]);
  await until('both on the fast path', () => A.ms.path('B')?.fastPath === true && B.ms.path('A')?.fastPath === true, 30_000);
  const bFast = `127.0.0.1:${pb}`;
  await until('WireGuard A points at B', () => A.wg.endpoints.get(B.wgKey) === bFast);
  // Each side's first endpoint for the other was its proxy port.
  const proxies = { A: A.wg.told.find((x) => x.key === B.wgKey)?.ep ?? '', B: B.wg.told.find((x) => x.key === A.wgKey)?.ep ?? '' };
  assert.match(proxies.A, /^127\.0\.0\.1:\d+$/);
  assert.match(proxies.B, /^127\.0\.0\.1:\d+$/);

  // B's handshake initiation reaches A's public port from B's (as nftables would send it) and A's
  // helper hands it to WireGuard A through its proxy port.
  const [bxIp, bxPort] = [proxies.B.split(':')[0] as string, Number(proxies.B.split(':')[1])];
  B.wg.sock.send(wgPacket(1, 'init'), bxPort, bxIp);
  const init = await until('the initiation at WireGuard A', () => A.wg.got.find((g) => g.data[0] === 1));
  assert.equal(init.from, proxies.A);
  // WireGuard A does what wireguard-go does: roams to where the message came from, then answers there.
  A.wg.endpoints.set(B.wgKey, init.from);
  const [axIp, axPort] = [proxies.A.split(':')[0] as string, Number(proxies.A.split(':')[1])];
  A.wg.sock.send(wgPacket(2, 'resp'), axPort, axIp);
  await until('the response at WireGuard B', () => B.wg.got.some((g) => g.data[0] === 2));
  // Without the push, WireGuard A would talk through the helper until B's next data packet.
  await until('WireGuard A points at B\'s public endpoint again', () => A.wg.endpoints.get(B.wgKey) === bFast, 5000);
  assert.ok(A.ms.counters().fastpath_repoints >= 1);
  assert.equal(B.ms.path('A')?.endpoint, `127.0.0.1:${pa}`);
});

test('magicsock on loopback: a peer that never answers becomes unreachable with a reason', async (t) => {
  const stun = await startStunAnswerer('127.0.0.1', [0, 0]);
  const wg = await fakeWg();
  const silent = dgram.createSocket('udp4'); // a "peer" that receives and never answers
  silent.bind(0, '127.0.0.1');
  await once(silent, 'listening');
  const key = generateDiscoKey();
  const ms = new MagicSock({
    port: 0,
    bindAddress: '127.0.0.1',
    allowLoopbackCandidates: true,
    discoPrivateKey: key.privateKey,
    log: createLogger({ side: 'lonely' }),
    stunServers: () => stun.ports.map((p) => `127.0.0.1:${p}`),
    wgPort: () => wg.port,
    setWgEndpoint: async () => {},
    sendCallMeMaybe: () => {},
    timing: { probeWindowMs: 800, probeIntervalMs: 100 },
  });
  t.after(async () => {
    await ms.close();
    wg.sock.close();
    silent.close();
    await stun.close();
  });
  await ms.start();
  await ms.localCandidates();
  ms.setPeers([{ id: 'ghost', discoPublicKey: generateDiscoKey().publicKey, wgPublicKey: generateDiscoKey().publicKey, candidates: [`127.0.0.1:${silent.address().port}`] }]);
  const s = await until('unreachable', () => (ms.path('ghost')?.kind === 'unreachable' ? ms.path('ghost') : undefined), 3000);
  assert.match(s.reason, /no direct path answered.*no relay is configured/);
  const r = await ms.ping('ghost', 1, 200);
  assert.deepEqual(r, [{ seq: 1, answered: false, rttMs: null, via: null, path: 'none' }]);
});

test('public socket: a priming datagram leaves before anything sent after it, then the normal TTL is back', async (t) => {
  const { PublicSocket } = await import('../../helper/net/socket.js');
  const rx = dgram.createSocket('udp4');
  rx.bind(0, '127.0.0.1');
  await once(rx, 'listening');
  const got: string[] = [];
  rx.on('message', (m) => got.push(m.toString()));
  const s = new PublicSocket({ bindAddress: '127.0.0.1', port: 0, primingTtl: 2, onMessage: () => {}, onError: (e) => assert.fail(e) });
  t.after(async () => {
    await s.close();
    rx.close();
  });
  await s.bind();
  const port = rx.address().port;
  s.send(Buffer.from('before'), port, '127.0.0.1');
  s.prime(Buffer.from('prime-1'), port, '127.0.0.1');
  s.prime(Buffer.from('prime-2'), port, '127.0.0.1');
  s.send(Buffer.from('after-1'), port, '127.0.0.1'); // waits for the primes
  await s.whenPrimed();
  s.send(Buffer.from('after-2'), port, '127.0.0.1');
  await until('all five', () => got.length === 5);
  assert.deepEqual(got, ['before', 'prime-1', 'prime-2', 'after-1', 'after-2']);
  assert.equal(s.primesSent, 2);
});
