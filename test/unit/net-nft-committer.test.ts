import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NftCommitter } from '../../helper/net/nft-committer.js';

/** A runner whose runs are recorded and can be held open (a slow nft) or made to fail. */
function recorder() {
  const runs: string[] = [];
  const held: Array<() => void> = [];
  const state = { hold: false, fail: false };
  const run = (r: string): Promise<void> => {
    runs.push(r);
    if (state.fail) return Promise.reject(new Error('nft: Device or resource busy'));
    return state.hold ? new Promise<void>((res) => held.push(res)) : Promise.resolve();
  };
  return { runs, held, state, run };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('nft committer: commits asked for while one runs share one more run, which renders the latest state', async () => {
  const r = recorder();
  let text = 'v0';
  let renders = 0;
  const c = new NftCommitter({ render: () => (renders++, text), run: r.run });
  r.state.hold = true;
  const first = c.commit();
  await tick();
  assert.deepEqual(r.runs, ['v0']);
  r.state.hold = false;
  const later: Promise<void>[] = [];
  for (let i = 1; i <= 10; i++) {
    text = `v${i}`;
    later.push(c.commit());
  }
  assert.ok(later.every((p) => p === later[0]), 'every commit asked for while waiting is the same promise');
  (r.held.shift() as () => void)();
  await Promise.all([first, ...later]);
  assert.deepEqual(r.runs, ['v0', 'v10'], 'one run for the ten changes, with the last of them');
  assert.equal(renders, 2, 'rendered when each run starts, not when asked for');
});

test('nft committer: the installed ruleset again runs no nft; null from render runs nothing', async () => {
  const r = recorder();
  let text: string | null = 'a';
  const applied: string[] = [];
  const c = new NftCommitter({ render: () => text, run: r.run, onApplied: (x) => applied.push(x) });
  await c.commit();
  await c.commit();
  assert.deepEqual(r.runs, ['a']);
  text = null;
  await c.commit();
  assert.deepEqual(r.runs, ['a']);
  text = 'b';
  await c.commit();
  text = 'a';
  await c.commit(); // a was installed before b: it is not installed now
  assert.deepEqual(r.runs, ['a', 'b', 'a']);
  assert.deepEqual(applied, ['a', 'b', 'a'], 'onApplied only for runs that happened');
});

test('nft committer: a failed run rejects its commits, and the same ruleset runs again afterwards', async () => {
  const r = recorder();
  const applied: string[] = [];
  let text = 'a';
  const c = new NftCommitter({ render: () => text, run: r.run, onApplied: (x) => applied.push(x) });
  await c.commit();
  text = 'b';
  r.state.fail = true;
  const x = c.commit();
  const y = c.commit();
  await assert.rejects(x, /busy/);
  await assert.rejects(y, /busy/);
  r.state.fail = false;
  await c.commit();
  assert.deepEqual(r.runs, ['a', 'b', 'b'], 'the failed text is not taken as installed');
  // After a failure even the text installed before it runs again: nft may have left anything.
  text = 'a';
  r.state.fail = true;
  await assert.rejects(c.commit(), /busy/);
  r.state.fail = false;
  text = 'b';
  await c.commit();
  assert.deepEqual(r.runs, ['a', 'b', 'b', 'a', 'b']);
  assert.deepEqual(applied, ['a', 'b', 'b']);
});

test('nft committer: runs never overlap, and follow the order they were asked for', async () => {
  let active = 0;
  let most = 0;
  const runs: string[] = [];
  const run = async (t: string): Promise<void> => {
    active++;
    most = Math.max(most, active);
    runs.push(t);
    await new Promise((res) => setTimeout(res, 2));
    active--;
  };
  let n = 0;
  const c = new NftCommitter({ render: () => `r${n}`, run });
  const all: Promise<void>[] = [];
  for (let i = 0; i < 5; i++) {
    n++;
    all.push(c.commit());
    await tick();
  }
  await Promise.all(all);
  assert.equal(most, 1, 'one nft at a time');
  const nums = runs.map((t) => Number(t.slice(1)));
  assert.deepEqual([...nums].sort((a, b) => a - b), nums, 'in order');
  assert.equal(nums[nums.length - 1], 5, 'the last state is what is installed');
});

test('nft committer: replace() runs whatever is installed, and commits asked for after it run after it', async () => {
  const r = recorder();
  let text = 'a';
  const c = new NftCommitter({ render: () => text, run: r.run });
  r.state.hold = true;
  const a = c.commit();
  await tick();
  r.state.hold = false;
  text = 'b';
  const b = c.commit(); // queued behind the running one
  const removal = c.replace('remove');
  text = 'c';
  const after = c.commit(); // must not ride on b's run, which the removal would then undo
  assert.notEqual(after, b);
  (r.held.shift() as () => void)();
  await Promise.all([a, b, removal, after]);
  assert.deepEqual(r.runs, ['a', 'c', 'remove', 'c'], 'b rendered late (c); the last run installs c');
  // The removal forgot what was installed: the same ruleset as before it runs again.
  const r2 = recorder();
  const c2 = new NftCommitter({ render: () => 'x', run: r2.run });
  await c2.commit();
  await c2.replace('remove');
  await c2.commit();
  assert.deepEqual(r2.runs, ['x', 'remove', 'x']);
  // replace() reports nft's failure; the chain goes on.
  r2.state.fail = true;
  await assert.rejects(c2.replace('remove'), /busy/);
  r2.state.fail = false;
  await c2.commit();
  assert.deepEqual(r2.runs, ['x', 'remove', 'x', 'remove', 'x']);
});
