// The TURN client against a real coturn (Debian's turnserver) on loopback: what a player relying on
// the relay would check. Each test starts its own coturn (test/lib/coturn.ts: a 0600 config file
// in a temp dir with pid/log/db, random free ports) and kills it by PID; the groups run concurrently.
// Loopback peers: the relay's own addresses are 127.0.0.1; 127.0.0.2/.3 play outsiders.

import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '../../helper/core/log.js';
import { mintTurnCredentials } from '../../helper/control/turn-credentials.js';
import { classify } from '../../helper/net/demux.js';
import { ATTR, attr, CLASS, decodeMessage, encodeMessage, errorCode, longTermKey, messageType, METHOD, readString } from '../../helper/net/turn/codec.js';
import { TurnClient, TurnError, type TurnCredentials, type TurnServer, type TurnTiming } from '../../helper/net/turn/index.js';
import { findTurnserver, startCoturn, type Coturn } from '../lib/coturn.js';
import { REPO_ROOT, requireOrSkip } from '../lib/repo.js';
import { until } from '../lib/wait.js';

const REALM = 'lanrage.test';
const log = createLogger({ test: 'turn-coturn' });

const TURNSERVER = findTurnserver();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** coturn on loopback; 127.0.0.2/.3 are outsiders that may be permitted. */
const startLoopbackCoturn = (extraArgs: string[] = []): Promise<Coturn> =>
  startCoturn({ realm: REALM, allowLoopbackPeers: true, allowedPeerIps: ['127.0.0.1-127.0.0.3'], extraArgs });

/** The helper's one public socket, as magicsock runs it: STUN and ChannelData it does not claim go to the TURN client. */
interface SharedSocket {
  sock: dgram.Socket;
  port: number;
  other: number;
  close(): void;
}

async function sharedSocket(handle: () => TurnClient | null): Promise<SharedSocket> {
  const sock = dgram.createSocket('udp4');
  const s: SharedSocket = { sock, port: 0, other: 0, close: () => sock.close() };
  sock.on('message', (m, r) => {
    const kind = classify(m);
    const c = handle();
    if ((kind === 'stun' || kind === 'channeldata') && c?.handleDatagram(m, `${r.address}:${r.port}`)) return;
    s.other++;
  });
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  s.port = sock.address().port;
  return s;
}

interface Player {
  name: string;
  client: TurnClient;
  creds: TurnCredentials[];
  got: Array<[string, string]>;
  events: string[];
  shared: SharedSocket | null;
}

async function player(name: string, turn: Coturn, how: 'shared' | 'udp' | 'tcp', o: { ttl?: number; timing?: Partial<TurnTiming>; mint?: (n: number) => TurnCredentials } = {}): Promise<Player> {
  const p: Player = { name, client: null as unknown as TurnClient, creds: [], got: [], events: [], shared: null };
  const server: TurnServer = { host: '127.0.0.1', port: turn.port, transport: how === 'tcp' ? 'tcp' : 'udp' };
  if (how === 'shared') p.shared = await sharedSocket(() => p.client);
  const shared = p.shared;
  p.client = new TurnClient({
    server,
    ...(shared ? { transport: { send: (b: Buffer, ip: string, port: number) => shared.sock.send(b, port, ip) } } : { bindAddress: '127.0.0.1' }),
    getCredentials: async () => {
      const c = o.mint ? o.mint(p.creds.length) : mintTurnCredentials(turn.secret, `${name}${p.creds.length}`, Date.now(), o.ttl ?? 600);
      p.creds.push(c);
      return c;
    },
    log: log.child({ player: name }),
    ...(o.timing ? { timing: o.timing } : {}),
  });
  p.client.on('data', (peer, d) => p.got.push([peer, d.toString()]));
  p.client.on('allocated', (r) => p.events.push(`allocated ${r}`));
  p.client.on('reallocated', (r, prev) => p.events.push(`reallocated ${r} was ${prev}`));
  p.client.on('lost', (why) => p.events.push(`lost ${why}`));
  return p;
}

async function closeAll(...ps: Player[]): Promise<void> {
  for (const p of ps) {
    await p.client.close();
    p.shared?.close();
  }
}

/** Sends from a to b's relayed address until one arrives (the first may beat the permission). */
async function exchange(a: Player, b: Player, tag: string): Promise<void> {
  const to = b.client.relayed as string;
  const from = a.client.relayed as string;
  const n = b.got.length;
  await until(`${a.name} → ${b.name} (${tag})`, () => {
    a.client.send(to, Buffer.from(tag));
    return b.got.slice(n).find(([peer, d]) => peer === from && d === tag);
  }, 5000);
}

/** What a previous run of the helper left behind: an allocation on this socket's 5-tuple. */
async function rawAllocate(sock: dgram.Socket, turn: Coturn, c: TurnCredentials): Promise<void> {
  const ask = async (m: Buffer): Promise<Buffer> => {
    const answer = new Promise<Buffer>((resolve) => sock.once('message', (b) => resolve(b)));
    sock.send(m, turn.port, '127.0.0.1');
    return answer;
  };
  const alloc = messageType(METHOD.ALLOCATE, CLASS.REQUEST);
  const challenge = decodeMessage(await ask(encodeMessage(alloc, randomBytes(12), { requestedTransport: 'udp' })))!;
  const nonce = readString(attr(challenge, ATTR.NONCE))!;
  const auth = { username: c.username, realm: REALM, nonce, key: longTermKey(c.username, REALM, c.password) };
  const ok = decodeMessage(await ask(encodeMessage(alloc, randomBytes(12), { requestedTransport: 'udp', lifetime: 600 }, auth)))!;
  assert.equal(errorCode(ok), null, 'the previous run allocated');
}

async function outsider(ip: string): Promise<{ sock: dgram.Socket; got: string[]; addr: string }> {
  const sock = dgram.createSocket('udp4');
  const got: string[] = [];
  sock.on('message', (m) => got.push(m.toString()));
  sock.bind(0, ip);
  await once(sock, 'listening');
  return { sock, got, addr: `${ip}:${sock.address().port}` };
}

describe('TURN client with a real coturn', { concurrency: true }, () => {
  const coturns: Coturn[] = [];
  after(async () => {
    for (const c of coturns) await c.stop();
  });

  test('players relay to each other over UDP (shared socket and own socket) and TCP; credentials are checked; permissions hold', async (t) => {
    if (!requireOrSkip(TURNSERVER !== null, 'coturn (turnserver, Debian package coturn)', t)) return;
    const turn = await startLoopbackCoturn();
    coturns.push(turn);
    // The shared secret lives in a file only root can read, never on the command line.
    assert.equal(statSync(join(turn.dir, 'turnserver.conf')).mode & 0o777, 0o600);
    assert.ok(!readFileSync(`/proc/${turn.pid}/cmdline`, 'utf8').includes(turn.secret), 'the secret is not in argv');
    const a = await player('alice', turn, 'shared');
    const b = await player('bob', turn, 'udp');
    const c = await player('carol', turn, 'tcp');
    try {
      const [ra, rb, rc] = await Promise.all([a.client.start(), b.client.start(), c.client.start()]);
      for (const r of [ra, rb, rc]) assert.match(r, /^127\.0\.0\.1:\d+$/);
      assert.deepEqual(a.events, [`allocated ${ra}`]);
      await Promise.all([a.client.permit([rb, rc]), b.client.permit([ra]), c.client.permit([ra])]);
      assert.ok(a.client.hasChannel(rb) && a.client.hasChannel(rc) && b.client.hasChannel(ra) && c.client.hasChannel(ra));
      await exchange(a, b, 'a→b');
      await exchange(b, a, 'b→a');
      await exchange(a, c, 'a→c over TCP');
      await exchange(c, a, 'c→a over TCP');
      // A burst of odd sizes over TCP: every ChannelData padded, or the stream falls out of step.
      const sizes = [1, 2, 3, 5, 7, 100, 1001, 1399];
      const n0 = a.got.length;
      for (const s of sizes) c.client.send(ra, Buffer.alloc(s, 'x'));
      const burst = (): string[] => a.got.slice(n0).map(([, d]) => d).filter((d) => /^x+$/.test(d));
      await until('the TCP burst', () => burst().length >= sizes.length);
      assert.deepEqual(burst().map((d) => d.length), sizes);
      await exchange(c, a, 'still in step');
      assert.ok(a.client.stats().txChannelData > 0 && c.client.stats().txChannelData > 0);

      // Nobody outside the permitted set reaches alice through her relayed address...
      const eve = await outsider('127.0.0.2');
      try {
        for (let i = 0; i < 5; i++) eve.sock.send(`eve${i}`, Number(ra.split(':')[1]), '127.0.0.1');
        await sleep(300);
        assert.ok(!a.got.some(([, d]) => d.startsWith('eve')), 'an address without permission is not relayed to us');
        // ...and alice's allocation relays to nobody outside it, even with a hand-made Send indication.
        const send = encodeMessage(messageType(METHOD.SEND, CLASS.INDICATION), randomBytes(12), { peer: { ip: '127.0.0.2', port: eve.sock.address().port }, data: Buffer.from('leak') });
        a.shared?.sock.send(send, turn.port, '127.0.0.1');
        assert.equal(a.client.send(eve.addr, Buffer.from('leak2')), false, 'the client refuses a peer outside the set');
        await sleep(300);
        assert.deepEqual(eve.got, [], 'the relay forwards nothing to an address without permission');
        // The same outsider, once permitted, gets through both ways: the drops above were the permission.
        await a.client.permit([rb, rc, eve.addr]);
        a.client.send(eve.addr, Buffer.from('hello eve'));
        await until('eve hears alice', () => eve.got.includes('hello eve'), 3000);
        eve.sock.send('eve again', Number(ra.split(':')[1]), '127.0.0.1');
        await until('alice hears eve', () => a.got.some(([peer, d]) => peer === eve.addr && d === 'eve again'), 3000);
        // Removed again: the relay still has the permission (it cannot be revoked) but alice drops it.
        await a.client.permit([rb, rc]);
        const before = a.client.stats().rxDropUnknownPeer;
        eve.sock.send('eve late', Number(ra.split(':')[1]), '127.0.0.1');
        await until('the late datagram dropped', () => a.client.stats().rxDropUnknownPeer > before, 3000);
        assert.ok(!a.got.some(([, d]) => d === 'eve late'));
      } finally {
        eve.sock.close();
      }

      // Credentials: expired and forged are refused with 401 (ERROR-CODE read from the raw bytes).
      const expired = await player('mallory', turn, 'udp', { mint: () => mintTurnCredentials(turn.secret, 'mallory', Date.now() - 3_600_000, 60) });
      await assert.rejects(expired.client.start(), (e: unknown) => e instanceof TurnError && e.code === 401);
      const forged = await player('trudy', turn, 'udp', {
        mint: () => {
          const m = mintTurnCredentials(turn.secret, 'trudy', Date.now(), 600);
          return { username: m.username, password: createHmac('sha1', 'not-the-secret').update(m.username).digest('base64') };
        },
      });
      await assert.rejects(forged.client.start(), (e: unknown) => e instanceof TurnError && e.code === 401);
      const stolen = await player('oscar', turn, 'tcp', { mint: () => ({ ...a.creds[0]!, password: a.creds[0]!.password.slice(1) + 'A' }) });
      await assert.rejects(stolen.client.start(), (e: unknown) => e instanceof TurnError && e.code === 401);
      await closeAll(expired, forged, stolen);

      // A helper restarted on the same port: its previous run's allocation still holds the shared
      // socket's 5-tuple (coturn keeps it 600 s) and cannot be deleted without those credentials.
      const dave = await player('dave', turn, 'shared');
      try {
        const ds = dave.shared as SharedSocket;
        await rawAllocate(ds.sock, turn, mintTurnCredentials(turn.secret, 'dave-previous-run', Date.now(), 600));
        const rd = await dave.client.start();
        assert.equal(dave.client.stats().via, 'udp', 'carried on over a socket of its own');
        await Promise.all([dave.client.permit([rb]), b.client.permit([ra, rd])]);
        await exchange(dave, b, 'dave→b');
        await exchange(b, dave, 'b→dave');
        assert.match(rd, /^127\.0\.0\.1:\d+$/);
      } finally {
        await closeAll(dave);
      }
    } catch (err) {
      process.stderr.write(`coturn log tail:\n${turn.logTail()}\n`);
      throw err;
    } finally {
      await closeAll(a, b, c);
    }
  });

  test('the shipped turnserver.conf: REST credentials over UDP and TCP; private, loopback and TEST-NET peers refused', async (t) => {
    if (!requireOrSkip(TURNSERVER !== null, 'coturn (turnserver, Debian package coturn)', t)) return;
    // The lab exception the config's comment describes, for one address: proves the ranges parse.
    const turn = await startCoturn({ realm: REALM, baseConf: join(REPO_ROOT, 'installers', 'server', 'turnserver.conf'), extraConf: ['allowed-peer-ip=10.9.9.9'] });
    coturns.push(turn);
    const u = await player('uma', turn, 'udp');
    const v = await player('victor', turn, 'tcp');
    try {
      await Promise.all([u.client.start(), v.client.start()]);
      const refused = async (p: Player, peer: string): Promise<void> => {
        await assert.rejects(p.client.permit([peer]), (e: unknown) => e instanceof TurnError && e.code === 403, `${peer} must be refused`);
      };
      for (const peer of ['127.0.0.1:9', '10.1.2.3:9', '172.16.5.5:9', '192.168.1.1:9', '169.254.1.1:9', '100.64.0.1:9', '203.0.113.5:9', '198.51.100.5:9', '239.255.255.250:1900']) {
        await refused(u, peer);
      }
      await refused(v, '192.168.0.10:9');
      // Permissions only: nothing is sent to these addresses.
      await u.client.permit(['10.9.9.9:9']);
      assert.ok(u.client.hasChannel('10.9.9.9:9'), 'allowed-peer-ip wins over denied-peer-ip');
      await assert.rejects(player('mallory', turn, 'udp', { mint: () => mintTurnCredentials('a-different-secret-entirely', 'm', Date.now(), 600) }).then((m) => m.client.start()), (e: unknown) => e instanceof TurnError && e.code === 401);
      const log = readFileSync(join(turn.dir, 'turn.log'), 'utf8');
      assert.doesNotMatch(log, /CONFIG ERROR|wrong.*(address|range)|cannot parse/i, 'coturn accepted every line');
    } catch (err) {
      process.stderr.write(`coturn log tail:\n${turn.logTail()}\n`);
      throw err;
    } finally {
      await closeAll(u, v);
    }
  });

  test('credentials that expire 3 s after the allocation keep a relayed session running for 40 s', async (t) => {
    if (!requireOrSkip(TURNSERVER !== null, 'coturn (turnserver, Debian package coturn)', t)) return;
    // Everything short, so that 40 s sees many refreshes: allocation 8 s, permission 8 s, channel
    // 10 s, and a nonce that goes stale every 5 s (438, retried with the new one). coturn ignores
    // these options silently unless written with '='. Without refreshes data stops after ~10 s.
    const turn = await startLoopbackCoturn(['--max-allocate-lifetime=8', '--permission-lifetime=8', '--channel-lifetime=10', '--stale-nonce=5']);
    coturns.push(turn);
    const timing: Partial<TurnTiming> = { keepaliveMs: 2000, permissionRefreshMs: 4000, channelRefreshMs: 5000 };
    const a = await player('alice', turn, 'shared', { ttl: 3, timing });
    const b = await player('bob', turn, 'tcp', { ttl: 3, timing });
    try {
      const [ra, rb] = await Promise.all([a.client.start(), b.client.start()]);
      const allocatedAt = Date.now();
      await Promise.all([a.client.permit([rb]), b.client.permit([ra])]);
      await exchange(a, b, 'warm-up');
      await exchange(b, a, 'warm-up');
      const sentAt = Date.now();
      let sent = 0;
      while (Date.now() - allocatedAt < 40_000) {
        a.client.send(rb, Buffer.from(`a${sent}`));
        b.client.send(ra, Buffer.from(`b${sent}`));
        sent++;
        await sleep(200);
      }
      await sleep(300);
      const expiredFor = Math.round(Date.now() / 1000 - Number(a.creds[0]!.username.split(':')[0]));
      // Distinct tags: the warm-up exchange may leave duplicates of its own message behind.
      const tags = (p: Player, re: RegExp): number => new Set(p.got.map(([, d]) => d).filter((d) => re.test(d))).size;
      const aGot = tags(a, /^b\d+$/);
      const bGot = tags(b, /^a\d+$/);
      log.info('40 s session', { sent, sendingS: (Date.now() - sentAt) / 1000, aGot, bGot, credentialsExpiredForS: expiredFor, aStats: a.client.stats(), bStats: b.client.stats() });
      assert.ok(expiredFor >= 36, `credentials expired ${expiredFor} s ago`);
      assert.equal(bGot, sent, 'every datagram alice sent reached bob');
      assert.equal(aGot, sent, 'every datagram bob sent reached alice');
      assert.equal(a.creds.length, 1);
      assert.equal(b.creds.length, 1);
      assert.deepEqual(a.events, [`allocated ${ra}`], 'never lost');
      assert.deepEqual(b.events, [`allocated ${rb}`], 'never lost');
      for (const p of [a, b]) {
        const st = p.client.stats();
        assert.ok(st.refreshes >= 8, `${p.name}: refreshes ${st.refreshes}`);
        assert.ok(st.staleNonces >= 4, `${p.name}: stale nonces ${st.staleNonces}`);
      }
    } catch (err) {
      process.stderr.write(`coturn log tail:\n${turn.logTail()}\n`);
      throw err;
    } finally {
      await closeAll(a, b);
    }
  });

  test('a relay restart: both clients notice, re-allocate with fresh credentials by themselves, and data flows again', async (t) => {
    if (!requireOrSkip(TURNSERVER !== null, 'coturn (turnserver, Debian package coturn)', t)) return;
    const turn = await startLoopbackCoturn();
    coturns.push(turn);
    // Credentials expire 3 s after minting: re-allocating with the old ones would be refused.
    const timing: Partial<TurnTiming> = { keepaliveMs: 2000 };
    const a = await player('alice', turn, 'shared', { ttl: 3, timing });
    const b = await player('bob', turn, 'tcp', { ttl: 3, timing });
    // What the party manager will do: tell the other side the new relayed address.
    const repermit = (): void => {
      if (a.client.relayed && b.client.relayed) {
        void a.client.permit([b.client.relayed]).catch(() => undefined);
        void b.client.permit([a.client.relayed]).catch(() => undefined);
      }
    };
    a.client.on('reallocated', repermit);
    b.client.on('reallocated', repermit);
    try {
      const [ra, rb] = await Promise.all([a.client.start(), b.client.start()]);
      await Promise.all([a.client.permit([rb]), b.client.permit([ra])]);
      await exchange(a, b, 'before');
      await exchange(b, a, 'before');
      await sleep(3500); // the first credentials are now expired
      const oldPid = turn.pid;
      const t0 = Date.now();
      await turn.restart();
      const backAt = Date.now();
      assert.notEqual(turn.pid, oldPid);
      // By themselves, on their backoff (test/unit/turn-client.test.ts checks re-allocation step by step);
      // how fast is logged: a loaded machine is slower, not wrong.
      await until('both re-allocated', () => a.client.state === 'allocated' && b.client.state === 'allocated' && a.creds.length === 2 && b.creds.length === 2, 60_000);
      const recoveredMs = Date.now() - t0;
      await exchange(a, b, 'after');
      await exchange(b, a, 'after');
      log.info('relay restart', { recoveredMs, afterRelayBackMs: Date.now() - backAt, alice: a.events, bob: b.events });
      assert.match(a.events[1] ?? '', /^lost /);
      assert.match(a.events[2] ?? '', /^reallocated 127\.0\.0\.1:\d+ was 127\.0\.0\.1:\d+$/);
      assert.equal(b.events[1], 'lost TCP connection closed');
      assert.match(b.events[2] ?? '', /^reallocated /);
      assert.notEqual(a.creds[1]!.username, a.creds[0]!.username, 'fresh credentials');
    } catch (err) {
      process.stderr.write(`coturn log tail:\n${turn.logTail()}\n`);
      throw err;
    } finally {
      await closeAll(a, b);
    }
  });
});
