import { test } from 'node:test';
import assert from 'node:assert/strict';
import { partyTargets } from '../../helper/servers/party-games.js';
import { wantedLan } from '../../helper/lan/party-lan.js';

test('party targets: the union of what runs here and what members announced, each with who wants it', () => {
  const local = { udpPorts: [2342], groups: [], servers: [], reasons: new Map([['2342', 'Chocolate Doom running here']]) };
  const members = new Map([
    ['bbb', { udpPorts: [8303, 2342], multicastGroups: ['224.0.2.60:4445'], servers: [], gameProfileIds: [] }],
    ['ccc', { udpPorts: [47777], multicastGroups: [], servers: [], gameProfileIds: [] }],
  ]);
  const names: Record<string, string> = { bbb: 'bob', ccc: 'carol' };
  const t = partyTargets(local, members, (id) => names[id] ?? id);
  assert.deepEqual(t.ports, [2342, 8303, 47777]);
  assert.deepEqual(t.groups, ['224.0.2.60:4445']);
  assert.equal(t.carried.find((c) => c.target === '2342')?.why, 'Chocolate Doom running here; announced by bob');
  assert.equal(t.carried.find((c) => c.target === '47777')?.why, 'announced by carol');

  // The relay then carries (captures and accepts) them on top of the built-in ports.
  const w = wantedLan({ virtualIp: '10.66.0.1', tunnelInterface: 'wg0' }, true, [], 8668, t)!;
  for (const p of [2342, 8303, 47777, 27960]) assert.ok(w.ports.includes(p), String(p));
  assert.ok(w.groups.includes('224.0.2.60:4445') && w.groups.includes('224.0.0.251:5353'));
  assert.equal(wantedLan({ virtualIp: '10.66.0.1', tunnelInterface: 'wg0' }, true, [], 8668, { ports: [8668], groups: [] })!.ports.includes(8668), false, 'never the relay port');
});
