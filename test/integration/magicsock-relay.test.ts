// Relayed paths between two MagicSocks on loopback through a real coturn: the relay that answers
// is chosen over one that does not, WireGuard's first packets wait for the relay to be confirmed
// and then cross, user pings say "relayed", and a stranger's allocation on the same relay gets
// nothing into our WireGuard. No direct path exists (no candidates are exchanged).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { createLogger } from '../../helper/core/log.js';
import { mintTurnCredentials } from '../../helper/control/turn-credentials.js';
import { generateDiscoKey } from '../../helper/net/disco.js';
import { MagicSock, type MagicPeer, type MagicSockOptions, type PathState, type RelayOffer } from '../../helper/net/magicsock.js';
import { TurnClient } from '../../helper/net/turn/index.js';
import { findTurnserver, freePort, startCoturn, type Coturn } from '../lib/coturn.js';
import { requireOrSkip } from '../lib/repo.js';
import { until } from '../lib/wait.js';

interface Side {
  name: string;
  ms: MagicSock;
  wg: dgram.Socket;
  wgGot: Buffer[];
  endpoints: Map<string, string>;
  disco: ReturnType<typeof generateDiscoKey>;
  wgKey: string;
  paths: PathState[];
}

const wgPacket = (type: number, tag: string): Buffer => Buffer.concat([Buffer.from([type, 0, 0, 0]), Buffer.from(tag.padEnd(28, '.'))]);

async function side(name: string, offers: () => RelayOffer[], extra: Partial<MagicSockOptions> = {}): Promise<Side> {
  const wg = dgram.createSocket('udp4');
  const wgGot: Buffer[] = [];
  wg.on('message', (m) => wgGot.push(m));
  wg.bind(0, '127.0.0.1');
  await once(wg, 'listening');
  const disco = generateDiscoKey();
  const s: Side = { name, wg, wgGot, endpoints: new Map(), disco, wgKey: generateDiscoKey().publicKey, paths: [], ms: null as unknown as MagicSock };
  s.ms = new MagicSock({
    port: 0,
    bindAddress: '127.0.0.1',
    allowLoopbackCandidates: true,
    discoPrivateKey: disco.privateKey,
    log: createLogger({ side: name }),
    stunServers: () => [],
    wgPort: () => (wg.address() as { port: number }).port,
    setWgEndpoint: async (key, ep) => void s.endpoints.set(key, ep),
    sendCallMeMaybe: () => {},
    fetchRelayOffers: async () => offers(),
    ...extra,
  });
  s.ms.on('path', (_id: string, st: PathState) => s.paths.push(st));
  await s.ms.start();
  return s;
}

const peerOf = (s: Side): MagicPeer => ({ id: s.name, discoPublicKey: s.disco.publicKey, wgPublicKey: s.wgKey, candidates: [], relayed: [s.ms.relayedAddress()!] });

/**
 * A and B with allocations on `turn`, offered after a relay that answers nothing (deadPort) when
 * given; everything closed after the test.
 */
async function allocatedPair(t: { after(fn: () => Promise<void>): void }, turn: Coturn, o: { deadPort?: number; extra?: Partial<MagicSockOptions> } = {}): Promise<{ A: Side; B: Side }> {
  const offers = (id: string) => (): RelayOffer[] => {
    const c = mintTurnCredentials(turn.secret, id, Date.now(), 60);
    const offer = (port: number): RelayOffer => ({ host: '127.0.0.1', port, transports: ['udp', 'tcp'], username: c.username, password: c.password, realm: turn.realm, expiresAt: c.expiresAt * 1000 });
    return [...(o.deadPort ? [offer(o.deadPort)] : []), offer(turn.port)];
  };
  const A = await side('A', offers('device-a'), o.extra);
  const B = await side('B', offers('device-b'), o.extra);
  t.after(async () => {
    await A.ms.close();
    await B.ms.close();
    A.wg.close();
    B.wg.close();
    await turn.stop();
  });
  A.ms.startRelay();
  B.ms.startRelay();
  await until('both allocate', () => A.ms.relayedAddress() && B.ms.relayedAddress());
  return { A, B };
}

test('relayed paths through real coturn: the answering relay, held handshake, relayed ping, no stranger gets in', async (t) => {
  if (!requireOrSkip(findTurnserver() !== null, 'coturn (turnserver, Debian package coturn)', t)) return;
  const turn: Coturn = await startCoturn({ allowLoopbackPeers: true });
  const stranger = new TurnClient({ server: { host: '127.0.0.1', port: turn.port, transport: 'udp' }, getCredentials: async () => mintTurnCredentials(turn.secret, 'stranger', Date.now(), 60), log: createLogger({ side: 'stranger' }) });
  t.after(() => stranger.close());
  const { A, B } = await allocatedPair(t, turn, { deadPort: await freePort() });
  assert.equal(A.ms.relayStats()?.server, `udp:127.0.0.1:${turn.port}`, 'the relay that answered the measurement, over UDP');

  // A knows B (and its relayed address) before B knows A: A's WireGuard handshake must wait.
  A.ms.setPeers([peerOf(B)]);
  const proxyAB = await until("A's WireGuard endpoint for B", () => A.endpoints.get(B.wgKey));
  const [ip, port] = [proxyAB.split(':')[0] as string, Number(proxyAB.split(':')[1])];
  A.wg.send(wgPacket(1, 'handshake'), port, ip);
  await until('A holds it', () => A.ms.counters().wg_held === 1);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(B.wgGot.length, 0, 'nothing crosses before B permits A');
  B.ms.setPeers([peerOf(A)]);
  await until("B's WireGuard gets A's handshake through the relay", () => B.wgGot.some((m) => m.includes(Buffer.from('handshake'))));
  await until('A sees B relayed', () => A.paths.some((p) => p.kind === 'relayed'));
  const relayed = A.paths.find((p) => p.kind === 'relayed')!;
  assert.equal(relayed.endpoint, `udp:127.0.0.1:${turn.port}`);
  assert.match(relayed.reason, /^relayed through udp:127\.0\.0\.1:\d+: /);

  // Both ways, and the user's ping says which path answered.
  const proxyBA = await until("B's WireGuard endpoint for A", () => B.endpoints.get(A.wgKey));
  B.wg.send(wgPacket(4, 'data-from-b'), Number(proxyBA.split(':')[1]), '127.0.0.1');
  await until("A's WireGuard gets B's data", () => A.wgGot.some((m) => m.includes(Buffer.from('data-from-b'))));
  const pings = await A.ms.ping('B', 3);
  assert.ok(pings.every((p) => p.answered && p.path === 'relayed'), JSON.stringify(pings));

  // A stranger with its own valid allocation on the same relay sends to A's relayed address:
  // coturn delivers it (permissions are per IP), A drops it (not a party member's relayed address).
  await stranger.start();
  await stranger.permit([A.ms.relayedAddress()!]);
  const before = A.wgGot.length;
  const droppedBefore = A.ms.relayStats()?.rxDropUnknownPeer ?? 0;
  for (let i = 0; i < 5; i++) stranger.send(A.ms.relayedAddress()!, wgPacket(4, `evil-${i}`));
  await until('A drops the stranger', () => (A.ms.relayStats()?.rxDropUnknownPeer ?? 0) >= droppedBefore + 5, 5000);
  assert.equal(A.wgGot.length, before, "nothing from the stranger reaches A's WireGuard");
  assert.ok(A.ms.counters().tx_relay > 0 && B.ms.counters().rx_relay_wireguard > 0);
});

test('relayed paths through real coturn: confirmed without waiting for a probe round (the first probes leave before the relay has the permissions)', async (t) => {
  if (!requireOrSkip(findTurnserver() !== null, 'coturn (turnserver, Debian package coturn)', t)) return;
  const turn: Coturn = await startCoturn({ allowLoopbackPeers: true });
  // Scheduled probes a minute apart: only the probes sent when they can be answered (our
  // permission installed, the peer's ping arrived) can confirm the paths within the test.
  const { A, B } = await allocatedPair(t, turn, { extra: { relayTiming: { probeIntervalMs: 60_000 } } });
  A.ms.setPeers([peerOf(B)]);
  // A's first probe is dropped: B's allocation does not permit A yet.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(A.ms.path('B')?.kind, 'connecting');
  B.ms.setPeers([peerOf(A)]);
  await until('both relayed long before the next scheduled probe', () => A.ms.path('B')?.kind === 'relayed' && B.ms.path('A')?.kind === 'relayed', 20_000);
});
