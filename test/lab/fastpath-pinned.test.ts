import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FastPath } from '../../helper/net/fastpath.js';
import { requireOrSkip } from '../lib/repo.js';
import { labAvailable, withLab } from './lab.js';

// A pinned (birthday) peer's packets on the fast path, counted by real nftables in a lab
// namespace: WireGuard's socket sends to the peer (leaving from the pinned port), the peer answers
// to the pinned port (its data steered to WireGuard; its handshake initiation, like disco, left to
// the helper's pinned socket, where the crossing guard judges it, and not counted), and
// FastPath.counters() reports the packets and bytes under the peer's id.

const WG = 41001;
const PUB = 41002;
const PINNED = 41003;
const PEER = 41004;
const PAYLOAD = 148; // a WireGuard handshake initiation's size; nft counts IP bytes: +28

// Runs inside the namespace: sockets for WireGuard and the peer on loopback.
const SCRIPT = `
const dgram = require('dgram');
const [WG, PINNED, PEER, PAYLOAD] = process.argv.slice(1).map(Number);
const wg = dgram.createSocket('udp4'), peer = dgram.createSocket('udp4'), pin = dgram.createSocket('udp4');
const wgType = Buffer.alloc(PAYLOAD); wgType.writeUInt32LE(1, 0);
const data = Buffer.alloc(PAYLOAD); data.writeUInt32LE(4, 0);
const disco = Buffer.from('TS💬' + 'x'.repeat(40));
let atPeer = [], atWg = [], atPin = [];
peer.on('message', (m, r) => atPeer.push(r.port));
wg.on('message', (m) => atWg.push(m[0]));
pin.on('message', (m) => atPin.push(m[0]));
wg.bind(WG, '127.0.0.1', () => peer.bind(PEER, '127.0.0.1', () => pin.bind(PINNED, '127.0.0.1', async () => {
  const pause = () => new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < 3; i++) { wg.send(wgType, PEER, '127.0.0.1'); await pause(); }
  for (let i = 0; i < 2; i++) { peer.send(data, PINNED, '127.0.0.1'); await pause(); }
  peer.send(wgType, PINNED, '127.0.0.1');
  peer.send(disco, PINNED, '127.0.0.1');
  await pause();
  console.log(JSON.stringify({ atPeer, atWg, atPin }));
  process.exit(0);
})));
`;

test('fast path: a pinned peer gets its own nftables counters (tx leaving from the pinned port, rx steered to WireGuard; disco not counted)', async (t) => {
  const avail = await labAvailable();
  if (!requireOrSkip(avail.ok, `network lab (${avail.why ?? ''})`, t)) return;
  await withLab({ sites: [{ name: 'a', kind: 'port-restricted' }] }, async (lab) => {
    const ns = lab.site('a').host.ns;
    await lab.exec(ns, 'ip', ['link', 'set', 'lo', 'up']);
    const fp = new FastPath({
      iface: `pin${lab.id}`,
      wgPort: () => WG,
      pubPort: () => PUB,
      run: async (r) => void (await lab.exec(ns, 'nft', ['-f', '-'], { input: r })),
      list: async (table) => (await lab.exec(ns, 'nft', ['-j', 'list', 'table', 'ip', table])).stdout,
    });
    await fp.set('peer-b', `127.0.0.1:${PEER}`, PINNED);
    // A second, ordinary fast-path peer shares the table; its counters stay apart.
    await fp.set('peer-c', '127.0.0.2:40000');
    const before = await fp.counters();
    assert.deepEqual(before.get('peer-b'), { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0 });

    const { stdout } = await lab.exec(ns, process.execPath, ['-e', SCRIPT, String(WG), String(PINNED), String(PEER), String(PAYLOAD)], { timeoutMs: 20_000 });
    const seen = JSON.parse(stdout) as { atPeer: number[]; atWg: number[]; atPin: number[] };
    // The rules did their job, so the counters count real fast-path traffic.
    assert.deepEqual(seen.atPeer, [PINNED, PINNED, PINNED], 'WireGuard\'s packets reach the peer from the pinned port');
    assert.deepEqual(seen.atWg, [4, 4], 'the peer\'s WireGuard data to the pinned port reaches WireGuard');
    assert.deepEqual(seen.atPin, [1, 'T'.charCodeAt(0)], 'its handshake initiation and disco reach the helper\'s pinned socket');

    const c = await fp.counters();
    assert.deepEqual(c.get('peer-b'), { txPackets: 3, txBytes: 3 * (PAYLOAD + 28), rxPackets: 2, rxBytes: 2 * (PAYLOAD + 28) });
    assert.deepEqual(c.get('peer-c'), { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 });
    await fp.close();
  });
});
