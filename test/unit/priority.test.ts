import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { raisePriority } from '../../helper/core/priority.js';
import { createLogger } from '../../helper/core/log.js';

const log = createLogger({ role: 'test' });
const isRoot = process.getuid?.() === 0;

/** A child of ours to change (never another process). */
function child(): { pid: number; stop(): void } {
  const c = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  return { pid: c.pid!, stop: () => void c.kill('SIGKILL') };
}

test('priority: every thread of the process is raised to the wanted nice value, never lowered', { skip: isRoot ? false : 'needs root (CAP_SYS_NICE) to raise a priority: SKIPPED' }, async () => {
  const c = child();
  try {
    await new Promise((r) => setTimeout(r, 200)); // node starts its threads
    const changed = raisePriority(c.pid, -7, log, 'test child');
    const threads = readdirSync(`/proc/${c.pid}/task`).map(Number);
    assert.ok(changed >= 1);
    assert.deepEqual(threads.map((t) => getPriority(t)), threads.map(() => -7), 'every thread, not only the first');
    // Already more urgent: left alone.
    setPriority(c.pid, -12);
    assert.equal(raisePriority(c.pid, -7, log, 'test child') < changed, true);
    assert.equal(getPriority(c.pid), -12);
  } finally {
    c.stop();
  }
});

test('priority: LANRAGE_PRIORITY=off leaves the process alone', async () => {
  const c = child();
  process.env.LANRAGE_PRIORITY = 'off';
  try {
    assert.equal(raisePriority(c.pid, -7, log, 'test child'), 0);
    assert.equal(getPriority(c.pid), 0);
  } finally {
    delete process.env.LANRAGE_PRIORITY;
    c.stop();
  }
});

test('priority: a process that is gone changes nothing and throws nothing', () => {
  assert.equal(raisePriority(2 ** 22 + 12345, -7, log, 'nobody'), 0);
});
