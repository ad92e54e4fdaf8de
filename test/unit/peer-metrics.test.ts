import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock, type Clock } from '../../helper/core/clock.js';
import { PathKind } from '../../helper/gen/lanrage/v1/peer.js';
import { PathMachine } from '../../helper/net/path.js';
import { ProbeStats } from '../../helper/net/probe-stats.js';
import { parseCounters } from '../../helper/net/fastpath.js';
import { counterDelta, jitterOf, LossWindow, medianRtt, pathRtt, qualityScore } from '../../helper/metrics/quality.js';
import { NFT_REST_MAX_MS, NFT_REST_TRICKLE_BYTES, REST_MAX_MS, PathChanges, PeerMetrics, type PeerMetricsInput, type PeerSample } from '../../helper/metrics/peer-metrics.js';
import { PeerHistory } from '../../helper/metrics/peer-history.js';
import { cpuPercent, parseMeminfo, parseNetDev, parseProcStat, procReader } from '../../helper/metrics/proc-reader.js';
import { prometheusRegistry } from '../../helper/metrics/prometheus.js';
import { openDatabase } from '../../helper/store/db.js';
import { HELPER_MIGRATIONS } from '../../helper/store/migrations.js';
import { createLogger } from '../../helper/core/log.js';

const log = createLogger({ level: 'error' });

test('quality: the documented formula, clamped, and 0 without an RTT', () => {
  assert.equal(qualityScore(0.4, 0.1, 0), 99.9);
  assert.equal(qualityScore(20, 0, 0), 100);
  assert.equal(qualityScore(100, 0, 0), 60);
  assert.equal(qualityScore(220, 0, 0), 0);
  assert.equal(qualityScore(10, 0, 0.02), 90);
  assert.equal(qualityScore(30, 4, 0.01), 100 - 5 - 4 - 5);
  assert.equal(qualityScore(null, 0, 0), 0);
});

test('rtt summary: lowest of the last ten, median of the last five, jitter as mean consecutive difference', () => {
  assert.equal(pathRtt([]), null);
  assert.equal(pathRtt([0.3, 5, 0.8, 0.9, 1, 2, 3, 4, 5, 6, 7, 8]), 0.8, 'only the last ten count');
  assert.equal(medianRtt([]), null);
  assert.equal(medianRtt([0.8, 0.7, 25, 0.9, 0.75]), 0.8, 'one slow sample does not move the median');
  assert.equal(medianRtt([1, 2]), 1.5);
  assert.equal(jitterOf([1]), 0);
  assert.ok(Math.abs(jitterOf([1, 2, 1, 2]) - 1) < 1e-9);
});

test('counters: a counter that goes down was restarted; loss over a sliding minute', () => {
  assert.equal(counterDelta(undefined, 500), 0);
  assert.equal(counterDelta(100, 150), 50);
  assert.equal(counterDelta(100, 30), 30);
  const w = new LossWindow(60_000);
  assert.equal(w.add(0, 0, 0), 0);
  assert.equal(w.add(10_000, 10, 0), 0);
  assert.equal(w.add(20_000, 20, 5), 0.25);
  // Two minutes later with no new loss: the window forgot it.
  w.add(140_000, 40, 5);
  assert.equal(w.add(150_000, 42, 5), 0);
});

test('path RTT has sub-millisecond resolution from the monotonic clock', () => {
  const wall = new ManualClock(0);
  let mono = 1000;
  const clock: Clock = { now: () => wall.now(), setTimeout: (fn, ms) => wall.setTimeout(fn, ms), mono: () => mono };
  let txid: Buffer | null = null;
  const m = new PathMachine(
    { clock, gate: false, isLan: () => false, localNat: () => 'unknown', peerNat: () => undefined, io: { ping: (_ep, t) => (txid = t), callMeMaybe: () => {}, state: () => {} } },
    ['203.0.113.6:41641'],
  );
  m.start();
  mono += 0.37;
  const rtt = m.onPong('203.0.113.6:41641', txid!);
  assert.ok(rtt !== null && Math.abs(rtt - 0.37) < 1e-9, `rtt ${rtt}`);
  assert.ok(Math.abs((m.state().rttMs ?? 0) - 0.37) < 1e-9);
  assert.deepEqual(m.probes.recent(5).map((x) => Math.round(x * 100) / 100), [0.37]);
  // A keepalive that goes unanswered is counted as lost.
  wall.advance(5_000);
  assert.equal(m.probes.sentCount, 1);
  wall.advance(5_000);
  assert.equal(m.probes.lostCount, 1);
  // While watched: a measuring ping every second; unanswered ones count as lost without losing the path.
  const sent = m.probes.sentCount;
  m.setMetricProbing(1000);
  wall.advance(1000);
  mono += 0.5;
  assert.ok(Math.abs(m.onPong('203.0.113.6:41641', txid!)! - 0.5) < 1e-9);
  wall.advance(3000);
  // Four measuring pings in four seconds (plus the keepalive due meanwhile), two of them unanswered.
  assert.ok(m.probes.sentCount - sent >= 4, `sent ${m.probes.sentCount - sent}`);
  assert.ok(m.probes.lostCount >= 2);
  assert.equal(m.state().kind, 'direct');
  m.setMetricProbing(0);
  const quiet = m.probes.sentCount;
  wall.advance(1000);
  assert.equal(m.probes.sentCount, quiet, 'no measuring pings once nobody watches');
  m.close();
});

function input(over: Partial<PeerMetricsInput> & { probes?: PeerMetricsInput['probes'] }): PeerMetricsInput {
  return { deviceId: 'bob', name: 'Bob', path: PathKind.PATH_KIND_DIRECT, fastPath: false, rxBytes: 0, txBytes: 0, probes: null, ...over };
}

test('peer metrics: rates from WireGuard bytes, packets from forwarding plus nftables, RTT from the path in use', async () => {
  let now = 1_000_000;
  const direct = new ProbeStats();
  const relay = new ProbeStats();
  const proxied = { rx: 0, tx: 0 };
  let cur = input({ probes: { direct, relay, proxied, fastEndpoint: null } });
  let nft = new Map<string, { rxPackets: number; txPackets: number; rxBytes: number; txBytes: number }>();
  let nftReads = 0;
  const got: PeerSample[][] = [];
  const pm = new PeerMetrics({
    source: { inputs: async () => [cur], fastPathCounters: async () => (nftReads++, nft) },
    log,
    onSamples: (s) => got.push(s),
    now: () => now,
    nftWatchedMs: 10_000,
    nftIdleMs: 60_000,
  });
  await pm.tick();
  direct.answered(0.42);
  direct.answered(0.40);
  direct.answered(0.44);
  proxied.rx = 100;
  proxied.tx = 50;
  now += 1000;
  cur = { ...cur, rxBytes: 125_000, txBytes: 25_000 };
  const [s] = await pm.tick();
  assert.equal(s!.rxBps, 125_000);
  assert.equal(s!.txBps, 25_000);
  assert.equal(s!.rxPps, 100);
  assert.equal(s!.txPps, 50);
  assert.equal(s!.rttMs, 0.40, 'the lowest of the last ten');
  assert.ok(s!.jitterMs > 0.02 && s!.jitterMs < 0.05);
  assert.ok(s!.quality > 99);
  assert.equal(nftReads, 0, 'no fast path: nft is never run');

  // On the fast path: packets come from nftables (read at most every 10 s while watched).
  const release = pm.watch();
  cur = { ...cur, fastPath: true };
  nft = new Map([['bob', { rxPackets: 1000, txPackets: 900, rxBytes: 0, txBytes: 0 }]]);
  now += 1000;
  await pm.tick();
  now += 1000;
  await pm.tick();
  assert.equal(nftReads, 1);
  now += 9000;
  nft = new Map([['bob', { rxPackets: 3000, txPackets: 2900, rxBytes: 0, txBytes: 0 }]]);
  cur = { ...cur, rxBytes: cur.rxBytes + 2_000_000, txBytes: cur.txBytes + 2_000_000 };
  const [f] = await pm.tick();
  assert.equal(nftReads, 2);
  assert.equal(f!.rxPackets, 100 + 1000 + 2000);
  assert.ok(Math.abs(f!.rxPps - 2000 / 10) < 1e-9, `pps ${f!.rxPps}`);
  assert.deepEqual(pm.totals('bob'), { rxPackets: 3100, txPackets: 2950 });
  // A second in which WireGuard moved no bytes shows no packets either (the nft rate is older).
  now += 1000;
  const [idle] = await pm.tick();
  assert.equal(idle!.rxPps, 0);
  assert.equal(idle!.txPps, 0);
  // Due again, but WireGuard moved no bytes since the last read: nftables (which counts only
  // WireGuard's packets) cannot have moved either, so nft is not run; packets stay as they were.
  now += 10_000;
  const [still] = await pm.tick();
  assert.equal(nftReads, 2, 'no nft process while the fast path is idle');
  assert.equal(still!.rxPackets, 3100);
  assert.equal(still!.rxPps, 0);
  // Bytes move again: the next due read runs nft.
  cur = { ...cur, rxBytes: cur.rxBytes + 1000 };
  now += 10_000;
  nft = new Map([['bob', { rxPackets: 3010, txPackets: 2900, rxBytes: 0, txBytes: 0 }]]);
  const [moved] = await pm.tick();
  assert.equal(nftReads, 3);
  assert.equal(moved!.rxPackets, 3110);
  release();

  // Relayed: the RTT is the relay's; unreachable: no RTT, quality 0.
  relay.answered(12.5);
  cur = { ...cur, fastPath: false, path: PathKind.PATH_KIND_RELAYED };
  now += 1000;
  assert.equal((await pm.tick())[0]!.rttMs, 12.5);
  cur = { ...cur, path: PathKind.PATH_KIND_UNREACHABLE };
  now += 1000;
  const [u] = await pm.tick();
  assert.equal(u!.rttMs, 0);
  assert.equal(u!.quality, 0);
  assert.equal(got.length, 10);
});

test('peer metrics: unwatched, a trickle of WireGuard bytes on the fast path waits for more (or 10 minutes) before nft runs; packets catch up', async () => {
  let now = 1_000_000;
  let cur = input({ fastPath: true, rxBytes: 10_000, txBytes: 10_000 });
  let nft = new Map([['bob', { rxPackets: 100, txPackets: 100, rxBytes: 0, txBytes: 0 }]]);
  let nftReads = 0;
  const pm = new PeerMetrics({
    source: { inputs: async () => [cur], fastPathCounters: async () => (nftReads++, nft) },
    log,
    onSamples: () => undefined,
    now: () => now,
    nftWatchedMs: 10_000,
    nftIdleMs: 60_000,
  });
  await pm.tick();
  assert.equal(nftReads, 1, 'the first read');
  // Keepalives and a handshake: below the trickle, nobody watching: the last read stands.
  cur = { ...cur, rxBytes: cur.rxBytes + 148, txBytes: cur.txBytes + 92 + 32 };
  nft = new Map([['bob', { rxPackets: 101, txPackets: 102, rxBytes: 0, txBytes: 0 }]]);
  now += 60_000;
  await pm.tick();
  assert.equal(nftReads, 1, 'no nft for a trickle');
  assert.deepEqual(pm.totals('bob'), { rxPackets: 100, txPackets: 100 });
  // Somebody watches: any movement is read at the next due time.
  const release = pm.watch();
  now += 10_000;
  await pm.tick();
  assert.equal(nftReads, 2, 'watched: read');
  assert.deepEqual(pm.totals('bob'), { rxPackets: 101, txPackets: 102 }, 'the packets of the trickle are counted late, not lost');
  release();
  // Unwatched again: more than the trickle is read at the next due time.
  cur = { ...cur, rxBytes: cur.rxBytes + NFT_REST_TRICKLE_BYTES };
  nft = new Map([['bob', { rxPackets: 110, txPackets: 102, rxBytes: 0, txBytes: 0 }]]);
  now += 60_000;
  await pm.tick();
  assert.equal(nftReads, 3, 'real traffic: read');
  // A trickle waits at most NFT_REST_MAX_MS.
  cur = { ...cur, txBytes: cur.txBytes + 32 };
  nft = new Map([['bob', { rxPackets: 110, txPackets: 103, rxBytes: 0, txBytes: 0 }]]);
  for (let t = 60_000; t < NFT_REST_MAX_MS; t += 60_000) {
    now += 60_000;
    await pm.tick();
  }
  assert.equal(nftReads, 3);
  now += 60_000;
  await pm.tick();
  assert.equal(nftReads, 4, 'read after 10 minutes of trickle');
  assert.deepEqual(pm.totals('bob'), { rxPackets: 110, txPackets: 103 });
});

test('path changes: recorded when the kind or the endpoint changes, with the reason', () => {
  const seen: string[] = [];
  const pc = new PathChanges((c) => seen.push(`${c.from}>${c.to} ${c.endpoint} ${c.reason}`), () => 5);
  pc.observe('bob', 'Bob', PathKind.PATH_KIND_CONNECTING, '', 'looking');
  pc.observe('bob', 'Bob', PathKind.PATH_KIND_CONNECTING, '', 'still looking');
  pc.observe('bob', 'Bob', PathKind.PATH_KIND_RELAYED, 'udp:198.51.100.1:3478', 'relayed through x');
  pc.observe('bob', 'Bob', PathKind.PATH_KIND_DIRECT, '203.0.113.6:41641', 'direct via 203.0.113.6:41641');
  assert.deepEqual(seen, ['0>1  looking', '1>3 udp:198.51.100.1:3478 relayed through x', '3>2 203.0.113.6:41641 direct via 203.0.113.6:41641']);
});

function sample(atMs: number, over: Partial<PeerSample> = {}): PeerSample {
  return {
    atMs, deviceId: 'bob', name: 'Bob', path: PathKind.PATH_KIND_DIRECT, fastPath: true, rttMs: 0.5, jitterMs: 0.1, lossRatio: 0, rxBps: 1000, txBps: 500,
    rxPps: 10, txPps: 5, quality: 99, rxBytes: atMs, txBytes: 0, rxPackets: 0, txPackets: 0, ...over,
  };
}

test('peer history: 1 s rows for 10 minutes, 10 s for a day, 1 min for 30 days, in SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lanrage-ph-'));
  try {
    const db = openDatabase(join(dir, 'helper.db'), HELPER_MIGRATIONS);
    const t0 = 1_700_000_000_000;
    let now = t0;
    const h = new PeerHistory(db, () => now);
    // Two hours of one sample a second, RTT 1 ms in the first hour, 3 ms in the second.
    for (let i = 0; i < 7200; i++) {
      now = t0 + i * 1000;
      h.add([sample(now, { rttMs: i < 3600 ? 1 : 3, rxBytes: i })]);
    }
    h.addPathChange({ atMs: t0 + 5000, deviceId: 'bob', name: 'Bob', from: PathKind.PATH_KIND_RELAYED, to: PathKind.PATH_KIND_DIRECT, reason: 'direct via x', endpoint: 'x' });
    const recent = h.query('bob', now - 60_000, now);
    assert.equal(recent.stepSeconds, 1);
    assert.ok(recent.samples.length >= 60 && recent.samples.length <= 61, `${recent.samples.length}`);
    assert.equal(recent.samples.at(-1)!.rttMs, 3);
    // 1 s rows older than 10 minutes were pruned; the 10 s tier answers for the last hour.
    const count = (step: number): number => (db.prepare('SELECT COUNT(*) AS n FROM peer_metrics WHERE step = ?').get(step) as { n: number }).n;
    assert.ok(count(1) <= 721, `1 s rows kept: ${count(1)}`);
    assert.equal(h.query('bob', now - 605_000, now).stepSeconds, 1, '"the last 10 minutes" asked a moment late');
    const hour = h.query('bob', now - 3600_000, now);
    assert.equal(hour.stepSeconds, 10);
    assert.ok(hour.samples.length >= 359 && hour.samples.length <= 361);
    const day = h.query('*', now - 2 * 3600_000, now);
    assert.equal(day.stepSeconds, 10);
    const month = h.query('bob', now - 29 * 24 * 3600_000, now);
    assert.equal(month.stepSeconds, 60 * Math.ceil((29 * 24 * 3600) / 900 / 60));
    const all = month.samples;
    assert.ok(all.length >= 1 && all.length <= 900);
    assert.ok(Math.abs(h.query('bob', t0, t0 + 3599_000).samples.reduce((a, s) => a + s.rttMs, 0) / h.query('bob', t0, t0 + 3599_000).samples.length - 1) < 1e-9);
    assert.equal(h.query('bob', t0, now).changes.length, 1);
    assert.equal(h.query('alice', t0, now).samples.length, 0);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fast-path counters: nft -j output to per-endpoint rx/tx', () => {
  const json = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6' } },
      { set: { name: 'peers', elem: [{ elem: { val: { concat: ['203.0.113.6', 41641] }, counter: { packets: 30, bytes: 3000 } } }] } },
      { set: { name: 'peersout', elem: [{ elem: { val: { concat: ['203.0.113.6', 41641] }, counter: { packets: 12, bytes: 1000 } } }] } },
    ],
  });
  assert.deepEqual(parseCounters(json).get('203.0.113.6:41641'), { txPackets: 12, txBytes: 1000, rxPackets: 18, rxBytes: 2000 });
});

test('/proc parsers, and the reader against this machine', async () => {
  const a = parseProcStat('cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1\n');
  const b = parseProcStat('cpu  150 0 150 900 0 0 0 0 0 0\n');
  assert.equal(cpuPercent(a, b), 50);
  assert.deepEqual(parseMeminfo('MemTotal:  1000 kB\nMemFree: 100 kB\nMemAvailable:   400 kB\n'), { used: 600 * 1024, total: 1000 * 1024 });
  const dev = 'Inter-|   Receive |  Transmit\n face |bytes\n    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0\n  eth0: 100 2 0 0 0 0 0 0 50 1 0 0 0 0 0 0\n  wg0: 10 2 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n';
  assert.deepEqual(parseNetDev(dev), { rx: 110, tx: 55 });
  if (process.platform !== 'linux') return;
  const r = procReader();
  await r.read();
  const s = await r.read();
  assert.ok(s.memTotal > 0 && s.memUsed > 0 && s.memUsed <= s.memTotal);
  assert.ok(s.cpuPercent >= 0 && s.cpuPercent <= 100);
  assert.ok(readFileSync('/proc/net/dev', 'latin1').includes(':'));
});

test('prometheus: per-peer path, RTT, loss and bytes in the text format', async () => {
  const reg = prometheusRegistry({
    peers: () => [sample(0, { rttMs: 0.42, rxBytes: 12345, lossRatio: 0.05 })],
    magic: () => ({ tx_relay: 7, rx_relay_wireguard: 3, rx_relay_disco: 1 }),
    lan: () => ({ enabled: true, ports: [], groups: [], captured: 4, forwarded: 2, received: 1, injected: 1, droppedDuplicate: 0, droppedRateLimited: 0, droppedInvalid: 0, droppedLoop: 0, droppedPolicy: 0, droppedNoListener: 0, errors: 0, problem: '', carried: [] }),
  });
  const text = await reg.metrics();
  const rtt = /^lanrage_peer_rtt_seconds\{peer="bob",name="Bob"\} ([0-9.e-]+)$/m.exec(text);
  assert.ok(rtt && Math.abs(Number(rtt[1]) - 0.00042) < 1e-12, 'the RTT in seconds');
  assert.match(text, /^lanrage_peer_path\{peer="bob",name="Bob",path="direct",fast_path="true"\} 1$/m);
  assert.match(text, /^lanrage_peer_path\{peer="bob",name="Bob",path="relayed",fast_path="false"\} 0$/m);
  assert.match(text, /^lanrage_peer_loss_ratio\{peer="bob",name="Bob"\} 0\.05$/m);
  assert.match(text, /^lanrage_peer_receive_bytes_total\{peer="bob",name="Bob"\} 12345$/m);
  assert.match(text, /^lanrage_relay_datagrams_total\{direction="tx",kind="all"\} 7$/m);
  assert.match(text, /^lanrage_lan_datagrams_total\{counter="dropped_rate_limited"\} 0$/m);
  assert.match(text, /^lanrage_helper_resident_memory_bytes \d+$/m);
});


test('peer metrics: unwatched at rest the round backs off 1 → 2 → 4 s, filling the 1 s history; a watcher or traffic brings 1 s back at once', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    let now = 0;
    let cur = input({ rxBytes: 1000, txBytes: 1000 });
    const rounds: number[] = [];
    const history: number[] = [];
    const pm = new PeerMetrics({
      source: { inputs: async () => (rounds.push(now), [cur]), fastPathCounters: async () => new Map() },
      log,
      onSamples: (s) => history.push(...s.map((x) => x.atMs)),
      now: () => now,
    });
    const advance = async (ms: number): Promise<void> => {
      for (let i = 0; i < ms / 500; i++) {
        now += 500;
        mock.timers.tick(500);
        for (let j = 0; j < 10; j++) await Promise.resolve();
      }
    };
    pm.start();
    await advance(16_000);
    assert.deepEqual(rounds, [1000, 2000, 4000, 8000, 12_000, 16_000], 'at rest: every 2, then 4 s');
    assert.equal(REST_MAX_MS, 4000);
    assert.deepEqual(history, Array.from({ length: 16 }, (_, i) => (i + 1) * 1000), 'one history sample per second all the same');
    // A Watch with metrics: a round at once, then every second.
    rounds.length = 0;
    const release = pm.watch();
    await advance(3000);
    assert.deepEqual(rounds, [16_000, 17_000, 18_000, 19_000]);
    release();
    await advance(6000);
    assert.deepEqual(rounds.slice(4), [20_000, 22_000], 'unwatched: backing off again');
    // Traffic (more than keepalives): 1 s again after the next round.
    rounds.length = 0;
    cur = { ...cur, rxBytes: cur.rxBytes + 50_000, txBytes: cur.txBytes + 50_000 };
    await advance(6000);
    assert.equal(rounds[1]! - rounds[0]!, 1000, 'traffic: back to 1 s');
    pm.stop();
  } finally {
    mock.timers.reset();
  }
});

test('peer metrics: RTT and jitter are computed again only after a new pong', async () => {
  let recents = 0;
  class CountingStats extends ProbeStats {
    override recent(n: number): number[] {
      recents++;
      return super.recent(n);
    }
  }
  const direct = new CountingStats();
  direct.answered(10);
  direct.answered(12);
  let now = 1000;
  const cur = input({ probes: { direct, relay: new ProbeStats(), proxied: { rx: 0, tx: 0 }, fastEndpoint: null } });
  const pm = new PeerMetrics({ source: { inputs: async () => [cur], fastPathCounters: async () => new Map() }, log, onSamples: () => undefined, now: () => now });
  const a = await pm.tick();
  now += 1000;
  const b = await pm.tick();
  assert.equal(recents, 1, 'no new pong: the last figures stand');
  assert.equal(b[0]!.rttMs, a[0]!.rttMs);
  assert.equal(b[0]!.jitterMs, 2);
  direct.answered(30);
  now += 1000;
  const c = await pm.tick();
  assert.equal(recents, 2);
  assert.equal(c[0]!.rttMs, 10);
  assert.ok(Math.abs(c[0]!.jitterMs - 10) < 1e-9);
});
