import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LatestOnly } from '../../helper/core/latest-only.js';

/** A run that waits until released, recording what it was given. */
function gated(): { ran: number[]; release(): void; q: LatestOnly<number> } {
  const ran: number[] = [];
  let open: () => void = () => {};
  const q = new LatestOnly<number>(async (v) => {
    ran.push(v);
    await new Promise<void>((r) => (open = r));
    if (v < 0) throw new Error(`bad ${v}`);
  });
  return { ran, release: () => open(), q };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('wishes that queue behind a run collapse into the newest one', async () => {
  const g = gated();
  const done: number[] = [];
  const ps = [1, 2, 3, 4].map((v) => g.q.push(v).then(() => void done.push(v)));
  await tick();
  assert.deepEqual(g.ran, [1], 'the first wish runs at once');
  g.release();
  await tick();
  assert.deepEqual(g.ran, [1, 4], 'wishes 2 and 3 were overtaken by 4 and never run');
  assert.deepEqual(done, [1], 'those who asked for 2-4 wait for the run of 4');
  g.release();
  await Promise.all(ps);
  assert.deepEqual(done, [1, 2, 3, 4]);
  await g.q.settled();
});

test('a failing run rejects everyone it answered; later wishes still run', async () => {
  const g = gated();
  const first = g.q.push(1);
  await tick();
  const a = g.q.push(5);
  const b = g.q.push(-1);
  g.release();
  await first;
  await tick();
  g.release();
  await assert.rejects(a, /bad -1/);
  await assert.rejects(b, /bad -1/);
  const c = g.q.push(7);
  await tick();
  g.release();
  await c;
  assert.deepEqual(g.ran, [1, -1, 7]);
});

test('settled() waits for the queue to drain and never rejects', async () => {
  const g = gated();
  void g.q.push(-2).catch(() => undefined);
  await tick();
  let settled = false;
  const s = g.q.settled().then(() => (settled = true));
  await tick();
  assert.equal(settled, false);
  g.release();
  await s;
  assert.equal(settled, true);
});
