import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labAvailable, withLab } from './lab.js';
import { PartyLab, STUN_PORT, waitParty, type PartyJson } from './party-lab.js';
import { miniupnpdAvailable, startMiniupnpd, type Miniupnpd } from './miniupnpd.js';
import { requireOrSkip } from '../lib/repo.js';

// Invites from the embedded control server (what `lanrage create` uses by default): a host behind
// a real miniupnpd router maps its control port and STUN ports, the link carries the router's
// public address, and a friend at another site joins with the link alone and pings. A host whose
// router maps nothing is told at creation that the link works only on its LAN.
// Enum numbers as in party.proto / peer.proto.
const REACH_INTERNET = 1;
const REACH_LAN_ONLY = 2;
const DIRECT = 2;
const CONTROL = 8670;

interface ReachParty {
  party: PartyJson['party'] & { inviteReach?: number; inviteNote?: string };
}

test('embedded control server behind a UPnP router: the invite carries the public address; a friend elsewhere joins with it and pings', async (t) => {
  const avail = await labAvailable();
  if (!requireOrSkip(avail.ok, `network lab (${avail.why ?? ''})`, t)) return;
  if (!requireOrSkip(miniupnpdAvailable(), 'Debian package miniupnpd-nftables (/usr/sbin/miniupnpd)', t)) return;
  await withLab({ sites: [{ name: 'home', kind: 'upnp' }, { name: 'friend', kind: 'port-restricted' }, { name: 'plain', kind: 'port-restricted' }] }, async (lab) => {
    const pl = new PartyLab(lab);
    let mini: Miniupnpd | undefined;
    try {
      // The lab's control server only answers miniupnpd's STUN check: no helper is told about it.
      await pl.startControl();
      const [home, friend, plain] = [lab.site('home'), lab.site('friend'), lab.site('plain')];
      mini = await startMiniupnpd(lab, home, { stunHost: lab.control.ip, stunPort: STUN_PORT });
      const hHome = await pl.startHelper(home, { embeddedControl: true });
      await pl.startHelper(friend, { embeddedControl: true });
      await pl.startHelper(plain, { embeddedControl: true });

      const t0 = Date.now();
      const created = await pl.cli<ReachParty>(home, ['create', 'reach']);
      const msCreate = Date.now() - t0;
      const link = created.party!.inviteLink;
      const c = decodeURIComponent(/[?&]c=([^&]+)/.exec(link)?.[1] ?? '');
      assert.equal(c, `http://${home.publicIp}:${CONTROL}`, `the invite must carry the router's public address: ${link}`);
      assert.equal(created.party!.inviteReach, REACH_INTERNET);
      // The STUN ports may be granted a moment after the control port (a loaded router): then the
      // invite said so, and the note goes once they are mapped.
      assert.match(created.party!.inviteNote ?? '', /^$|STUN port/);
      await waitParty(pl, home, (p) => ((p.party as ReachParty['party'] | null)?.inviteNote ?? '') === '', 20_000);
      // The router holds the control port (TCP) and both STUN ports (UDP), leased to the host.
      const leases = mini.leases();
      for (const [proto, port] of [['TCP', CONTROL], ['UDP', CONTROL + 1], ['UDP', CONTROL + 2]] as const) {
        const l = leases.find((x) => x.protocol === proto && x.externalPort === port);
        assert.ok(l, `no ${proto} ${port} lease: ${JSON.stringify(leases)}`);
        assert.equal(l.internalClient, home.lanIp);
        assert.ok(l.expires > 0, 'a lease, not a permanent mapping');
      }

      // The friend has nothing but the link (its own helper runs its own embedded control server).
      await pl.cli(friend, ['join', link]);
      const fromFriend = await waitParty(pl, friend, (p) => p.peers.length === 1 && p.peers[0]!.path === DIRECT, 30_000);
      const vipHome = fromFriend.peers[0]!.virtualIp;
      let ok = false;
      for (let i = 0; i < 20 && !ok; i++) {
        ok = await lab.exec(friend.host.ns, 'ping', ['-c', '1', '-W', '1', vipHome], { timeoutMs: 5000 }).then(() => true, () => false);
      }
      assert.ok(ok, 'no ping through the tunnel');
      const { stdout } = await lab.exec(friend.host.ns, 'ping', ['-c', '5', '-i', '0.2', '-W', '2', vipHome], { timeoutMs: 20_000 });
      assert.match(stdout, / 0% packet loss/);
      // The friend's STUN went to the host's public address (the mapped STUN port), and worked.
      const { stdout: ct } = await lab.exec(home.router!.ns, 'conntrack', ['-L', '-p', 'udp', '--dst-nat'], { timeoutMs: 10_000 });
      assert.ok(ct.split('\n').some((l) => l.includes(`src=${friend.publicIp} dst=${home.publicIp}`) && l.includes(`dport=${CONTROL + 1} `)), `no STUN flow to the mapped port:\n${ct}`);

      // A router that maps nothing: the creator is told plainly, in the CLI's text and JSON.
      const t1 = Date.now();
      const lonely = await pl.cli<ReachParty>(plain, ['create', 'lonely']);
      const msLonely = Date.now() - t1;
      assert.equal(lonely.party!.inviteReach, REACH_LAN_ONLY);
      assert.match(lonely.party!.inviteNote ?? '', /works only on your LAN/);
      assert.match(decodeURIComponent(lonely.party!.inviteLink), new RegExp(`c=http://${plain.lanIp.replace(/\./g, '\\.')}:${CONTROL}`));
      const text = await pl.cliText(plain, ['party']);
      assert.match(text, /!! +This invite works only on your LAN: .*public control server.*on this LAN only/);

      // Leaving deletes the mappings at the router.
      await pl.cli(home, ['leave']);
      const left = mini.leases().filter((l) => [CONTROL, CONTROL + 1, CONTROL + 2].includes(l.externalPort));
      assert.deepEqual(left, [], 'mappings left behind after leaving');
      assert.ok(hHome.logs.some((l) => l.includes('"invite reach"')), 'the reach is logged');
      t.diagnostic(`create → invite with public address: ${msCreate} ms; create behind a router that maps nothing: ${msLonely} ms`);
    } finally {
      await mini?.stop();
      pl.cleanup();
    }
  });
});
