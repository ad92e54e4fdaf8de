// Real WireGuard (wireguard-go via helper/wg) over MagicSock across two port-restricted NATs:
// the tunnel comes up through the helper's proxy (WireGuard's first handshake is held, not lost,
// while the path is found), and with the Linux fast path the data stops passing through Node.
// Measures the time to the first packet through the tunnel and iperf3 throughput on both paths.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadavg } from 'node:os';
import { haveCommands, requireOrSkip } from '../lib/repo.js';
import { UdpProbe } from './udp-probe.js';
import { labReady, pair, waitPath } from './drivers/punch-pair.js';

const have = (cmd: string): boolean => haveCommands([cmd]);

/** b learns about a this much later: a's WireGuard handshake waits in a's hold queue meanwhile. */
const LAG_MS = 1000;

for (const fastPath of [false, true]) {
  const mode = fastPath ? 'fast path (nftables, data bypasses Node)' : 'through the helper (proxy)';
  test(`wireguard over magicsock, port-restricted ↔ port-restricted, ${mode}`, async (t) => {
    if (!(await labReady(t))) return;
    if (!requireOrSkip(have('wireguard-go') && have('wg'), 'wireguard-go and wg (Debian packages wireguard-go, wireguard-tools)', t)) return;
    const withIperf = have('iperf3');
    const p = await pair(['port-restricted', 'port-restricted'], { realWg: true, fastPath, delayBMs: LAG_MS });
    const probes: UdpProbe[] = [];
    try {
      const { a, b, lab } = p;
      const [echo, client] = await Promise.all([
        UdpProbe.start(lab, b.ns, { ports: [7000], echo: true }),
        UdpProbe.start(lab, a.ns, { ports: [7001] }),
      ]);
      probes.push(echo, client);
      // Through the tunnel from the start: WireGuard queues the datagram and sends its handshake
      // initiation to the helper's proxy port long before a path exists.
      const to = `${b.tunnelIp}:7000`;
      let n = 0;
      let firstAt: number | null = null;
      // When WireGuard first took a datagram for b (and so sent its first handshake initiation).
      let firstTakenAt: number | null = null;
      const deadline = performance.now() + LAG_MS + 30_000;
      while (firstAt === null && performance.now() < deadline) {
        const before = performance.now();
        const taken = await client.send(7001, to, `early-${n++}`).then(() => true, () => false); // ENOKEY until WireGuard has the peer
        if (taken) firstTakenAt ??= before;
        const got = await client.waitFor((x) => x.data.startsWith('early-'), 100, 'echo').catch(() => null);
        if (got) firstAt = performance.now();
      }
      const da = await waitPath(a, 'b', (s) => s.kind === 'direct' && s.fastPath === fastPath, 30_000, 'direct');
      const sinceJoin = firstAt === null ? null : firstAt - p.t0 - LAG_MS;
      t.diagnostic(`direct ${(da.at - p.t0 - LAG_MS).toFixed(0)} ms after b learned a; first datagram through the tunnel came back ${sinceJoin?.toFixed(0) ?? 'never'} ms after that (load ${loadavg().map((x) => x.toFixed(1)).join(' ')})`);
      assert.ok(firstAt !== null && firstTakenAt !== null, 'no datagram came back through the tunnel');
      // Had the first handshake initiation been lost, WireGuard would send its next one 5 s
      // (REKEY_TIMEOUT) after it, so nothing could come back sooner than 5 s after the first
      // datagram WireGuard took: an answer before then proves the first handshake was held and
      // went through, however slow the machine.
      assert.ok(firstAt - firstTakenAt < 5000, `first answer ${(firstAt - firstTakenAt).toFixed(0)} ms after WireGuard took the first datagram: its first handshake was lost (a loss costs 5 s)`);
      const ca = await a.driver.counters();
      t.diagnostic(`a: WireGuard packets held ${ca.wg_held}, flushed ${ca.wg_flushed}`);
      assert.ok(ca.wg_flushed >= 1, 'the handshake waited in the hold queue');

      const rtts: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t1 = performance.now();
        await client.send(7001, to, `rtt-${i}`);
        await client.waitFor((x) => x.data === `rtt-${i}`, 10_000, `echo ${i}`);
        rtts.push(performance.now() - t1);
      }
      t.diagnostic(`UDP echo through the tunnel (incl. probe process overhead): median ${rtts.sort((x, y) => x - y)[5]?.toFixed(2)} ms`);

      const wgShow = (await lab.exec(a.ns, 'wg', ['show', a.wgInterface, 'endpoints'])).stdout;
      if (fastPath) assert.ok(wgShow.includes(`${b.publicIp}:`), `WireGuard talks to b's public address itself: ${wgShow}`);
      else assert.match(wgShow, /127\.0\.0\.1:\d+/, `WireGuard talks to the helper's proxy port: ${wgShow}`);

      if (withIperf) {
        const server = lab.spawn(b.ns, 'iperf3', ['-s', '-1', '-B', String(b.tunnelIp)]);
        await new Promise((r) => setTimeout(r, 400));
        const before = await b.driver.counters();
        const { stdout: j } = await lab.exec(a.ns, 'iperf3', ['-c', String(b.tunnelIp), '-t', '3', '-J'], { timeoutMs: 20_000 });
        const after = await b.driver.counters();
        server.kill();
        const bps = (JSON.parse(j) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
        const viaNode = after.rx_wireguard - before.rx_wireguard;
        t.diagnostic(`iperf3 TCP a→b ${mode}: ${(bps / 1e6).toFixed(0)} Mbit/s; WireGuard packets through b's helper: ${viaNode}`);
        if (fastPath) assert.ok(viaNode < 10, `data bypassed the helper (${viaNode} packets through it)`);
        else assert.ok(viaNode > 1000, 'data went through the helper');
      } else {
        t.diagnostic('iperf3 missing: throughput not measured');
      }
    } finally {
      for (const pr of probes) pr.close();
      await p.close();
    }
  });
}
