import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EarlyTunnel } from '../../helper/party/early-tunnel.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A device start shaped like createWgDevice's: the slow start first, then the address, else clean-up. */
function fakeCreate(): { log: string[]; create: (address: Promise<string>) => Promise<{ address: string }>; failStart(err: Error): void } {
  const log: string[] = [];
  let startFails: Error | undefined;
  return {
    log,
    failStart: (err) => (startFails = err),
    async create(address) {
      log.push('start');
      await tick();
      if (startFails) throw startFails;
      try {
        const a = await address;
        log.push(`up ${a}`);
        return { address: a };
      } catch (err) {
        log.push('removed');
        throw err;
      }
    },
  };
}

test('the device starts before the address is known and comes up with it once taken', async () => {
  const f = fakeCreate();
  const early = new EarlyTunnel({ create: f.create });
  assert.deepEqual(f.log, ['start'], 'started at construction, while the join is still under way');
  await tick();
  await tick();
  assert.deepEqual(f.log, ['start'], 'waits for the address, does not come up without one');
  const dev = await early.take('10.66.0.7/16');
  assert.deepEqual(dev, { address: '10.66.0.7/16' });
  assert.deepEqual(f.log, ['start', 'up 10.66.0.7/16']);
  assert.equal(early.spent, true);
  await assert.rejects(early.take('10.66.0.8/16'), /already taken/, 'one device, one taker');
});

test('a cancelled join removes the device before cancel settles; later calls change nothing', async () => {
  const f = fakeCreate();
  const early = new EarlyTunnel({ create: f.create });
  await early.cancel(new Error('the invite secret is wrong'));
  assert.deepEqual(f.log, ['start', 'removed'], 'clean-up ran before cancel() returned');
  await early.cancel(new Error('again'));
  await assert.rejects(early.take('10.66.0.7/16'), /already taken or cancelled/);
  assert.deepEqual(f.log, ['start', 'removed']);
});

test('a device that could not start is reported by take, and only there', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown): void => void unhandled.push(err);
  process.on('unhandledRejection', onUnhandled);
  try {
    const f = fakeCreate();
    f.failStart(new Error('EPERM: creating the interface needs root'));
    const early = new EarlyTunnel({ create: f.create });
    await tick();
    await tick();
    await assert.rejects(early.take('10.66.0.7/16'), /EPERM/);
    // A start that failed while the join failed too: cancel settles without throwing.
    const g = fakeCreate();
    g.failStart(new Error('EPERM'));
    const other = new EarlyTunnel({ create: g.create });
    await tick();
    await other.cancel(new Error('join failed'));
    await tick();
    assert.deepEqual(unhandled, [], 'no unhandled rejection from a start nobody waited for yet');
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
