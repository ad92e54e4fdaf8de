import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status as Status } from '@grpc/grpc-js';
import { ApiError } from '../../helper/core/api-error.js';
import { NatMapping } from '../../helper/gen/lanrage/control/v1/control.js';
import { base32, deviceIdFromIdentityKey, DEVICE_ID_RE, hashSecret, INVITE_SECRET_RE, newInviteSecret, newPartyId, PARTY_ID_RE, secretMatches } from '../../helper/control/ids.js';
import { checkCandidates, checkKey, checkName, checkNatHints, parseCandidate } from '../../helper/control/validate.js';
import { formatInviteLink, parseInviteLink } from '../../helper/controlclient/invite.js';

const invalid = (fn: () => unknown, re: RegExp): void =>
  assert.throws(fn, (e: ApiError) => {
    assert.ok(e instanceof ApiError, String(e));
    assert.equal(e.code, Status.INVALID_ARGUMENT);
    assert.match(e.message, re);
    return true;
  });

test('names: 1-48 characters of letters, digits, space and ._-\'!', () => {
  for (const ok of ['a', 'Friday LAN!', "O'Neil's den", 'Zoë_2.0-beta', 'パーティー', 'x'.repeat(48)]) assert.equal(checkName('name', ok), ok);
  for (const bad of ['', ' leading', 'trailing ', 'x'.repeat(49), 'semi;colon', 'new\nline', '<script>', 'tab\there', '!first', 'e\u0301 decomposed']) {
    invalid(() => checkName('name', bad), /1-48 characters/);
  }
});

test('keys are exactly 32 bytes and not all zeros', () => {
  assert.equal(checkKey('k', new Uint8Array(32).fill(7)).length, 32);
  invalid(() => checkKey('wireguard_public_key', new Uint8Array(31)), /wireguard_public_key must be 32 bytes, got 31/);
  invalid(() => checkKey('k', new Uint8Array(33)), /32 bytes/);
  invalid(() => checkKey('k', new Uint8Array(32)), /all zeros/);
});

test('candidates: IPv4/IPv6 literal with port, canonical, no unspecified/multicast/broadcast, at most 16', () => {
  assert.deepEqual(checkCandidates('c', ['203.0.113.7:41641', '[2001:DB8::1]:51820', '203.0.113.7:41641', '[::ffff:198.51.100.2]:5000', '127.0.0.1:9']), [
    '203.0.113.7:41641',
    '[2001:db8::1]:51820',
    '198.51.100.2:5000',
    '127.0.0.1:9',
  ]);
  for (const [bad, why] of [
    ['0.0.0.0:1', /0\.0\.0\.0\/8/],
    ['224.0.0.251:5353', /multicast/],
    ['239.255.255.250:1900', /multicast/],
    ['255.255.255.255:4445', /broadcast/],
    ['[::]:1', /unspecified/],
    ['[ff02::1]:1', /multicast/],
    ['203.0.113.7:0', /port/],
    ['203.0.113.7:65536', /port/],
    ['203.0.113.7:080', /port/],
    ['203.0.113.7', /not "ipv4:port"/],
    ['example.com:80', /not "ipv4:port"/],
    ['203.0.113.256:1', /not an IPv4/],
    ['[fe80::1%eth0]:1', /not "ipv4:port"/],
    ['2001:db8::1:80', /not "ipv4:port"/],
  ] as const) {
    invalid(() => checkCandidates('candidates', [bad]), why);
  }
  invalid(() => checkCandidates('candidates', Array.from({ length: 17 }, (_, i) => `203.0.113.${i + 1}:1`)), /at most 16/);
  assert.equal(typeof parseCandidate('x'.repeat(100)), 'string');
});

test('NAT hints: known mapping, bounded port delta', () => {
  assert.deepEqual(checkNatHints(undefined), { mapping: NatMapping.NAT_MAPPING_UNSPECIFIED, portMapped: false, portDelta: 0 });
  assert.equal(checkNatHints({ mapping: NatMapping.NAT_MAPPING_ENDPOINT_DEPENDENT, portMapped: true, portDelta: -2 }).portDelta, -2);
  invalid(() => checkNatHints({ mapping: 99 as NatMapping, portMapped: false, portDelta: 0 }), /not a known NatMapping/);
  invalid(() => checkNatHints({ mapping: NatMapping.NAT_MAPPING_NONE, portMapped: false, portDelta: 1001 }), /port_delta/);
});

test('ids: device id from the identity key, random party ids and secrets, hashed secrets compare', () => {
  assert.equal(base32(Buffer.from('foobar')), 'mzxw6ytboi'); // RFC 4648 test vector, lowercase
  const id = deviceIdFromIdentityKey(new Uint8Array(32).fill(1));
  assert.match(id, DEVICE_ID_RE);
  assert.equal(deviceIdFromIdentityKey(new Uint8Array(32).fill(1)), id);
  assert.notEqual(deviceIdFromIdentityKey(new Uint8Array(32).fill(2)), id);
  assert.match(newPartyId(), PARTY_ID_RE);
  const s = newInviteSecret();
  assert.match(s, INVITE_SECRET_RE);
  assert.notEqual(newInviteSecret(), s);
  assert.ok(secretMatches(hashSecret(s), s));
  assert.ok(!secretMatches(hashSecret(s), newInviteSecret()));
  assert.ok(!secretMatches(Buffer.alloc(3), s));
});

test('invite links round-trip and hostile links get a clear error', () => {
  const p = newPartyId();
  const s = newInviteSecret();
  const link = formatInviteLink('https://control.example.net:8668/', p, s);
  assert.equal(link, `lanrage://join?c=${encodeURIComponent('https://control.example.net:8668')}&p=${p}&s=${s}`);
  assert.deepEqual(parseInviteLink(`  ${link}\n`), { controlUrl: 'https://control.example.net:8668', partyId: p, secret: s, fallbackUrls: [] });
  assert.deepEqual(parseInviteLink(formatInviteLink('http://[::1]:9000', p, s)).controlUrl, 'http://[::1]:9000');

  const c = encodeURIComponent('http://192.0.2.1:8668');
  for (const [bad, why] of [
    [`https://join?c=${c}&p=${p}&s=${s}`, /must start with lanrage:\/\/join\?/],
    [`lanrage://join?c=${c}&p=${p}`, /needs the parameters/],
    [`lanrage://join?c=${c}&p=${p}&s=${s}&s=${s}`, /appears twice/],
    [`lanrage://join?c=${c}&p=${p}&s=${s}&x=1`, /unknown parameter "x"/],
    [`lanrage://join?c=${c}&p=${p.toUpperCase()}&s=${s}`, /party id/],
    [`lanrage://join?c=${c}&p=${p}&s=${s.slice(1)}`, /secret/],
    [`lanrage://join?c=${encodeURIComponent('file:///etc/passwd')}&p=${p}&s=${s}`, /http:\/\/ or https:\/\//],
    [`lanrage://join?c=${encodeURIComponent('http://user:pw@evil.example')}&p=${p}&s=${s}`, /no user, path/],
    [`lanrage://join?c=${encodeURIComponent('http://evil.example/x?y')}&p=${p}&s=${s}`, /no user, path/],
    [`lanrage://join?c=${encodeURIComponent('javascript:alert(1)')}&p=${p}&s=${s}`, /characters an invite link never has/],
    [`lanrage://join?c=${encodeURIComponent('ftp://192.0.2.1')}&p=${p}&s=${s}`, /http:\/\/ or https:\/\//],
    [`lanrage://join?c=%E0%A4%A&p=${p}&s=${s}`, /percent-encoded/],
    [`lanrage://join?c=${c}&p=${p}&s=${s}<script>`, /characters an invite link never has/],
    [`lanrage://join?c=${c}&p=${p}&s=${s}${'&'.repeat(1100)}`, /longer than 1024/],
    [`lanrage://join?c=${c}&p=${p}&s=${s}&a=${encodeURIComponent('file:///etc/passwd')}`, /http:\/\/ or https:\/\//],
    [`lanrage://join?c=${c}&p=${p}&s=${s}&a=${c}`, /named twice/],
    [`lanrage://join?c=${c}&p=${p}&s=${s}&a=${encodeURIComponent('http://b:1,http://c:1,http://d:1,http://e:1')}`, /at most 3/],
    [`lanrage://join?c=${c}&p=${p}&s=${s}&a=`, /not a URL/],
    [`lanrage://join?c=${c}&&p=${p}&s=${s}`, /name=value/],
  ] as const) {
    invalid(() => parseInviteLink(bad), why);
  }
  invalid(() => formatInviteLink('http://x', 'nope', s), /party id/);
});

test('invite links carry other instances of the control service (a=), the one in use first', () => {
  const p = newPartyId();
  const s = newInviteSecret();
  const link = formatInviteLink('http://10.0.0.1:8668', p, s, ['http://10.0.0.2:8668/', 'http://10.0.0.1:8668', 'https://c.example.org']);
  assert.equal(link, `lanrage://join?c=${encodeURIComponent('http://10.0.0.1:8668')}&p=${p}&s=${s}&a=${encodeURIComponent('http://10.0.0.2:8668,https://c.example.org')}`);
  assert.deepEqual(parseInviteLink(link), { controlUrl: 'http://10.0.0.1:8668', partyId: p, secret: s, fallbackUrls: ['http://10.0.0.2:8668', 'https://c.example.org'] });
  // Without alternates the link is what older helpers make and read.
  assert.doesNotMatch(formatInviteLink('http://10.0.0.1:8668', p, s, ['http://10.0.0.1:8668']), /&a=/);
});
