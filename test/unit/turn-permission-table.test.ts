import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEndpoint, type Endpoint } from '../../helper/net/addr.js';
import { CHANNEL_MIN } from '../../helper/net/stun/codec.js';
import { PermissionTable } from '../../helper/net/turn/permission-table.js';

const T = { keepaliveMs: 10_000, permissionRefreshMs: 240_000, channelRefreshMs: 480_000, channelQuarantineMs: 900_000 };
const want = (...eps: string[]): Map<string, Endpoint> => new Map(eps.map((e) => [e, parseEndpoint(e) as Endpoint]));

test('turn permission table: one permission per IP, one channel per peer; what is due, and when', () => {
  const t = new PermissionTable(T);
  const ips = t.set(want('198.51.100.1:1000', '198.51.100.1:2000', '198.51.100.2:1000'), 0);
  assert.deepEqual([...ips].sort(), ['198.51.100.1', '198.51.100.2']);
  assert.equal(t.duePermissions(0).length, 2);
  assert.equal(t.dueChannels(0).length, 0, 'no channel before its permission is installed');
  for (const r of t.duePermissions(0)) t.permissionInstalled(r, 0);
  const due = t.dueChannels(0);
  assert.equal(due.length, 3);
  for (const p of due) assert.ok(t.assignChannel(p, 0));
  assert.deepEqual(due.map((p) => p.channel), [CHANNEL_MIN, CHANNEL_MIN + 1, CHANNEL_MIN + 2]);
  for (const p of due) t.channelBound(p, 0);
  assert.equal(t.peerOfChannel(CHANNEL_MIN + 1)?.key, '198.51.100.1:2000');
  // A ChannelBind refreshes the permission: the next thing due is the permissions, at 240 s.
  assert.equal(t.nextDue(0, 10_000), 10_000);
  assert.equal(t.nextDue(0, Infinity), T.permissionRefreshMs);
  assert.equal(t.duePermissions(T.permissionRefreshMs).length, 2);
});

test('turn permission table: a removed peer\'s channel waits out its quarantine, and comes back to the same peer', () => {
  const t = new PermissionTable(T);
  t.set(want('198.51.100.1:1000', '198.51.100.2:1000'), 0);
  for (const r of t.duePermissions(0)) t.permissionInstalled(r, 0);
  for (const p of t.dueChannels(0)) (t.assignChannel(p, 0), t.channelBound(p, 0));
  const first = t.peers.get('198.51.100.1:1000')?.channel;
  t.set(want('198.51.100.2:1000'), 1000);
  assert.equal(t.peerOfChannel(first as number), undefined, 'no data from a removed peer');
  assert.equal(t.perms.has('198.51.100.1'), false);
  // A new peer does not get the quarantined number; the old peer, coming back, does.
  t.set(want('198.51.100.2:1000', '198.51.100.3:1000'), 2000);
  const newcomer = t.peers.get('198.51.100.3:1000');
  assert.ok(newcomer && t.assignChannel(newcomer, 2000));
  assert.notEqual(newcomer.channel, first);
  t.set(want('198.51.100.1:1000', '198.51.100.2:1000', '198.51.100.3:1000'), 3000);
  const back = t.peers.get('198.51.100.1:1000');
  assert.ok(back && t.assignChannel(back, 3000));
  assert.equal(back.channel, first);
});

test('turn permission table: refusals, a new allocation and a loss', () => {
  const t = new PermissionTable(T);
  const ips = t.set(want('198.51.100.1:1000', '203.0.113.5:1000'), 0);
  const [a, b] = t.duePermissions(0);
  assert.ok(a && b);
  t.permissionInstalled(a, 0);
  t.permissionRefused(b, 'Forbidden IP');
  assert.deepEqual(t.refused(ips).map((r) => r.ip), ['203.0.113.5']);
  assert.equal(t.duePermissions(1_000_000).filter((r) => r.ip === '203.0.113.5').length, 0, 'a refused address is not asked again');
  const p = t.peers.get('198.51.100.1:1000');
  assert.ok(p && t.assignChannel(p, 0));
  const ch = p.channel;
  t.channelRefused(p, 0);
  assert.equal(p.channel, null);
  assert.equal(p.due, T.keepaliveMs, 'retried after a keepalive period');
  assert.ok(t.assignChannel(p, T.keepaliveMs));
  assert.notEqual(p.channel, ch, 'the refused number waits out its quarantine');
  t.channelBound(p, T.keepaliveMs);
  t.lost();
  assert.equal(p.bound, false);
  // Resumed: channels kept, everything due now. New: channels and permissions start over, refusals too.
  t.allocated(true);
  assert.equal(p.channel !== null && p.due === 0, true);
  t.allocated(false);
  assert.equal(p.channel, null);
  assert.equal(t.refused(ips).length, 0);
  assert.equal(t.duePermissions(0).length, 2);
});
