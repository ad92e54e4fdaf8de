import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttemptLimiter, birthdayRole, concurrentAttempts, hitProbability, MAX_CONCURRENT, Spray, SPRAY_PORT_HIGH, SPRAY_PORT_LOW, SPRAY_PROBES, SPRAY_SOCKETS, sprayTarget, sprayTtl, retryGapMs } from '../../helper/net/birthday.js';

test('roles: a random symmetric NAT opens sockets towards a peer with one mapping, which probes', () => {
  const hard = { mapping: 'endpoint-dependent', portDelta: 0 } as const;
  const seq = { mapping: 'endpoint-dependent', portDelta: 2 } as const;
  const easy = { mapping: 'endpoint-independent', portDelta: 0 } as const;
  const unknown = { mapping: 'unknown', portDelta: 0 } as const;
  assert.equal(birthdayRole(hard, easy), 'open-sockets');
  assert.equal(birthdayRole(easy, hard), 'probe');
  assert.equal(birthdayRole(hard, hard), null, 'two random NATs: no birthday (stays relayed)');
  assert.equal(birthdayRole(easy, easy), null, 'plain punching handles it');
  assert.equal(birthdayRole(seq, easy), null, 'a sequential NAT is predicted instead');
  assert.equal(birthdayRole(easy, seq), null);
  assert.equal(birthdayRole(unknown, easy), null, 'not before STUN told us our NAT');
  assert.equal(birthdayRole(hard, null), null, 'nor before the peer published its NAT');
});

test('the budget makes a hit near certain: 256 sockets × 2048 probes > 99.9 %', () => {
  const p = hitProbability(SPRAY_SOCKETS, SPRAY_PROBES);
  assert.ok(p > 0.999, `P = ${p}`);
  assert.ok(Math.abs(hitProbability(256, 1024) - 0.983) < 0.002, '1024 probes would fail one pair in 50');
  assert.equal(hitProbability(0, 1000), 0);
  assert.equal(hitProbability(10, 0), 0);
  assert.equal(hitProbability(10, 1, 10), 1);
});

test('Spray: distinct random ports in range, paced, capped, stoppable', () => {
  let seq = 0;
  // A generator that repeats itself: the spray must still hand out distinct ports.
  const rand = (lo: number, hi: number): number => lo + (Math.floor(seq++ / 2) % (hi - lo));
  const s = new Spray('198.51.100.7', 1000, { total: 50, perSecond: 100, rand });
  const first = s.due(1000);
  assert.equal(first.length, 1, 'one probe at once');
  assert.equal(s.due(1000).length, 0, 'nothing more in the same instant');
  const next = s.due(1100);
  assert.equal(next.length, 10, '100/s → 10 more after 100 ms');
  assert.equal(s.nextDueAt(), 1000 + 110);
  const all = [...first, ...next, ...s.due(10_000)];
  assert.equal(all.length, 50, 'capped at the total however long it waited');
  assert.ok(s.done);
  assert.equal(s.nextDueAt(), null);
  const ports = all.map((e) => Number(e.split(':')[1]));
  assert.equal(new Set(ports).size, 50, 'no port probed twice');
  for (const p of ports) assert.ok(p >= SPRAY_PORT_LOW && p <= SPRAY_PORT_HIGH);
  assert.ok(all.every((e) => e.startsWith('198.51.100.7:')));
  const t = new Spray('198.51.100.7', 0);
  t.stop();
  assert.deepEqual(t.due(5000), []);
});

test('AttemptLimiter: one at a time, a pause between, a cap', () => {
  const l = new AttemptLimiter(2, () => 30_000);
  assert.ok(l.begin(0));
  assert.ok(!l.begin(1), 'one running');
  l.end(5000);
  assert.ok(!l.begin(20_000), 'too soon after the last');
  assert.ok(l.begin(35_000));
  l.end(40_000);
  assert.ok(!l.begin(1e9), 'two attempts, then relayed for good');
  assert.equal(l.attempts, 2);
});

test('sprayTarget: only an internet IP the peer published itself', () => {
  const isLan = (ep: string): boolean => ep.startsWith('192.168.');
  assert.equal(sprayTarget(['192.168.1.2:5', '203.0.113.9:4000'], ['203.0.113.9:1111', '192.168.1.2:5'], isLan), '203.0.113.9');
  assert.equal(sprayTarget(['198.51.100.66:4000'], ['203.0.113.9:1111'], isLan), null, 'a stranger\'s IP is never sprayed');
  assert.equal(sprayTarget(['192.168.1.2:5'], ['192.168.1.2:5'], isLan), null, 'LAN addresses are not sprayed');
  assert.equal(sprayTarget([], ['203.0.113.9:1'], isLan), null);
});

test('sprayTtl: attempts 2 and 3 prime one hop further (a carrier NAT behind the home router)', () => {
  assert.deepEqual([1, 2, 3, 4].map((k) => sprayTtl(2, k)), [2, 3, 3, 2]);
  assert.equal(sprayTtl(0, 2), 0, 'priming off stays off');
  assert.equal(sprayTtl(255, 2), 255);
});

test('the default schedule: four attempts, 3 s after the first, 35 s after later ones (a spoilt mapping expires)', () => {
  const l = new AttemptLimiter();
  const starts: number[] = [];
  let now = 0;
  while (starts.length < 10 && now < 1e6) {
    if (l.begin(now)) {
      starts.push(now);
      now += 11_000;
      l.end(now);
    }
    now += 1000;
  }
  assert.deepEqual(starts, [0, 14_000, 60_000, 106_000]);
  assert.equal(retryGapMs(1), 3000);
  assert.equal(retryGapMs(2), 35_000);
});

test('sprayTtl: a TTL that succeeded towards another peer goes first, the other one second', () => {
  // Unlearned: the usual TTL first, one hop further for attempts 2 and 3 (as before).
  assert.deepEqual([1, 2, 3, 4].map((a) => sprayTtl(2, a)), [2, 3, 3, 2]);
  assert.deepEqual([1, 2, 3, 4].map((a) => sprayTtl(2, a, 2)), [2, 3, 3, 2]);
  // Behind a CGNAT the further TTL succeeded: later peers start with it.
  assert.deepEqual([1, 2, 3, 4].map((a) => sprayTtl(2, a, 3)), [3, 2, 2, 3]);
  assert.deepEqual([1, 2].map((a) => sprayTtl(0, a, 3)), [0, 0], 'priming off stays off');
});

test('attempts run one at a time until one succeeded, then MAX_CONCURRENT', () => {
  assert.equal(concurrentAttempts(false), 1);
  assert.equal(concurrentAttempts(true), MAX_CONCURRENT);
  const l = new AttemptLimiter(2, () => 0);
  assert.equal(l.spent, false);
  assert.ok(l.begin(0));
  l.end(1);
  assert.ok(l.begin(1));
  assert.equal(l.spent, false, 'not while the last attempt runs');
  l.end(2);
  assert.equal(l.spent, true);
});
