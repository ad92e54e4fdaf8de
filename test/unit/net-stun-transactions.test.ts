import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../helper/core/clock.js';
import { encodeBindingRequest, encodeBindingResponse } from '../../helper/net/stun/binding.js';
import { bindingAnswerFrom } from '../../helper/net/stun/client.js';
import { TransactionTimeout, Transactions } from '../../helper/net/stun/transactions.js';

const timing = { rtoMs: [100, 200], finalWaitMs: 300, reliableTimeoutMs: 1000 };

test('stun transactions: an answer the request does not accept is left unclaimed and the request stays open', async () => {
  const clock = new ManualClock();
  const tx = new Transactions(clock, timing);
  const txid = Buffer.alloc(12, 7);
  const sent: Buffer[] = [];
  const p = tx.request(encodeBindingRequest(txid), (b) => sent.push(b), false, 'binding', bindingAnswerFrom('192.0.2.1:3478'));
  const answer = encodeBindingResponse(txid, { ip: '198.51.100.9', port: 4000 });
  assert.equal(tx.handle(answer, '192.0.2.66:3478'), false, 'from another address: a forgery');
  assert.equal(tx.handle(encodeBindingRequest(txid), '192.0.2.1:3478'), false, 'a request, not an answer');
  assert.equal(tx.size, 1);
  assert.equal(tx.handle(answer, '192.0.2.1:3478'), true);
  assert.deepEqual(await p, answer);
  assert.equal(sent.length, 1);
});

test('stun transactions: UDP retransmits on the schedule, then times out', async () => {
  const clock = new ManualClock();
  const tx = new Transactions(clock, timing);
  const sent: number[] = [];
  const p = tx.request(encodeBindingRequest(Buffer.alloc(12, 1)), () => sent.push(clock.now()), false, 'binding');
  const t0 = clock.now();
  clock.advance(100);
  clock.advance(200);
  assert.deepEqual(sent.map((t) => t - t0), [0, 100, 300]);
  clock.advance(299);
  assert.equal(tx.size, 1);
  clock.advance(1);
  await assert.rejects(p, TransactionTimeout);
  assert.equal(tx.size, 0);
});
