// A stand-in LAN game for the lab, in the shape of the real ones: a server that answers
// broadcast discovery and then talks unicast, a client that discovers by broadcast, and a flood.
// The server binds its port WITHOUT SO_REUSEADDR (as many games do), after the relay started:
// it proves the relay holds no game port. Every line on stdout is one JSON object.
//
//   server PORT NAME            {"ev":"listening"} then {"ev":"discover"|"hello","from":"ip:port","nonce"}
//                               per datagram (floods are only counted); stdin "stats" → {"ev":"stats","flood":N,"discover":{nonce:count}}
//   client PORT NONCE TIMEOUT   broadcasts DISCOVER every 250 ms until a server answers, then says HELLO
//                               to it by unicast, then discovers once more from the same socket; prints
//                               {"ok":true,"server","name","discoveryMs","rediscoveryMs","helloRttMs","serverSaw"}; each step waits up to TIMEOUT
//   once PORT NONCE WAITMS [N]  one broadcast; prints {"answers":[{"from","name"}]} after WAITMS, or with N
//                               a second after the N-th answer (a late duplicate still shows)
//   flood PORT COUNT MS         COUNT broadcasts over MS; prints {"sent":COUNT}
//   hello IP PORT NONCE         unicast HELLO to a server found some other way (e.g. mDNS); prints {"ok":true,"serverSaw"}

import dgram from 'node:dgram';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const LAN_GAME = fileURLToPath(import.meta.url);

const out = (o: object): void => void process.stdout.write(JSON.stringify(o) + '\n');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function bind(port: number, reuseAddr = false): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket({ type: 'udp4', reuseAddr });
    s.once('error', reject);
    s.bind(port, '0.0.0.0', () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

async function server(port: number, name: string): Promise<void> {
  const s = await bind(port);
  let flood = 0;
  const discover: Record<string, number> = {};
  s.on('message', (m, r) => {
    const from = `${r.address}:${r.port}`;
    const [kind, arg] = m.toString().split(' ');
    if (kind === 'FLOOD') return void flood++;
    if (kind === 'DISCOVER' && arg) {
      discover[arg] = (discover[arg] ?? 0) + 1;
      out({ ev: 'discover', from, nonce: arg });
      s.send(`HERE ${name} ${arg}`, r.port, r.address);
    } else if (kind === 'HELLO' && arg) {
      out({ ev: 'hello', from, nonce: arg });
      s.send(`WELCOME ${arg} ${from}`, r.port, r.address);
    }
  });
  createInterface({ input: process.stdin }).on('line', (l) => {
    if (l.trim() === 'stats') out({ ev: 'stats', flood, discover });
  });
  process.stdin.on('end', () => process.exit(0));
  out({ ev: 'listening', port });
}

async function client(port: number, nonce: string, timeoutMs: number): Promise<void> {
  const s = await bind(0);
  s.setBroadcast(true);
  const t0 = performance.now();
  const here = new Promise<{ from: dgram.RemoteInfo; name: string }>((resolve) =>
    s.on('message', (m, r) => {
      const [kind, name, n] = m.toString().split(' ');
      if (kind === 'HERE' && n === nonce && name) resolve({ from: r, name });
    }),
  );
  let found: { from: dgram.RemoteInfo; name: string } | undefined;
  void here.then((h) => (found = h));
  while (!found && performance.now() - t0 < timeoutMs) {
    s.send(`DISCOVER ${nonce}`, port, '255.255.255.255');
    await Promise.race([here, sleep(250)]);
  }
  if (!found) {
    out({ ok: false, error: `no server answered within ${timeoutMs} ms` });
    process.exit(1);
  }
  const discoveryMs = performance.now() - t0;
  const server = found;
  const t1 = performance.now();
  const welcome = new Promise<string>((resolve) =>
    s.on('message', (m) => {
      const [kind, n, saw] = m.toString().split(' ');
      if (kind === 'WELCOME' && n === nonce && saw) resolve(saw);
    }),
  );
  s.send(`HELLO ${nonce}`, server.from.port, server.from.address);
  const saw = await Promise.race([welcome, sleep(timeoutMs).then(() => null)]);
  if (!saw) {
    out({ ok: false, error: `no WELCOME from ${server.from.address}:${server.from.port}` });
    process.exit(1);
  }
  const helloRttMs = performance.now() - t1;
  // Once more from the same socket: the far side's injection rule for this source exists now.
  const t2 = performance.now();
  const again = new Promise<boolean>((resolve) =>
    s.on('message', (m) => {
      const [kind, , n] = m.toString().split(' ');
      if (kind === 'HERE' && n === `${nonce}.2`) resolve(true);
    }),
  );
  s.send(`DISCOVER ${nonce}.2`, port, '255.255.255.255');
  const rediscoveryMs = (await Promise.race([again, sleep(timeoutMs).then(() => false)])) ? performance.now() - t2 : null;
  out({ ok: true, server: `${server.from.address}:${server.from.port}`, name: server.name, discoveryMs, rediscoveryMs, helloRttMs, serverSaw: saw, clientPort: s.address().port });
  process.exit(0);
}

async function once(port: number, nonce: string, waitMs: number, expect: number): Promise<void> {
  const s = await bind(0);
  s.setBroadcast(true);
  const answers: Array<{ from: string; name: string }> = [];
  let enough: () => void = () => undefined;
  const gotEnough = new Promise<void>((r) => (enough = r));
  s.on('message', (m, r) => {
    const [kind, name, n] = m.toString().split(' ');
    if (kind === 'HERE' && n === nonce && name) answers.push({ from: `${r.address}:${r.port}`, name });
    if (expect > 0 && answers.length >= expect) enough();
  });
  s.send(`DISCOVER ${nonce}`, port, '255.255.255.255');
  // A loaded machine answers later, not differently: wait for the answers expected, up to WAITMS.
  if (await Promise.race([gotEnough.then(() => true), sleep(waitMs).then(() => false)])) await sleep(1000);
  out({ answers, clientPort: s.address().port });
  process.exit(0);
}

async function flood(port: number, count: number, ms: number): Promise<void> {
  const s = await bind(0);
  s.setBroadcast(true);
  const batch = 10;
  const t0 = performance.now();
  for (let i = 0; i < count; i += batch) {
    for (let j = i; j < Math.min(count, i + batch); j++) s.send(`FLOOD ${j}`, port, '255.255.255.255');
    const due = t0 + ((i + batch) * ms) / count;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
  }
  await sleep(50);
  out({ sent: count, ms: performance.now() - t0 });
  process.exit(0);
}

async function hello(ip: string, port: number, nonce: string): Promise<void> {
  const s = await bind(0);
  const t0 = performance.now();
  const welcome = new Promise<{ saw: string; from: string }>((resolve) =>
    s.on('message', (m, r) => {
      const [kind, n, saw] = m.toString().split(' ');
      if (kind === 'WELCOME' && n === nonce && saw) resolve({ saw, from: `${r.address}:${r.port}` });
    }),
  );
  for (let i = 0; i < 10; i++) {
    s.send(`HELLO ${nonce}`, port, ip);
    const got = await Promise.race([welcome, sleep(300).then(() => null)]);
    if (got) {
      out({ ok: true, serverSaw: got.saw, from: got.from, rttMs: performance.now() - t0, clientPort: s.address().port });
      process.exit(0);
    }
  }
  out({ ok: false, error: `no WELCOME from ${ip}:${port}` });
  process.exit(1);
}

const [mode, a, b, c, d] = process.argv.slice(2);
if (process.argv[1] === LAN_GAME) {
  const run =
    mode === 'server' ? server(Number(a), b ?? 'server')
    : mode === 'client' ? client(Number(a), b ?? 'n', Number(c ?? 5000))
    : mode === 'once' ? once(Number(a), b ?? 'n', Number(c ?? 1500), Number(d ?? 0))
    : mode === 'flood' ? flood(Number(a), Number(b), Number(c))
    : mode === 'hello' ? hello(a ?? '', Number(b), c ?? 'n')
    : Promise.reject(new Error(`unknown mode ${String(mode)}`));
  run.catch((err: unknown) => {
    out({ ok: false, error: String(err) });
    process.exit(1);
  });
}
