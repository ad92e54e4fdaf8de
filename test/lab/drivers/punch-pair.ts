// Two lab sites with a magicsock-driver in each host, a STUN answerer on the lab's internet, and
// the test process as the control plane (keys, candidates, call-me-maybe relay). Shared by
// test/lab/punch*.test.ts.

import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { createLab, labAvailable, type Lab, type NatKind } from '../lab.js';
import { requireOrSkip } from '../../lib/repo.js';
import { generateDiscoKey } from '../../../helper/net/disco.js';
import type { PathState } from '../../../helper/net/magicsock.js';
import { STUN_ANSWERER_SCRIPT } from './stun-answerer.js';
import { MagicDriver, type ReadyInfo } from './magicsock-client.js';

export const STUN_PORTS = [3478, 3479];

let availability: Promise<{ ok: boolean; why?: string }> | null = null;
export async function labReady(t: { skip(msg: string): void }): Promise<boolean> {
  availability ??= labAvailable();
  const a = await availability;
  return requireOrSkip(a.ok, `network-namespace lab (${a.why ?? ''}; needs root, ip, nft)`, t);
}

export interface Side {
  name: string;
  /** The host namespace the driver runs in. */
  ns: string;
  driver: MagicDriver;
  disco: ReturnType<typeof generateDiscoKey>;
  wgKey: string;
  info: ReadyInfo;
  publicIp: string;
  wgInterface: string;
  /** With real WireGuard: this side's tunnel address. */
  tunnelIp: string | null;
}

export interface Pair {
  lab: Lab;
  a: Side;
  b: Side;
  /** performance.now() when both drivers were handed their peer. */
  t0: number;
  close(): Promise<void>;
}

export interface PairOptions {
  primingTtl?: number;
  fastPath?: boolean;
  natHints?: boolean;
  /** b learns about a this much later than a about b (membership lag). */
  delayBMs?: number;
  /** Run real wireguard-go (helper/wg) instead of the stand-in socket. */
  realWg?: boolean;
}

export async function startStun(lab: Lab): Promise<void> {
  const child = lab.spawn(lab.control.ns, process.execPath, [STUN_ANSWERER_SCRIPT, ...STUN_PORTS.flatMap((p) => ['--port', String(p)])]);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('STUN answerer did not start')), 10_000);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => {
      if (l.includes('"ready"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (c) => reject(new Error(`STUN answerer exited (${c})`)));
  });
}

export async function pair(kinds: [NatKind, NatKind], o: PairOptions = {}): Promise<Pair> {
  const lab = await createLab({ sites: [{ name: 'a', kind: kinds[0] }, { name: 'b', kind: kinds[1] }] });
  const drivers: MagicDriver[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(drivers.map((d) => d.stop()));
    await lab.destroy();
  };
  try {
    await startStun(lab);
    const stunServers = STUN_PORTS.map((p) => `${lab.control.ip}:${p}`);
    const mk = async (name: string, tunnelIp: string): Promise<Side> => {
      const site = lab.site(name);
      const driver = MagicDriver.spawn(lab, site.host.ns, name);
      drivers.push(driver);
      const disco = generateDiscoKey();
      // Unique: wireguard-go's UAPI sockets are shared by every namespace.
      const wgInterface = `lrwg${randomBytes(3).toString('hex')}`;
      const info = await driver.start({
        discoPrivateKey: disco.privateKey,
        stunServers,
        ...(o.primingTtl !== undefined ? { primingTtl: o.primingTtl } : {}),
        fastPath: o.fastPath ?? false,
        wgInterface,
        ...(o.realWg ? { realWg: { address: `${tunnelIp}/16` } } : {}),
      });
      const wgKey = info.wgPublicKey ?? generateDiscoKey().publicKey;
      return { name, ns: site.host.ns, driver, disco, wgKey, info, publicIp: site.publicIp, wgInterface, tunnelIp: o.realWg ? tunnelIp : null };
    };
    const [a, b] = await Promise.all([mk('a', '10.66.0.1'), mk('b', '10.66.0.2')]);
    for (const [from, to] of [[a, b], [b, a]] as const) {
      from.driver.on((ev) => {
        if (ev.type === 'cmm') to.driver.send({ op: 'cmm', peerId: from.name, candidates: ev.candidates, primed: ev.primed });
      });
    }
    const peerOf = (s: Side) => ({
      id: s.name,
      discoPublicKey: s.disco.publicKey,
      wgPublicKey: s.wgKey,
      candidates: s.info.candidates,
      ...(o.natHints ? { natHint: s.info.nat.mapping } : {}),
      ...(s.tunnelIp ? { allowedIps: [`${s.tunnelIp}/32`] } : {}),
    });
    const t0 = performance.now();
    a.driver.setPeers([peerOf(b)]);
    if (o.delayBMs) setTimeout(() => b.driver.setPeers([peerOf(a)]), o.delayBMs);
    else b.driver.setPeers([peerOf(a)]);
    return { lab, a, b, t0, close };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

/** The first path event matching (only from now on when fresh), with the time it arrived. */
export function waitPath(s: Side, peer: string, match: (p: PathState) => boolean, ms: number, what: string, fresh = false): Promise<PathState & { at: number }> {
  const since = fresh ? performance.now() : -Infinity;
  return s.driver
    .waitFor((e) => e.type === 'path' && e.peerId === peer && match(e.state as PathState), ms, `${s.name}: ${what}`, !fresh)
    .then(() => s.driver.paths(peer).filter((x) => x.at >= since && match(x))[0] as PathState & { at: number });
}
