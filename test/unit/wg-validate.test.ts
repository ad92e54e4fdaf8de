import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkAllowedIps, checkCidr, checkEndpoint, checkInterfaceName, parseEndpoint, WgInputError, formatEndpoint } from '../../helper/wg/index.js';

test('interface names: what Linux and wireguard-go accept, nothing a shell or a path could abuse', () => {
  for (const ok of ['lanrage0', 'wg0', 'a', 'lrt1a2ba', 'x.y-z_0', 'abcdefghijklmno']) assert.equal(checkInterfaceName(ok), ok);
  const hostile = ['eth0; rm -rf /', '', 'abcdefghijklmnop', '0wg', '-wg', '.wg', 'wg/0', '../x', 'wg 0', 'wg0\n', 'wg$0', 'wg`id`', 'wgé', 5, null];
  for (const bad of hostile) assert.throws(() => checkInterfaceName(bad), WgInputError, `accepted ${JSON.stringify(bad)}`);
});

test('endpoints: IPv4/IPv6 literals with a port 1-65535, nothing else', () => {
  assert.deepEqual(parseEndpoint('192.0.2.1:51820'), { ip: '192.0.2.1', port: 51820, family: 4 });
  assert.deepEqual(parseEndpoint('[2001:db8::1]:1'), { ip: '2001:db8::1', port: 1, family: 6 });
  for (const ok of ['1.2.3.4:65535', '[::1]:51820', '[::ffff:192.0.2.1]:5', '127.0.0.1:1']) assert.equal(checkEndpoint(ok), ok);
  const hostile = [
    'host.example:1',
    'localhost:51820',
    '1.2.3.4:0',
    '[::1]:70000',
    '1.2.3.4:65536',
    '1.2.3.4',
    '1.2.3.4:',
    '1.2.3.4:01',
    '1.2.3.4:+1',
    '1.2.3.4:1e3',
    '::1:51820',
    '[::1]',
    '[::1]51820',
    '1.2.3.256:1',
    '01.2.3.4:5',
    ' 1.2.3.4:5',
    '1.2.3.4:5\nallowed_ip=0.0.0.0/0',
    '[fe80::1%eth0]:5',
    '[1.2.3.4]:5',
    'eth0; rm -rf /',
    '',
    12,
  ];
  for (const bad of hostile) assert.throws(() => checkEndpoint(bad), WgInputError, `accepted ${JSON.stringify(bad)}`);
  assert.equal(formatEndpoint('2001:db8::2', 9), '[2001:db8::2]:9');
  assert.equal(formatEndpoint('192.0.2.9', 9), '192.0.2.9:9');
});

test('allowed IPs and addresses: CIDR with a valid prefix length', () => {
  for (const ok of ['10.66.0.0/16', '10.66.0.2/32', '0.0.0.0/0', 'fd00::/64', '::/0', '2001:db8::1/128']) assert.equal(checkCidr(ok), ok);
  const hostile = ['10.66.0.0/33', '10.66.0.0', '10.66.0.0/', 'fd00::/129', '10.66.0.0/016', 'host/24', '10.66.0.0/16\nallowed_ip=0.0.0.0/0', '10.66.0.0/16 ', '10.66.0.0/-1', '1.2.3.4/8/8'];
  for (const bad of hostile) assert.throws(() => checkCidr(bad), WgInputError, `accepted ${JSON.stringify(bad)}`);
  assert.deepEqual(checkAllowedIps(['10.66.0.1/32', 'fd00::1/128']), ['10.66.0.1/32', 'fd00::1/128']);
  assert.throws(() => checkAllowedIps('10.66.0.1/32'), WgInputError);
  assert.throws(() => checkAllowedIps(Array.from({ length: 257 }, () => '10.0.0.0/8')), WgInputError);
  assert.throws(() => checkAllowedIps(['10.66.0.1/32', 'x']), WgInputError);
});
