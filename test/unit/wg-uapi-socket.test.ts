import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { uapiRequest, type UapiTiming } from '../../helper/wg/uapi-socket.js';
import { LoopLag } from '../../helper/core/loop-lag.js';

const ANSWER = 'errno=0\n\n';

/**
 * A UAPI-like unix socket that writes its answer as soon as it accepts a connection, then runs
 * `afterAnswer`. (The client's connect callback and this accept run in the same event-loop
 * iteration, with no timers between them, so the order below does not depend on machine speed.)
 */
async function answeringSocket(afterAnswer: () => void): Promise<{ path: string; close(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'lanrage-uapi-'));
  const path = join(dir, 'wg.sock');
  const server: Server = createServer((c) => {
    c.on('error', () => undefined);
    c.write(ANSWER);
    afterAnswer();
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    close() {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const block = (ms: number): void => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};

test('UAPI request: an answer that arrived while our own event loop was stalled past the timeout is taken, not timed out', async () => {
  // The stall starts once the answer is in the client's socket: when the loop runs again the
  // timeout is due and the answer unread (timers run before socket reads).
  const s = await answeringSocket(() => block(1500));
  try {
    const timing: UapiTiming = {};
    const text = await uapiRequest(s.path, 'set=1\n\n', 1000, timing);
    assert.equal(text, ANSWER);
    assert.equal(typeof timing.connectMs, 'number');
    assert.equal(typeof timing.answerMs, 'number');
  } finally {
    s.close();
  }
});

test('UAPI request: a socket that never answers still times out', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lanrage-uapi-'));
  const path = join(dir, 'mute.sock');
  const server = createServer((c) => c.on('error', () => undefined));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  try {
    await assert.rejects(uapiRequest(path, 'get=1\n\n', 100), /no answer from .* within 100 ms/);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('LoopLag: a blocked event loop shows as lateness at least as long as most of the block', async () => {
  const lag = new LoopLag();
  const stop = lag.watch();
  await new Promise((r) => setTimeout(r, 30));
  block(120);
  await new Promise((r) => setTimeout(r, 30));
  // A lower bound only: however fast the machine, the timer cannot run during the block.
  assert.ok(stop() >= 100);
});
