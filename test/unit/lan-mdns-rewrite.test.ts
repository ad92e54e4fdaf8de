import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rewriteMdnsAddresses } from '../../helper/lan/mdns-rewrite.js';

// A real-shaped mDNS response (what avahi sends for a resolved service): PTR, SRV, TXT and A
// records with name compression. Built by hand here from RFC 1035 / 6762 layouts.

function name(labels: string[]): Buffer {
  return Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
}
function rr(n: Buffer, type: number, data: Buffer, cls = 0x8001): Buffer {
  const h = Buffer.alloc(10);
  h.writeUInt16BE(type, 0);
  h.writeUInt16BE(cls, 2);
  h.writeUInt32BE(120, 4);
  h.writeUInt16BE(data.length, 8);
  return Buffer.concat([n, h, data]);
}
function response(records: Buffer[], questions: Buffer[] = []): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0x8400, 2);
  h.writeUInt16BE(questions.length, 4);
  h.writeUInt16BE(records.length, 6);
  return Buffer.concat([h, ...questions, ...records]);
}
const ip = (s: string) => Buffer.from(s.split('.').map(Number));

test('A records of this machine get the virtual IP; other hosts, other types and compression stay intact', () => {
  const host = name(['bhost', 'local']);
  const hostPtr = Buffer.from([0xc0, 12 + 0]); // pointer to the first name
  const srvData = Buffer.concat([Buffer.from([0, 0, 0, 0, 0x6d, 0x38]), hostPtr]);
  const msg = response([
    rr(host, 1, ip('192.168.1.20')),
    rr(hostPtr, 1, ip('127.0.0.1')),
    rr(name(['other', 'local']), 1, ip('192.168.1.99')),
    rr(name(['_game', '_udp', 'local']), 33, srvData),
    rr(name(['x', 'local']), 16, Buffer.from([3, 0x61, 0x3d, 0x31])),
  ]);
  const local = new Set(['192.168.1.20', '127.0.0.1']);
  const { payload, rewritten } = rewriteMdnsAddresses(msg, '10.66.0.2', (a) => local.has(a));
  assert.equal(rewritten, 2);
  assert.equal(payload.length, msg.length);
  assert.notEqual(payload, msg, 'a copy');
  assert.ok(payload.includes(Buffer.from([10, 66, 0, 2])));
  assert.ok(!payload.includes(ip('192.168.1.20')));
  assert.ok(payload.includes(ip('192.168.1.99')), 'another host keeps its address');
  assert.ok(payload.includes(srvData), 'SRV with a compressed target untouched');
  // Only the 4 address bytes of 2 records differ.
  let diff = 0;
  for (let i = 0; i < msg.length; i++) if (msg[i] !== payload[i]) diff++;
  assert.ok(diff <= 8, `${diff} bytes changed`);
});

test('queries, truncated or malformed messages, and non-local answers are returned as they are', () => {
  const q = response([], [Buffer.concat([name(['_game', '_udp', 'local']), Buffer.from([0, 12, 0, 1])])]);
  assert.equal(rewriteMdnsAddresses(q, '10.66.0.2', () => true).payload, q);
  const good = response([rr(name(['h', 'local']), 1, ip('192.168.1.20'))]);
  for (let cut = 0; cut < good.length; cut++) {
    const t = good.subarray(0, cut);
    assert.equal(rewriteMdnsAddresses(t, '10.66.0.2', () => true).payload, t, `cut at ${cut}`);
  }
  const loop = Buffer.concat([good.subarray(0, 12), Buffer.from([0x80, 0x00])]);
  assert.equal(rewriteMdnsAddresses(loop, '10.66.0.2', () => true).rewritten, 0);
  assert.equal(rewriteMdnsAddresses(good, '10.66.0.2', () => false).rewritten, 0);
  // Our own virtual IP is never "rewritten" to itself.
  const own = response([rr(name(['h', 'local']), 1, ip('10.66.0.2'))]);
  assert.equal(rewriteMdnsAddresses(own, '10.66.0.2', () => true).rewritten, 0);
});
