// Issue 5 part 3, end to end: a helper behind a symmetric NAT that allocates ports in sequence
// reaches a DIRECT path to a helper behind a port-restricted NAT. Real helpers, real control
// server and coturn: the pair may start relayed; the predicted port makes it direct.
// PathKind numbers as in peer.proto.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LabSite } from './lab.js';
import { waitParty, type PartyJson, type PartyLab } from './party-lab.js';
import { firstAnswerMs, withParty } from './party-run.js';
import { SEQ_PORT_BASE, SEQ_PORT_COUNT, SEQ_PORT_STEP } from './topology.js';

const DIRECT = 2;

const selfIp = (p: PartyJson): string => p.party!.members.find((m) => m.isSelf)!.virtualIp;
const ipOf = async (pl: PartyLab, s: LabSite): Promise<string> => selfIp(await pl.cli<PartyJson>(s, ['party']));

test('symmetric (sequential ports) ↔ port-restricted with a relay available: a direct path through the predicted port', async (t) => {
  await withParty(t, [{ name: 'q', kind: 'symmetric-sequential' }, { name: 'p', kind: 'port-restricted' }], { relay: true }, async (pl, lab) => {
    t.after(() => {
      if (process.env.SYMNAT_DEBUG) for (const [name, h] of pl.helpers) for (const l of h.logs) if (/port delta|direct path|relayed path|path lost|call|predict/.test(l)) t.diagnostic(`${name}: ${l.slice(0, 400)}`);
    });
    const [q, p] = [lab.site('q'), lab.site('p')];
    const created = await pl.cli<PartyJson>(p, ['create', 'Sequential']);
    const t0 = Date.now();
    await pl.cli(q, ['join', created.party!.inviteLink]);
    const first = await firstAnswerMs(pl, q, selfIp(created), 10_000);
    const ipQ = await ipOf(pl, q);
    const vq = await waitParty(pl, q, (x) => x.peers[0]?.path === DIRECT, 60_000);
    const tq = Date.now() - t0;
    const vp = await waitParty(pl, p, (x) => x.peers[0]?.path === DIRECT, 30_000);
    const tp = Date.now() - t0;
    t.diagnostic(`first tunnel ping ${first} ms after join; time to direct: ${tq} ms (q side), ${tp} ms (p side)`);
    // The symmetric side measured its NAT's step and published it.
    const delta = await pl.helpers.get('q')!.waitLog('nat port delta', 1000);
    assert.equal(delta.delta, SEQ_PORT_STEP, 'the port step STUN shows');
    // p talks to q's predicted port: q's public IP, a port of the NAT's sequence (not q's STUN port).
    const [ip, port] = vp.peers[0]!.endpoint.split(':');
    assert.equal(ip, q.publicIp, `direct to q's NAT, not the relay: ${vp.peers[0]!.endpoint}`);
    const n = (Number(port) - SEQ_PORT_BASE) / SEQ_PORT_STEP;
    assert.ok(Number.isInteger(n) && n >= 0 && n < SEQ_PORT_COUNT, `a sequential port: ${port}`);
    assert.equal(vq.peers[0]!.endpoint.split(':')[0], p.publicIp);
    const direct = await pl.helpers.get('p')!.waitLog('direct path', 1000);
    t.diagnostic(`p's direct path: ${JSON.stringify(direct)}`);
    assert.equal(direct.predicted, true, 'found through the prediction');
    // Traffic flows through the tunnel on the direct path.
    const again = await firstAnswerMs(pl, p, ipQ, 5000);
    assert.ok(again < 5000);
  });
});
