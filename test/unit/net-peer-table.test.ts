import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../helper/core/clock.js';
import { makePolicy } from '../../helper/net/candidates.js';
import { DiscoBox, generateDiscoKey } from '../../helper/net/disco.js';
import type { PeerEndpoint } from '../../helper/net/endpoint.js';
import { newCounters, type MagicPeer } from '../../helper/net/magicsock-api.js';
import { PeerTable, type PeerTableIo } from '../../helper/net/peer-table.js';
import type { ViewState } from '../../helper/net/relaypath.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {}, child() { return quiet; } };
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
/** A WireGuard transport-data datagram (type 4): what a hold queue mostly keeps. */
const WG_DATA = Buffer.concat([Buffer.from([4, 0, 0, 0]), Buffer.alloc(28)]);

function setup() {
  const clock = new ManualClock();
  const c = newCounters();
  const own = generateDiscoKey();
  const box = new DiscoBox(own.privateKey);
  const log: string[] = [];
  const pings: Array<{ id: string; ep: string; txid: Buffer }> = [];
  const sent: Array<{ to: string; b: Buffer }> = [];
  const endpoints: Array<{ wg: string; ep: string }> = [];
  const views: Array<{ id: string; v: ViewState }> = [];
  const paused: boolean[] = [];
  const fastSet: Array<string> = [];
  const proxyRemoved: string[] = [];
  let port = 40000;
  let updates = 0;
  let relayUp = false;
  let natChecks = 0;
  let pathChanges = 0;
  const relayed: Buffer[] = [];
  const io: PeerTableIo = {
    clock,
    log: quiet,
    c,
    policy: makePolicy({}),
    closed: () => false,
    box,
    pathOptions: { clock, gate: false, isLan: () => false, localNat: () => 'endpoint-independent' },
    disco: {
      probe: (rec, ep, txid) => pings.push({ id: rec.id, ep, txid }),
      callMeMaybe: async () => {},
      added: (rec) => log.push(`disco.added ${rec.id}`),
    },
    relay: {
      pathFor: () => ({ state: () => ({ up: relayUp, target: null, rttMs: null }), close: () => {}, setPaused: (p: boolean) => paused.push(p) }) as unknown as PeerEndpoint['relay'],
      removed: (rec) => log.push(`relay.removed ${rec.id}`),
      up: () => relayUp,
      sendWireGuard: (_rec, m) => (relayed.push(m), true),
      noRelayWhy: () => 'no relay is configured',
      updateTargets: () => void updates++,
    },
    relayServer: () => null,
    birthday: { added: (rec) => log.push(`bday.added ${rec.id}`), removed: (rec) => log.push(`bday.removed ${rec.id}`), pathLost: (rec) => log.push(`bday.pathLost ${rec.id}`) },
    proxy: { add: async () => ++port, remove: (id) => void proxyRemoved.push(id) },
    fast: { set: async (id, ep) => void fastSet.push(`${id}=${ep}`) },
    reconcileFast: (rec) => log.push(`reconcileFast ${rec.id}`),
    sockFor: () => ({ send: (b, p, ip) => sent.push({ to: `${ip}:${p}`, b }), prime: () => {} }),
    setWgEndpoint: async (wg, ep) => void endpoints.push({ wg, ep }),
    viewChanged: (id, v) => views.push({ id, v }),
    natSuspect: () => void natChecks++,
    isLan: (ep) => ep.startsWith('10.'),
    pathsChanged: () => void pathChanges++,
  };
  const peer = (id: string, candidates = ['198.51.100.7:41641']): MagicPeer => {
    const k = generateDiscoKey().publicKey;
    return { id, discoPublicKey: k, wgPublicKey: generateDiscoKey().publicKey, candidates };
  };
  return { clock, c, box, own, io, table: new PeerTable(io), peer, log, pings, sent, endpoints, views, paused, fastSet, proxyRemoved, relayed, updates: () => updates, natChecks: () => natChecks, pathChanges: () => pathChanges, setRelayUp: (u: boolean) => (relayUp = u) };
}

test('peer table: valid peers are added (disco key, proxy port → WireGuard endpoint, birthday, kept calls), bad ones rejected', async () => {
  const s = setup();
  const bob = s.peer('bob');
  s.table.set([bob, { ...s.peer('mallory'), discoPublicKey: s.box.publicKey }, { ...s.peer('bad id!') }, { ...s.peer('x'), wgPublicKey: 'nope' }]);
  assert.equal(s.c.peers_rejected, 3);
  assert.equal(s.table.size, 1);
  assert.ok(s.box.hasPeer(bob.discoPublicKey));
  assert.equal(s.table.byDisco(bob.discoPublicKey)?.id, 'bob');
  assert.deepEqual(s.log.filter((l) => !l.startsWith('reconcileFast')), ['bday.added bob', 'disco.added bob']);
  assert.equal(s.updates(), 1, 'relayed targets follow the new peer list');
  assert.ok(s.pings.some((p) => p.ep === '198.51.100.7:41641'), 'its path machine starts probing');
  await tick();
  assert.deepEqual(s.endpoints, [{ wg: bob.wgPublicKey, ep: '127.0.0.1:40001' }]);
});

test('peer table: a new WireGuard key moves WireGuard\'s endpoint; a new disco key replaces the peer; a missing peer is removed everywhere', async () => {
  const s = setup();
  const bob = s.peer('bob');
  s.table.set([bob]);
  await tick();
  const rec = s.table.get('bob');
  assert.ok(rec);
  const newWg = generateDiscoKey().publicKey;
  s.table.set([{ ...bob, wgPublicKey: newWg, candidates: ['198.51.100.7:41641', '198.51.100.7:41642'] }]);
  await tick();
  assert.equal(s.table.get('bob'), rec, 'the same peer, changed');
  assert.deepEqual(rec.machine.candidates(), ['198.51.100.7:41641', '198.51.100.7:41642']);
  assert.deepEqual(s.endpoints.at(-1), { wg: newWg, ep: '127.0.0.1:40001' });
  const rekeyed = { ...bob, discoPublicKey: generateDiscoKey().publicKey };
  s.table.set([rekeyed]);
  const rec2 = s.table.get('bob');
  assert.notEqual(rec2, rec);
  assert.ok(rec.removed);
  assert.ok(!s.box.hasPeer(bob.discoPublicKey), 'the old disco key is forgotten');
  assert.equal(s.table.byDisco(bob.discoPublicKey), undefined);
  rec2!.fastEp = '198.51.100.7:41641';
  s.table.learnAddress(rec2!, '198.51.100.7:41641');
  assert.equal(s.table.byAddress('198.51.100.7:41641'), 'bob');
  s.table.set([]);
  assert.equal(s.table.size, 0);
  assert.equal(s.table.byAddress('198.51.100.7:41641'), undefined);
  assert.deepEqual(s.proxyRemoved, ['bob', 'bob']);
  assert.deepEqual(s.fastSet, ['bob=null'], 'a fast-path peer leaves the nft table');
  assert.ok(s.log.includes('relay.removed bob') && s.log.includes('bday.removed bob'));
});

test('peer table: the first pong makes the path direct: held packets leave on it, its address speaks for the peer, the view is told once', async () => {
  const s = setup();
  s.table.set([s.peer('bob')]);
  const rec = s.table.get('bob')!;
  rec.hold.push(WG_DATA);
  const ping = s.pings.find((p) => p.ep === '198.51.100.7:41641')!;
  s.clock.advance(5);
  assert.equal(rec.machine.onPong('198.51.100.7:41641', ping.txid), 5);
  assert.equal(rec.activeKey, '198.51.100.7:41641');
  assert.deepEqual(s.sent.map((x) => x.to), ['198.51.100.7:41641']);
  assert.ok(s.sent[0]?.b.equals(WG_DATA));
  assert.equal(s.c.wg_flushed, 1);
  assert.equal(s.table.byAddress('198.51.100.7:41641'), 'bob');
  assert.ok(s.log.includes('reconcileFast bob'));
  assert.equal(s.paused.at(-1), true, 'the relayed path rests while the direct one carries everything');
  const direct = s.views.filter((v) => v.v.kind === 'direct');
  assert.equal(direct.length, 1);
  assert.equal(direct[0]?.v.endpoint, '198.51.100.7:41641');
  s.table.emitView(rec);
  assert.equal(s.views.filter((v) => v.v.kind === 'direct').length, 1, 'an unchanged view is not told again');
  assert.equal(s.table.viewOf(rec).kind, 'direct');
});

test('peer table: a suspect direct path hands the traffic to the relay once the relay answers, and takes it back when the re-probe is answered', () => {
  const s = setup();
  s.table.set([s.peer('bob')]);
  const rec = s.table.get('bob')!;
  const first = s.pings.find((p) => p.ep === '198.51.100.7:41641')!;
  s.clock.advance(5);
  rec.machine.onPong('198.51.100.7:41641', first.txid);
  assert.equal(rec.activeKey, '198.51.100.7:41641');
  s.clock.advance(2000);
  // Traffic went unanswered; no relay yet: the traffic stays direct, but the relay wakes up to be confirmed.
  rec.machine.suspect();
  assert.equal(rec.activeKey, '198.51.100.7:41641');
  assert.equal(s.paused.at(-1), false, 'the relayed path is probed at once');
  // The relay answers: the traffic moves to it (WireGuard off the fast path), our NAT is rechecked.
  s.setRelayUp(true);
  s.table.relayUnderSuspect(rec);
  assert.equal(rec.active, null);
  assert.equal(rec.suspectEp, '198.51.100.7:41641');
  assert.equal(s.natChecks(), 1);
  assert.ok(s.log.filter((l) => l === 'reconcileFast bob').length >= 3);
  assert.ok(!s.log.includes('bday.pathLost bob'), 'not lost: still re-probing');
  // The re-probe is answered (a false alarm): direct again, the relay rests.
  const reprobe = s.pings.filter((p) => p.ep === '198.51.100.7:41641').at(-1)!;
  s.clock.advance(3);
  rec.machine.onPong('198.51.100.7:41641', reprobe.txid);
  assert.equal(rec.activeKey, '198.51.100.7:41641');
  assert.equal(rec.suspectEp, null);
  assert.equal(s.paused.at(-1), true);
  // Dead this time: suspect, relay, then lost after two unanswered re-probes (logged as lost once).
  s.clock.advance(6000);
  rec.machine.suspect();
  s.table.relayUnderSuspect(rec);
  assert.equal(rec.active, null);
  s.clock.advance(2000);
  assert.equal(rec.machine.state().kind, 'connecting');
  assert.equal(rec.suspectEp, null);
  assert.deepEqual(s.log.filter((l) => l === 'bday.pathLost bob'), ['bday.pathLost bob']);
  assert.equal(s.paused.at(-1), false);
});

test('peer table: with no direct path, held packets go through a confirmed relayed path, else stay held', () => {
  const s = setup();
  s.table.set([s.peer('bob')]);
  const rec = s.table.get('bob')!;
  rec.hold.push(WG_DATA);
  s.table.flushHeld(rec);
  assert.deepEqual(s.relayed, []);
  s.setRelayUp(true);
  s.table.flushHeld(rec);
  assert.equal(s.relayed.length, 1);
  assert.equal(s.c.wg_flushed, 1);
  assert.deepEqual(s.sent, []);
});

test('peer table: addresses a peer spoke from are remembered up to a bound; the forgotten one no longer maps to it', () => {
  const s = setup();
  s.table.set([s.peer('bob')]);
  const rec = s.table.get('bob')!;
  for (let i = 0; i < 33; i++) s.table.learnAddress(rec, `198.51.100.7:${1000 + i}`);
  assert.equal(s.table.byAddress('198.51.100.7:1000'), undefined);
  assert.equal(s.table.byAddress('198.51.100.7:1032'), 'bob');
  assert.equal(s.table.byAddress('198.51.100.7:1001'), 'bob');
});

test('peer table: a failed WireGuard endpoint change is counted and reported as false', async () => {
  const s = setup();
  s.table.set([s.peer('bob')]);
  const rec = s.table.get('bob')!;
  await tick();
  s.io.setWgEndpoint = async () => {
    throw new Error('wg set failed');
  };
  assert.equal(await s.table.pushWgEndpoint(rec, '198.51.100.7:41641'), false);
  assert.equal(s.c.wg_endpoint_errors, 1);
});

test('peer table: direct internet paths that answer are listed for local-view (not suspect, not LAN), peers without a working path are the ones to call; every path change and removal is told', () => {
  const s = setup();
  s.table.set([s.peer('bob'), s.peer('lan', ['10.1.0.9:41641'])]);
  assert.deepEqual([...s.table.directPeers()], []);
  const called = () => [...s.table.peersToCall()].map((r) => r.id).sort();
  assert.deepEqual(called(), ['bob', 'lan'], 'new candidates go to peers still looking');
  const bob = s.table.get('bob')!;
  const lan = s.table.get('lan')!;
  s.clock.advance(5);
  const told = s.pathChanges();
  bob.machine.onPong('198.51.100.7:41641', s.pings.find((p) => p.ep === '198.51.100.7:41641')!.txid);
  lan.machine.onPong('10.1.0.9:41641', s.pings.find((p) => p.ep === '10.1.0.9:41641')!.txid);
  assert.ok(s.pathChanges() >= told + 2);
  assert.deepEqual([...s.table.directPeers()], ['bob'], 'a LAN path holds no public address');
  assert.deepEqual(called(), [], 'working direct paths need no call');
  s.clock.advance(2000);
  bob.machine.suspect();
  assert.deepEqual([...s.table.directPeers()], [], 'a suspect path does not count');
  assert.deepEqual(called(), ['bob'], 'a suspect path (maybe a rebinding) is called');
  const beforeRemove = s.pathChanges();
  s.table.set([s.peer('lan', ['10.1.0.9:41641'])]);
  assert.ok(s.pathChanges() > beforeRemove, 'a removed peer is told');
});
