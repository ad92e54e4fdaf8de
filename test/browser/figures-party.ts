// Two real helpers in lab namespaces behind port-restricted NATs, in one party on a direct path,
// with A's HTTP port exposed on this host's loopback for a browser: the set-up shared by the tests
// that watch per-player figures (the desktop's Party page, the paired phone).
import type { TestContext } from 'node:test';
import type { Server } from 'node:net';
import { createLab, labAvailable, type Lab, type LabSite } from '../lab/lab.js';
import { PartyLab, waitParty, type PartyJson, type PeerJson } from '../lab/party-lab.js';
import { exposeNamespacePort } from '../lab/ns-expose.js';
import { requireOrSkip } from '../lib/repo.js';
import { browserReady, freePort } from './browser-lib.js';

const DIRECT = 2;

export interface FiguresParty {
  lab: Lab;
  pl: PartyLab;
  a: LabSite;
  b: LabSite;
  /** A's helper HTTP port, reachable as http://localhost:PORT from this host. */
  port: number;
  /** B as A's helper lists it (device name "Bob"). */
  bob: PeerJson;
}

/** Runs `body` with the party up; skips loudly without Chromium or the lab; always cleans up. */
export async function withFiguresParty(t: TestContext, partyName: string, body: (fp: FiguresParty) => Promise<void>): Promise<void> {
  if (!browserReady(t)) return;
  const avail = await labAvailable();
  if (!requireOrSkip(avail.ok, `network lab (${avail.why ?? ''})`, t)) return;
  const lab = await createLab({ sites: [{ name: 'a', kind: 'port-restricted' }, { name: 'b', kind: 'port-restricted' }] });
  const pl = new PartyLab(lab);
  const exposed: Server[] = [];
  try {
    const [a, b] = [lab.site('a'), lab.site('b')];
    await pl.startControl();
    const port = await freePort();
    await Promise.all([pl.startHelper(a, { extraArgs: ['--allow-host', `localhost:${port}`] }), pl.startHelper(b)]);
    await pl.cli(b, ['settings', 'set', 'device_name', 'Bob']);
    exposed.push(await exposeNamespacePort(lab, a.host.ns, port));
    const created = await pl.cli<PartyJson>(a, ['create', partyName]);
    await pl.cli(b, ['join', created.party!.inviteLink]);
    const pa = await waitParty(pl, a, (p) => p.peers.length === 1 && p.peers[0]!.path === DIRECT, 30_000);
    await body({ lab, pl, a, b, port, bob: pa.peers[0]! });
  } finally {
    for (const s of exposed) s.close();
    await lab.destroy();
    pl.cleanup();
  }
}
