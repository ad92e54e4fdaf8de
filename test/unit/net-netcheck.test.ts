// Every RFC 5780 outcome of the classifier: mapping (none, EIM, ADM, APDM, unknown for each reason),
// filtering (EIF, ADF, APDF, unknown), port preservation and UDP blocked.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyNat, type BindingAnswer, type NetcheckObservations } from '../../helper/net/netcheck.js';

const OTHER = { ip: '192.0.2.2', port: 3479 };
const ans = (ip: string, port: number, other: { ip: string; port: number } | null = OTHER): BindingAnswer => ({ mapped: { ip, port }, other });
const base = (o: Partial<NetcheckObservations> = {}): NetcheckObservations => ({
  localPort: 40000,
  localAddresses: ['198.51.100.2'],
  test1: ans('203.0.113.6', 40000),
  filter1: ans('203.0.113.6', 40001),
  filter2: 'silent',
  filter3: 'silent',
  ...o,
});

test('mapping: endpoint-independent when test II sees the same mapping as test I', () => {
  const v = classifyNat(base({ test2: ans('203.0.113.6', 40000) }));
  assert.equal(v.mapping, 'endpoint-independent');
  assert.equal(v.udp, 'open');
  assert.equal(v.publicAddress, '203.0.113.6:40000');
  assert.equal(v.portPreserved, true);
});

test('mapping: address-dependent when II differs from I but III equals II', () => {
  const v = classifyNat(base({ test2: ans('203.0.113.6', 51000), test3: ans('203.0.113.6', 51000) }));
  assert.equal(v.mapping, 'address-dependent');
});

test('mapping: address-and-port-dependent when I, II and III all differ', () => {
  const v = classifyNat(base({ test1: ans('203.0.113.6', 61000), test2: ans('203.0.113.6', 51000), test3: ans('203.0.113.6', 52000) }));
  assert.equal(v.mapping, 'address-and-port-dependent');
  assert.equal(v.portPreserved, false, 'the NAT moved 40000 to 61000');
  assert.equal(v.publicAddress, '203.0.113.6:61000');
});

test('mapping: none when the mapped address is our own', () => {
  const v = classifyNat(base({ localAddresses: ['203.0.113.6'], test2: ans('203.0.113.6', 40000) }));
  assert.equal(v.mapping, 'none');
  assert.equal(v.portPreserved, true);
});

test('mapping unknown: alternate address silent, alternate port silent, one-address server', () => {
  let v = classifyNat(base({ test2: null }));
  assert.equal(v.mapping, 'unknown');
  assert.match(v.notes.join(' '), /alternate STUN address did not answer/);
  v = classifyNat(base({ test2: ans('203.0.113.6', 51000), test3: null }));
  assert.equal(v.mapping, 'unknown');
  assert.match(v.notes.join(' '), /alternate STUN port/);
  // One address, two ports: the same mapping cannot tell EIM from ADM...
  v = classifyNat(base({ test1: ans('203.0.113.6', 40000, null), secondPort: ans('203.0.113.6', 40000, null) }));
  assert.equal(v.mapping, 'unknown');
  assert.match(v.notes.join(' '), /--stun-alt-ip/);
  // ...but a different one proves port dependence.
  v = classifyNat(base({ test1: ans('203.0.113.6', 40000, null), secondPort: ans('203.0.113.6', 41234, null) }));
  assert.equal(v.mapping, 'address-and-port-dependent');
  v = classifyNat(base({ test1: ans('203.0.113.6', 40000, null), secondPort: null }));
  assert.equal(v.mapping, 'unknown');
});

test('filtering: endpoint-independent, address-dependent, address-and-port-dependent', () => {
  assert.equal(classifyNat(base({ filter2: 'answered', filter3: 'answered' })).filtering, 'endpoint-independent');
  assert.equal(classifyNat(base({ filter2: 'silent', filter3: 'answered' })).filtering, 'address-dependent');
  assert.equal(classifyNat(base({ filter2: 'silent', filter3: 'silent' })).filtering, 'address-and-port-dependent');
});

test('filtering unknown: server refuses CHANGE-REQUEST, has no alternate, primary silent for the filter socket', () => {
  let v = classifyNat(base({ filter2: 'refused', filter3: 'refused' }));
  assert.equal(v.filtering, 'unknown');
  assert.match(v.notes.join(' '), /--stun-alt-ip/);
  const { filter2: _a, filter3: _b, ...rest } = base();
  v = classifyNat(rest);
  assert.equal(v.filtering, 'unknown');
  v = classifyNat(base({ filter1: null }));
  assert.equal(v.filtering, 'unknown');
  assert.equal(v.udp, 'open', 'the mapping socket got answers');
  assert.equal(classifyNat(base({ filter2: 'silent', filter3: 'refused' })).filtering, 'unknown');
});

test('UDP blocked: no answer on either socket', () => {
  const v = classifyNat(base({ test1: null, filter1: null }));
  assert.deepEqual([v.udp, v.mapping, v.filtering, v.publicAddress, v.portPreserved], ['blocked', 'unknown', 'unknown', '', false]);
  assert.match(v.notes[0] ?? '', /blocked/);
});
