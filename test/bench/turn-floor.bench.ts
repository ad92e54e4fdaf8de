// Benchmark (issue 13): the floor coturn itself puts under a relayed path on this machine, with no
// helper in the way. One echo process (a child: its own wake-ups, as a peer's helper has) holds a
// plain UDP socket and a TURN allocation; this process pings it three ways, interleaved:
//   direct     our plain socket → its plain socket                       (no relay)
//   one pass   our plain socket → its relayed address → its allocation   (coturn once each way)
//   two passes our allocation → its relayed address → its allocation     (coturn twice each way:
//              relayed→relayed, what LANrage's relayed paths are)
// The echo answers on the socket the ping came in on, so each way crosses the same hops back.
// coturn runs on loopback (cheaper than the lab's veth routers): whatever it adds here, it adds at
// least that much in the lab. The goal "relayed p50 ≤ direct p50 + 0.3 ms" cannot be met by any
// path through coturn whose floor is above it.
// Run after a build (any user; coturn from Debian's `coturn` package): node dist/test/bench/turn-floor.bench.js
// Env: BENCH_PINGS (per way, default 2000), BENCH_PPS (pings a second per way, default 60).
// Prints figures; asserts nothing about speed.

import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../helper/core/log.js';
import { mintTurnCredentials } from '../../helper/control/turn-credentials.js';
import { TurnClient } from '../../helper/net/turn/index.js';
import { findTurnserver, startCoturn, type Coturn } from '../lib/coturn.js';
import { fmt, loadLine, percentile } from './bench-lib.js';

const PINGS = Number(process.env.BENCH_PINGS ?? 2000);
const PPS = Number(process.env.BENCH_PPS ?? 60);
const REALM = 'lanrage.bench';
const log = createLogger({ bench: 'turn-floor' });
const say = (s: string): void => void process.stderr.write(`[turn-floor] ${s}\n`);

function turnClient(turn: { port: number; secret: string }, name: string, bindAddress: string): TurnClient {
  return new TurnClient({
    server: { host: '127.0.0.1', port: turn.port, transport: 'udp' },
    bindAddress,
    getCredentials: () => Promise.resolve(mintTurnCredentials(turn.secret, name, Date.now(), 600)),
    log: log.child({ player: name }),
  });
}

async function udp(ip: string): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  s.bind(0, ip);
  await once(s, 'listening');
  return s;
}

/** The echo process: prints its addresses, permits what stdin names, echoes everything. */
async function echo(): Promise<void> {
  const turn = { port: Number(process.env.FLOOR_TURN_PORT), secret: process.env.FLOOR_TURN_SECRET ?? '' };
  const plain = await udp('127.0.0.1');
  plain.on('message', (m, r) => plain.send(m, r.port, r.address));
  const client = turnClient(turn, 'echo', '127.0.0.1');
  client.on('data', (peer, data) => void client.send(peer, data));
  const relayed = await client.start();
  process.stdout.write(`${JSON.stringify({ plain: plain.address().port, relayed })}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'quit') break;
    await client.permit(JSON.parse(line) as string[]);
    process.stdout.write('permitted\n');
  }
  await client.close();
  plain.close();
}

type Way = 'direct' | 'one pass' | 'two passes';

async function bench(): Promise<void> {
  if (!findTurnserver()) {
    say('SKIPPED: no turnserver (apt-get install coturn)');
    process.exitCode = 2;
    return;
  }
  let turn: Coturn | null = null;
  const child = { proc: null as ReturnType<typeof spawn> | null };
  try {
    turn = await startCoturn({ realm: REALM, allowLoopbackPeers: true, allowedPeerIps: ['127.0.0.1-127.0.0.3'] });
    const mine = await udp('127.0.0.2');
    const client = turnClient(turn, 'pinger', '127.0.0.3');
    const ourRelayed = await client.start();
    const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), '--echo'], {
      env: { ...process.env, FLOOR_TURN_PORT: String(turn.port), FLOOR_TURN_SECRET: turn.secret },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    child.proc = proc;
    const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
    const first = await lines.next();
    const far = JSON.parse(String(first.value)) as { plain: number; relayed: string };
    proc.stdin!.write(`${JSON.stringify([`127.0.0.2:${mine.address().port}`, ourRelayed])}\n`);
    await lines.next();
    await client.permit([far.relayed]);
    const [rip, rport] = far.relayed.split(':') as [string, string];

    let waiting: { txid: number; resolve: (at: bigint) => void } | null = null;
    const arrived = (m: Buffer): void => {
      if (waiting && m.readUInt32BE(0) === waiting.txid) waiting.resolve(process.hrtime.bigint());
    };
    mine.on('message', (m) => arrived(m));
    client.on('data', (_peer, m) => arrived(m));
    let txid = 0;
    const ping = async (way: Way): Promise<number | null> => {
      const b = Buffer.alloc(100);
      b.writeUInt32BE(++txid, 0);
      const got = new Promise<bigint | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), 1000);
        waiting = { txid, resolve: (at) => (clearTimeout(timer), resolve(at)) };
      });
      const t0 = process.hrtime.bigint();
      if (way === 'direct') mine.send(b, far.plain, '127.0.0.1');
      else if (way === 'one pass') mine.send(b, Number(rport), rip);
      else client.send(far.relayed, b);
      const at = await got;
      waiting = null;
      return at === null ? null : Number(at - t0) / 1e6;
    };
    const ways: Way[] = ['direct', 'one pass', 'two passes'];
    // Channels are bound a round trip after the permissions: warm every way up first.
    for (let i = 0; i < 100; i++) for (const w of ways) await ping(w);
    const rtts = new Map<Way, number[]>(ways.map((w) => [w, []]));
    let lost = 0;
    const gap = 1000 / (PPS * ways.length);
    say(`${PINGS} pings per way, ${loadLine()}`);
    for (let i = 0; i < PINGS; i++) {
      for (const w of ways) {
        const ms = await ping(w);
        if (ms === null) lost++;
        else rtts.get(w)!.push(ms);
        await new Promise((r) => setTimeout(r, gap));
      }
    }
    const direct = rtts.get('direct')!;
    console.log(`LANrage TURN floor benchmark, ${new Date().toISOString()}: coturn on loopback, ${PINGS} pings per way, 100-byte payload, ${loadLine()}`);
    console.log('| way | p50 | p99 | p50 − direct p50 |');
    console.log('|---|---|---|---|');
    for (const w of ways) {
      const xs = rtts.get(w)!;
      console.log(`| ${w} | ${fmt(percentile(xs, 50), 3)} ms | ${fmt(percentile(xs, 99), 3)} ms | ${w === 'direct' ? '–' : `+${fmt(percentile(xs, 50) - percentile(direct, 50), 3)} ms`} |`);
    }
    console.log(`lost: ${lost}`);
    proc.stdin!.write('quit\n');
    await client.close();
    mine.close();
  } finally {
    child.proc?.kill();
    await turn?.stop();
  }
}

if (process.argv.includes('--echo')) await echo();
else await bench();
