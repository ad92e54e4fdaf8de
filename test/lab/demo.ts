// `npm run demo` (Linux, root): a lab internet with three players behind different NATs, a
// control server with coturn as its relay, and a party they all joined; each player's PWA is shown
// on this machine, and the demo prints the path each pair of players actually got.
import type { Server } from 'node:net';
import { createLab, labAvailable } from './lab.js';
import { exposeNamespacePort } from './ns-expose.js';
import { PartyLab, waitParty, type PartyJson } from './party-lab.js';
import { PathKind } from '../../helper/gen/lanrage/v1/peer.js';

const SITES = [
  { name: 'alice', kind: 'port-restricted' as const, port: 8701 },
  { name: 'bob', kind: 'public' as const, port: 8702 },
  { name: 'carol', kind: 'symmetric' as const, port: 8703 },
];

async function main(): Promise<void> {
  const avail = await labAvailable();
  if (!avail.ok) {
    process.stderr.write(`The demo needs root on Linux (network namespaces, nftables): ${avail.why}\nRun: sudo npm run demo\n`);
    process.exit(1);
  }
  process.stdout.write('Building the lab internet...\n');
  const lab = await createLab({ sites: SITES.map(({ name, kind }) => ({ name, kind })) });
  const pl = new PartyLab(lab);
  const servers: Server[] = [];
  const stop = async (): Promise<void> => {
    process.stdout.write('\nStopping the demo and removing the lab...\n');
    servers.forEach((s) => s.close());
    await lab.destroy();
    pl.cleanup();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  try {
    await pl.startControl({ relay: true });
    for (const s of SITES) {
      await pl.startHelper(lab.site(s.name), { extraArgs: ['--allow-host', `localhost:${s.port}`, '--allow-host', `127.0.0.1:${s.port}`] });
      servers.push(await exposeNamespacePort(lab, lab.site(s.name).host.ns, s.port));
    }
    const created = await pl.cli<PartyJson>(lab.site('alice'), ['create', 'Demo LAN party']);
    for (const s of SITES.slice(1)) await pl.cli(lab.site(s.name), ['join', created.party!.inviteLink]);
    // Wait until every player has settled a path to every other one, then say which it is.
    const settled = (p: PartyJson): boolean => p.peers.length === SITES.length - 1 && p.peers.every((x) => x.path === PathKind.PATH_KIND_DIRECT || x.path === PathKind.PATH_KIND_RELAYED);
    const views = new Map<string, PartyJson>();
    for (const s of SITES) views.set(s.name, await waitParty(pl, lab.site(s.name), settled, 60_000).catch(() => pl.cli<PartyJson>(lab.site(s.name), ['party'])));
    process.stdout.write(`\nThree players are in the party "Demo LAN party" (relay: coturn at ${pl.relay}):\n`);
    for (const s of SITES) {
      const site = lab.site(s.name);
      const where = s.kind === 'public' ? `on a public address (${site.publicIp})` : `behind a ${s.kind} NAT (public ${site.publicIp})`;
      process.stdout.write(`  ${s.name.padEnd(6)} ${where}: PWA at http://localhost:${s.port}\n`);
    }
    process.stdout.write(`\nPaths (as each player's helper reports them):\n`);
    for (const s of SITES) {
      for (const peer of views.get(s.name)?.peers ?? []) {
        const kind = peer.path === PathKind.PATH_KIND_DIRECT ? 'direct' : peer.path === PathKind.PATH_KIND_RELAYED ? 'relayed through coturn' : 'not settled yet';
        process.stdout.write(`  ${s.name.padEnd(6)} -> ${peer.name.padEnd(6)} ${kind}${peer.pathReason ? `: ${peer.pathReason}` : ''}\n`);
      }
    }
    process.stdout.write(
      `\nOpen the PWAs to watch paths and round-trip times live. From a shell:\n` +
        `  sudo ip netns exec ${lab.site('alice').host.ns} node dist/helper/main.js party --state-dir ${pl.helpers.get('alice')!.stateDir}\n` +
        `  sudo ip netns exec ${lab.site('alice').host.ns} ping 10.66.0.2\n` +
        `Press Ctrl-C to stop and remove everything.\n`,
    );
  } catch (err) {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    await stop();
  }
}

void main();
