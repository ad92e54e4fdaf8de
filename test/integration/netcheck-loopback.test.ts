// runNetcheck against the real responder on loopback (127.0.0.1 and 127.0.0.2 are both local):
// no NAT, so mapping "none" and endpoint-independent filtering with two addresses; unknowns with
// one; "blocked", within the time bound, when nothing answers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { startStunResponder } from '../../helper/control/stun-responder.js';
import { createLogger } from '../../helper/core/log.js';
import { runNetcheck } from '../../helper/net/netcheck-run.js';

const log = createLogger({ role: 'test' }, () => {});

test('two addresses on loopback: no NAT, endpoint-independent filtering, port preserved', async () => {
  const stun = await startStunResponder({ host: '127.0.0.1', altHost: '127.0.0.2', port: 0, log });
  try {
    assert.deepEqual(stun.hosts, ['127.0.0.1', '127.0.0.2']);
    const r = await runNetcheck({ stunServers: stun.ports.map((p) => `127.0.0.1:${p}`), bindAddress: '127.0.0.1', localAddresses: () => ['127.0.0.1'] });
    assert.equal(r.udp, 'open');
    assert.equal(r.mapping, 'none');
    assert.equal(r.filtering, 'endpoint-independent');
    assert.equal(r.portPreserved, true);
    assert.match(r.publicAddress, /^127\.0\.0\.1:\d+$/);
    assert.deepEqual(r.notes, []);
  } finally {
    await stun.close();
  }
});

test('one address: CHANGE-REQUEST refused (420), so filtering is unknown and the report says why', async () => {
  const stun = await startStunResponder({ host: '127.0.0.1', port: 0, log });
  try {
    const r = await runNetcheck({ stunServers: stun.ports.map((p) => `127.0.0.1:${p}`), bindAddress: '127.0.0.1', localAddresses: () => [] });
    assert.equal(r.udp, 'open');
    assert.equal(r.mapping, 'unknown', 'EIM or ADM: one address cannot tell');
    assert.equal(r.filtering, 'unknown');
    assert.match(r.notes.join(' '), /--stun-alt-ip/);
  } finally {
    await stun.close();
  }
});

test('nothing answers: UDP blocked, and the run ends by its own timeouts', async () => {
  // A bound socket that never answers stands for a firewall that drops everything.
  const sink = createSocket('udp4');
  await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
  try {
    const t0 = Date.now();
    const r = await runNetcheck({ stunServers: [`127.0.0.1:${sink.address().port}`], bindAddress: '127.0.0.1' });
    const took = Date.now() - t0;
    assert.equal(r.udp, 'blocked');
    assert.equal(r.mapping, 'unknown');
    // Within 3 s by design; the bound tells "ended by its own timers" from "hung on the silence",
    // with room for a loaded machine's late timers.
    assert.ok(took < 10_000, `took ${took} ms`);
  } finally {
    sink.close();
  }
});
