import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../helper/core/clock.js';
import { decodeStun, encodeBindingRequest, encodeBindingResponse, natFromAnswers, StunClient } from '../../helper/net/stun.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('stun: a Binding request is exactly the 20-byte header', () => {
  const txid = hex('b7e7a701 bc34d686 fa87dfae');
  assert.deepEqual(encodeBindingRequest(txid), hex('0001 0000 2112a442 b7e7a701 bc34d686 fa87dfae'));
  assert.throws(() => encodeBindingRequest(Buffer.alloc(8)));
});

test('stun: a Binding response carries XOR-MAPPED-ADDRESS, byte for byte', () => {
  const txid = hex('b7e7a701 bc34d686 fa87dfae');
  // 192.0.2.1:32853 XORed with the cookie: port 0x8055^0x2112, address c0000201^2112a442.
  assert.deepEqual(encodeBindingResponse(txid, { ip: '192.0.2.1', port: 32853 }), hex('0101 000c 2112a442 b7e7a701bc34d686fa87dfae 0020 0008 0001 a147 e112a643'));
});

test('stun: decodes the RFC 5769 sample IPv4 response (SOFTWARE, XOR-MAPPED-ADDRESS, integrity, fingerprint)', () => {
  const v = hex(`0101003c 2112a442 b7e7a701bc34d686fa87dfae
    8022000b 7465737420766563746f7220
    00200008 0001a147 e112a643
    00080014 2b91f599fd9e90c38c7489f92af9ba53f06be7d7
    80280004 c07d4c96`);
  const d = decodeStun(v);
  assert.ok(d);
  assert.equal(d.type, 0x0101);
  assert.deepEqual(d.txid, hex('b7e7a701bc34d686fa87dfae'));
  assert.equal(d.mapped, '192.0.2.1:32853');
});

test('stun: hostile or broken answers decode to null or no address, never throw', () => {
  assert.equal(decodeStun(Buffer.alloc(10)), null);
  assert.equal(decodeStun(hex('0101 0008 2112a442 000000000000000000000000')), null, 'declared length beyond the datagram');
  assert.equal(decodeStun(hex('0101 0002 2112a442 000000000000000000000000 0000')), null, 'length not a multiple of 4');
  // An IPv6 XOR-MAPPED-ADDRESS (the package throws on these).
  const v6 = hex('0101 0018 2112a442 000000000000000000000000 0020 0014 0002 a147' + '00'.repeat(16));
  const d = decodeStun(v6);
  assert.ok(d === null || d.mapped === null);
  // A plain MAPPED-ADDRESS is accepted when there is no XOR form.
  assert.equal(decodeStun(hex('0101 000c 2112a442 000000000000000000000000 0001 0008 0001 1f90 cb007105'))?.mapped, '203.0.113.5:8080');
});

test('stun: mapping behaviour from two server ports', () => {
  assert.deepEqual(natFromAnswers(['203.0.113.6:4000', '203.0.113.6:4000']), { mapping: 'endpoint-independent', publicAddress: '203.0.113.6:4000' });
  assert.deepEqual(natFromAnswers(['203.0.113.6:4000', '203.0.113.6:51234']), { mapping: 'endpoint-dependent', publicAddress: '203.0.113.6:4000' });
  assert.deepEqual(natFromAnswers(['203.0.113.6:4000', null]), { mapping: 'unknown', publicAddress: '203.0.113.6:4000' });
  assert.deepEqual(natFromAnswers([null, null]), { mapping: 'unknown', publicAddress: null });
});

test('stun: client retransmits at 250/500/1000 ms intervals, then gives up', async () => {
  const clock = new ManualClock(1_000_000);
  const sent: number[] = [];
  const c = new StunClient(() => sent.push(clock.now() - 1_000_000), clock);
  let result: string | null | undefined;
  void c.query('203.0.113.2:3478').then((r) => (result = r));
  clock.advance(2749);
  await Promise.resolve();
  assert.deepEqual(sent, [0, 250, 750, 1750]);
  assert.equal(result, undefined);
  clock.advance(1);
  await new Promise((r) => setImmediate(r));
  assert.equal(result, null);
});

test('stun: client matches answers by transaction id and by the server it asked', async () => {
  const clock = new ManualClock(1_000_000);
  const reqs: Buffer[] = [];
  const c = new StunClient((b) => reqs.push(b), clock);
  const p = c.query('203.0.113.2:3478');
  const req = reqs[0] as Buffer;
  const txid = req.subarray(8, 20);
  const answer = encodeBindingResponse(Buffer.from(txid), { ip: '203.0.113.6', port: 40001 });
  const other = encodeBindingResponse(Buffer.alloc(12, 9), { ip: '203.0.113.66', port: 1 });
  assert.equal(c.handle(other, '203.0.113.2:3478'), false, 'unknown transaction');
  assert.equal(c.handle(answer, '203.0.113.99:3478'), false, 'answer from a server we did not ask');
  assert.equal(c.handle(answer, '203.0.113.2:3478'), true);
  assert.equal(await p, '203.0.113.6:40001');
  assert.equal(c.handle(answer, '203.0.113.2:3478'), false, 'a duplicate answer is not ours any more');
  clock.advance(5000);
  assert.equal(reqs.length, 1, 'no retransmission after the answer');
  await assert.rejects(c.query('stun.example.com:3478'));
});
