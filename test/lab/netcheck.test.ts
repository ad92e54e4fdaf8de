// The NAT report against every lab NAT kind: the real control server (`lanrage control` with
// --stun-alt-ip, as PartyLab starts it) answers RFC 5780 tests, and the report must name the
// mapping and filtering behaviour each kind is built to have, the site's public IP, and UDP open.
// Then the same through a real helper: `lanrage netcheck --json` in the site's namespace.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NatKind } from './lab.js';
import { STUN_PORT } from './party-lab.js';
import { withParty } from './party-run.js';
import { NETCHECK_DRIVER } from './drivers/netcheck-driver.js';
import type { NetcheckResult } from '../../helper/net/netcheck-run.js';

const EXPECTED: Record<string, { mapping: string; filtering: string }> = {
  public: { mapping: 'none', filtering: 'endpoint-independent' },
  'port-restricted': { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent' },
  symmetric: { mapping: 'address-and-port-dependent', filtering: 'address-and-port-dependent' },
  'full-cone': { mapping: 'endpoint-independent', filtering: 'endpoint-independent' },
  'address-restricted': { mapping: 'endpoint-independent', filtering: 'address-dependent' },
  // The carrier's symmetric NAT decides: what the home router keeps, the carrier changes.
  cgnat: { mapping: 'address-and-port-dependent', filtering: 'address-and-port-dependent' },
  'symmetric-sequential': { mapping: 'address-and-port-dependent', filtering: 'address-and-port-dependent' },
  // A port-restricted router that also runs miniupnpd (its NAT behaviour is the router's).
  upnp: { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent' },
};
/** Every lab kind: the ones above, and one whose router drops all UDP (no STUN answer at all). */
const KINDS = [...Object.keys(EXPECTED), 'udp-blocked'] as NatKind[];

test('netcheck names the mapping and filtering of every lab NAT kind', async (t) => {
  await withParty(t, KINDS.map((kind, i) => ({ name: `s${i}`, kind })), { helpers: false }, async (_pl, lab) => {
    const servers = [`${lab.control.ip}:${STUN_PORT}`, `${lab.control.ip}:${STUN_PORT + 1}`];
    const reports = await Promise.all(
      lab.sites.map(async (site) => {
        const { stdout } = await lab.exec(site.host.ns, process.execPath, [NETCHECK_DRIVER, ...servers], { timeoutMs: 20_000 });
        return { site, r: JSON.parse(stdout) as NetcheckResult };
      }),
    );
    for (const { site, r } of reports) {
      t.diagnostic(`${site.kind.padEnd(18)} → mapping ${r.mapping}, filtering ${r.filtering}, public ${r.publicAddress}, port preserved ${r.portPreserved}, ${r.durationMs} ms`);
    }
    for (const { site, r } of reports) {
      if (site.kind === 'udp-blocked') {
        assert.equal(r.udp, 'blocked', 'udp-blocked: UDP blocked');
        continue;
      }
      const want = EXPECTED[site.kind]!;
      assert.equal(r.udp, 'open', `${site.kind}: UDP open`);
      assert.equal(r.publicAddress.split(':')[0], site.publicIp, `${site.kind}: public address is the site's public IP`);
      assert.deepEqual({ mapping: r.mapping, filtering: r.filtering }, want, `${site.kind}: ${r.notes.join('; ')}`);
      assert.deepEqual(r.notes, [], `${site.kind}: nothing unknown`);
      if (!['symmetric', 'cgnat', 'symmetric-sequential'].includes(site.kind)) assert.equal(r.portPreserved, true, `${site.kind}: one host behind the NAT keeps its port`);
    }
  });
});

test('through a real helper: it tests on connecting to the control server, and `lanrage netcheck --json` reports the NAT', async (t) => {
  await withParty(t, [{ name: 'ar', kind: 'address-restricted' }], { helpers: false }, async (pl, lab) => {
    const site = lab.site('ar');
    const h = await pl.startHelper(site);
    await pl.cli(site, ['create', 'netcheck night']);
    // The first report comes by itself once the helper knows the control server's STUN service.
    const auto = await h.waitLog('netcheck', 60_000);
    assert.equal(auto.mapping, 'endpoint-independent');
    type Report = { udp: string; mapping: string; filtering: string; publicAddress: string; portPreserved: boolean; stunServer: string; notes: string[]; relays: unknown[] };
    const t0 = Date.now();
    const r = await pl.cli<Report>(site, ['netcheck']);
    t.diagnostic(`lanrage netcheck took ${Date.now() - t0} ms (CLI start included): ${JSON.stringify(r)}`);
    assert.equal(r.udp, 'open');
    assert.equal(r.mapping, 'endpoint-independent');
    assert.equal(r.filtering, 'address-dependent');
    assert.equal(r.publicAddress.split(':')[0], site.publicIp);
    assert.equal(r.stunServer, `${lab.control.ip}:${STUN_PORT}`);
    assert.deepEqual(r.notes, []);
    const cached = await pl.cli<Report>(site, ['netcheck', '--cached']);
    assert.deepEqual(cached, r, '--cached shows the report of the last run');
    const text = await pl.cliText(site, ['netcheck']);
    assert.match(text, /filtering\s+address-dependent: only IPs this machine has sent to may answer/);
  });
});

test('the report lists the relays the control server offers with their latency, and is redone when the machine gets a new address', async (t) => {
  await withParty(t, [{ name: 'pr', kind: 'port-restricted' }], { relay: true }, async (pl, lab) => {
    const site = lab.site('pr');
    const h = pl.helpers.get('pr')!;
    await pl.cli(site, ['create', 'relay night']);
    type Relay = { relay: string; rttMs: number | null; inUse: boolean };
    type Report = { time: string; relays: Relay[] };
    // Relays are offered to party members: the report made on joining may predate the offer.
    let r = await pl.cli<Report>(site, ['netcheck']);
    for (let i = 0; i < 10 && !r.relays.some((x) => x.inUse); i++) {
      await new Promise((res) => setTimeout(res, 500));
      r = await pl.cli<Report>(site, ['netcheck']);
    }
    t.diagnostic(`relays: ${JSON.stringify(r.relays)}`);
    assert.equal(r.relays.length, 1, 'the one relay the control server offers');
    const relay = r.relays[0]!;
    assert.equal(relay.relay, `udp:${pl.relay!}`);
    assert.ok(relay.rttMs !== null && relay.rttMs > 0 && relay.rttMs < 1000, `a measured latency: ${String(relay.rttMs)}`);
    assert.equal(relay.inUse, true, 'our allocation is on it');
    const text = await pl.cliText(site, ['netcheck', '--cached']);
    assert.match(text, /relays\s+udp:\S+ \d+\.\d ms \(in use\)/);
    // A new address on the machine (as after moving to another network): a new report follows by
    // itself within the 10 s poll.
    const before = (await pl.cli<Report>(site, ['netcheck', '--cached'])).time;
    const { stdout } = await lab.exec(site.host.ns, 'ip', ['-o', '-4', 'addr', 'show']);
    const dev = stdout.split('\n').find((l) => l.includes(` ${site.lanIp}/`))?.split(/\s+/)[1];
    assert.ok(dev, `the host's LAN interface: ${stdout}`);
    await lab.exec(site.host.ns, 'ip', ['addr', 'add', '192.0.2.200/32', 'dev', dev]);
    const changed = await h.waitLog('network changed', 20_000);
    t.diagnostic(`network changed: ${JSON.stringify(changed)}`);
    let after = before;
    const until = Date.now() + 15_000;
    while (after === before && Date.now() < until) {
      await new Promise((res) => setTimeout(res, 500));
      after = (await pl.cli<Report>(site, ['netcheck', '--cached'])).time;
    }
    assert.notEqual(after, before, 'the report was redone after the change');
  });
});
