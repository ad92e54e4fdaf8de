import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { kernelWireguardPossible, linkPresent } from '../../helper/wg/iproute.js';

const linux = process.platform === 'linux';
if (!linux) console.error('wg-iproute.test: SKIPPED, /proc/net/dev and /lib/modules exist on Linux only');

test('linkPresent reads our namespace\'s links without a process', { skip: !linux }, async () => {
  assert.equal(await linkPresent('lo'), true);
  assert.equal(await linkPresent('lrnosuch9'), false);
  await assert.rejects(linkPresent('bad name;'), /interface/i);
});

test('no kernel WireGuard is assumed only when nothing could load it', { skip: !linux }, async () => {
  // A release without /lib/modules/RELEASE cannot modprobe anything: only a loaded or built-in module counts.
  assert.equal(await kernelWireguardPossible('0.0.0-no-such-release'), existsSync('/sys/module/wireguard'));
});
