// Real wireguard-go on the fast path across two port-restricted NATs, after a new handshake: the
// peer's handshake messages still reach WireGuard through the helper's 127.0.0.1 proxy port (the
// crossing guard judges them), and wireguard-go roams to the source of every authenticated packet,
// handshakes included. Without help it then talked to 127.0.0.1 (through the helper) until the
// peer's next data packet came in over the fast path: for a peer that sends nothing, for good. The
// check is the one a user makes with `wg show IFACE endpoints`: the peer's public endpoint.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadavg } from 'node:os';
import { haveCommands, requireOrSkip } from '../lib/repo.js';
import { eventually } from '../lib/wait.js';
import { labReady, pair, waitPath, type Side } from './drivers/punch-pair.js';

/** WireGuard's endpoint for each peer key, from `wg show IFACE endpoints`. */
async function wgEndpoints(s: Side, lab: Awaited<ReturnType<typeof pair>>['lab']): Promise<Map<string, string>> {
  const { stdout } = await lab.exec(s.ns, 'wg', ['show', s.wgInterface, 'endpoints']);
  return new Map(stdout.trim().split('\n').filter(Boolean).map((l) => l.split('\t') as [string, string]));
}

async function latestHandshake(s: Side, lab: Awaited<ReturnType<typeof pair>>['lab'], key: string): Promise<number> {
  const { stdout } = await lab.exec(s.ns, 'wg', ['show', s.wgInterface, 'latest-handshakes']);
  const line = stdout.split('\n').find((l) => l.startsWith(`${key}\t`));
  return line ? Number(line.split('\t')[1]) : 0;
}

test('fast path: after a new handshake WireGuard talks to the peer\'s public endpoint again, not to the helper\'s 127.0.0.1 proxy port', async (t) => {
  if (!(await labReady(t))) return;
  if (!requireOrSkip(haveCommands(['wireguard-go', 'wg']), 'wireguard-go and wg (Debian packages wireguard-go, wireguard-tools)', t)) return;
  const p = await pair(['port-restricted', 'port-restricted'], { realWg: true, fastPath: true });
  try {
    const { a, b, lab } = p;
    const [da, db] = await Promise.all([
      waitPath(a, 'b', (s) => s.kind === 'direct' && s.fastPath === true, 30_000, 'direct on the fast path'),
      waitPath(b, 'a', (s) => s.kind === 'direct' && s.fastPath === true, 30_000, 'direct on the fast path'),
    ]);
    const bPublic = da.endpoint as string;
    const aPublic = db.endpoint as string;
    assert.ok(bPublic.startsWith(`${b.publicIp}:`) && aPublic.startsWith(`${a.publicIp}:`), `fast paths use the public endpoints (${bPublic}, ${aPublic})`);
    await eventually(`a's WireGuard points at ${bPublic}`, async () => (await wgEndpoints(a, lab)).get(b.wgKey) === bPublic, 10_000);

    // A new handshake, started by a and with nothing for b to answer but the handshake itself:
    // a forgets b (its session keys with it), and b comes back with the endpoint and a persistent
    // keepalive, whose first keepalive (sent at once) needs a handshake. b gets a's empty
    // keepalive afterwards, which it does not answer: b sends a nothing more.
    const before = await a.driver.counters();
    await lab.exec(a.ns, 'wg', ['set', a.wgInterface, 'peer', b.wgKey, 'remove']);
    await lab.exec(a.ns, 'wg', ['set', a.wgInterface, 'peer', b.wgKey, 'allowed-ips', `${b.tunnelIp}/32`, 'endpoint', bPublic, 'persistent-keepalive', '25']);
    await eventually('a completes a new handshake with b', async () => (await latestHandshake(a, lab, b.wgKey)) > 0, 20_000);
    const after = await a.driver.counters();
    // b's handshake response came through a's helper (not steered by nftables): the case at hand.
    assert.ok(after.wg_to_wireguard > before.wg_to_wireguard, `b's handshake response reached WireGuard through a's helper (${before.wg_to_wireguard} → ${after.wg_to_wireguard})`);

    // b sends nothing now, so only the helper can bring a's WireGuard back to b's public endpoint.
    let seen = '';
    await eventually(
      `a's WireGuard points at b's public endpoint ${bPublic} again after the handshake`,
      async () => (seen = (await wgEndpoints(a, lab)).get(b.wgKey) ?? '') === bPublic,
      10_000,
      100,
    ).catch((err: Error) => assert.fail(`${err.message}; it has ${seen}`));
    await eventually(`b's WireGuard points at a's public endpoint ${aPublic}`, async () => (await wgEndpoints(b, lab)).get(a.wgKey) === aPublic, 10_000, 100);
    const fin = await a.driver.counters();
    t.diagnostic(`a: endpoint pushes after handshakes ${fin.fastpath_repoints}; load ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);

    // The tunnel carries traffic on the fast path, and the endpoints stay where they are.
    await lab.exec(a.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', String(b.tunnelIp)], { timeoutMs: 20_000 });
    assert.equal((await wgEndpoints(a, lab)).get(b.wgKey), bPublic);
    assert.equal((await wgEndpoints(b, lab)).get(a.wgKey), aPublic);
  } finally {
    await p.close();
  }
});
