// Two real helpers at rest: WireGuard's own persistent keepalive starts the first handshake at a
// join, then goes off once the pair has handshaken and carried no data for 30 s (disco keeps the
// NAT mapping; party/wg-keepalive.ts). What a user checks: `wg show` says the keepalive is off,
// WireGuard's transfer counters stand still at rest, and a ping afterwards still gets through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../lib/wait.js';
import { waitParty, type PartyJson, type PartyLab } from './party-lab.js';
import { withParty } from './party-run.js';

const DIRECT = 2;
type Site = Parameters<PartyLab['cli']>[0];

test('at rest WireGuard sends nothing of its own: its keepalive goes off after the first handshake and 30 s without data; a ping still gets through', { timeout: 240_000 }, async (t) => {
  await withParty(t, [{ name: 'a', kind: 'port-restricted' }, { name: 'b', kind: 'port-restricted' }], {}, async (pl, lab) => {
    const [a, b] = [lab.site('a'), lab.site('b')];
    /** The value for each WireGuard peer in the site's namespace ("interface \t peer key \t value" lines). */
    const wgShow = async (s: Site, what: string): Promise<string> => {
      const { stdout } = await pl.lab.exec(s.host.ns, 'wg', ['show', 'all', what]);
      const values = [...new Set(stdout.trim().split('\n').map((l) => l.split('\t').slice(2).join(' ')))];
      return values.join(' | ');
    };
    const created = await pl.cli<PartyJson>(a, ['create', 'Quiet night']);
    await pl.cli(b, ['join', created.party!.inviteLink]);
    const direct = (p: PartyJson): boolean => p.peers.length === 1 && p.peers[0]!.path === DIRECT;
    const pa = await waitParty(pl, a, direct, 60_000);
    await waitParty(pl, b, direct, 60_000);
    const joinedAt = Date.now();
    assert.equal(await wgShow(a, 'persistent-keepalive'), '20', 'the join sets the keepalive (it starts the first handshake)');
    await eventually('the keepalive off on both sides', async () => (await wgShow(a, 'persistent-keepalive')) === 'off' && (await wgShow(b, 'persistent-keepalive')) === 'off', 90_000, 1000);
    t.diagnostic(`keepalive off ${Date.now() - joinedAt} ms after both sides went direct`);
    const before = await wgShow(a, 'transfer');
    await sleep(25_000);
    assert.equal(await wgShow(a, 'transfer'), before, 'WireGuard sent and received nothing in 25 s at rest');
    const { stdout } = await pl.lab.exec(a.host.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', pa.peers[0]!.virtualIp], { timeoutMs: 20_000 });
    assert.match(stdout, / 0% packet loss/);
  });
});
