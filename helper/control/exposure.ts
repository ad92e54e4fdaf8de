// Making the embedded control server reachable for friends on other networks: while this helper
// hosts a party on its own control server, the router is asked (PCP, NAT-PMP, UPnP: the port
// mapper that already maps magicsock's UDP port) to forward the control server's TCP port and its
// two STUN ports; invite links then carry the router's public address. When no router maps them,
// the invite says plainly that it reaches only this LAN, and what to do instead.

import type { Logger } from '../core/log.js';
import { isUsableExternalIp, PortMapper, type PortMapperOptions } from '../net/portmapper/portmapper.js';

export type InviteReach = 'internet' | 'lan-only';

export interface Exposure {
  reach: InviteReach;
  /** The control URL invite links carry. */
  url: string;
  /** Empty when everything is as it should be; else what is wrong and what to do, for the player. */
  note: string;
}

export const LAN_ONLY_CHOICES =
  'Either use a public control server (see installers/server: `lanrage settings set control_server_url URL`, ' +
  'or the Settings page) and create the party again, or play with players on this LAN only.';

/**
 * Our own address, with no router mapping, counts as reachable from the internet. Besides the
 * private ranges, RFC 5737's TEST-NET-1 and -2 are never routed on the internet (the network lab
 * uses TEST-NET-2 for home LANs); TEST-NET-3 stays usable because the lab's internet is built on it.
 */
export function ownAddressIsPublic(ip: string): boolean {
  return isUsableExternalIp(ip) && !ip.startsWith('192.0.2.') && !ip.startsWith('198.51.100.');
}

/** What an invite to the embedded control server reaches, from what the router granted. Pure. */
export function judgeExposure(i: {
  /** The embedded server's LAN URL (http://LAN-IP:PORT). */
  lanUrl: string;
  /** External "ip:port" of the control server's TCP port, null when not mapped. */
  tcp: string | null;
  /** STUN ports: [internal port, external "ip:port" or null]. */
  stun: ReadonlyArray<readonly [number, string | null]>;
  /** Protocols that answered at the gateway (for the message). */
  answered: readonly string[];
}): Exposure {
  const lan = new URL(i.lanUrl);
  if (i.tcp === null) {
    // No router in between (or none that maps): a public address of our own is reachable as it is.
    if (ownAddressIsPublic(lan.hostname)) return { reach: 'internet', url: lan.origin, note: '' };
    const why =
      i.answered.length === 0
        ? `your router did not answer a port-mapping request (no PCP, NAT-PMP or UPnP), so friends on other networks cannot reach the control server at ${lan.host}.`
        : `your router (${i.answered.join(', ')}) refused to forward the control server's port ${lan.port || '80'}, so friends on other networks cannot reach it.`;
    return { reach: 'lan-only', url: lan.origin, note: `This invite works only on your LAN: ${why} ${LAN_ONLY_CHOICES}` };
  }
  const [ip] = i.tcp.split(':');
  // STUN is advertised on the address friends connect to, with the server's own port numbers: a
  // port the router did not map, or mapped to another number, gives friends no STUN answer.
  const bad = i.stun.filter(([port, ext]) => ext === null || ext !== `${ip}:${port}`).map(([port]) => port);
  const note = bad.length
    ? `Friends can join, but the router did not forward the STUN port${bad.length > 1 ? 's' : ''} ${bad.join(', ')} as-is: they may not learn their public address from this server and find fewer direct paths.`
    : '';
  return { reach: 'internet', url: `http://${i.tcp}`, note };
}

export interface ControlExposureOptions {
  lanUrl: string;
  controlPort: number;
  stunPorts: readonly number[];
  log: Logger;
  /** Called when the judgement changes after ensure() (a late mapping, a lost one). */
  onChange?: (e: Exposure) => void;
  /** How long ensure() waits for the router (default 4 s: one probe is up to 1.5 s, then the mapping). */
  waitMs?: number;
  /** For tests: extra PortMapper options (gateway, io, timing). */
  mapper?: Partial<Omit<PortMapperOptions, 'internalPort' | 'onChange' | 'log' | 'transport'>>;
}

export class ControlExposure {
  private mappers: Array<{ port: number; transport: 'udp' | 'tcp'; m: PortMapper; external: string | null }> = [];
  private latest: Exposure | null = null;
  /** ensure() calls waiting for the router. */
  private readonly waiters = new Set<() => void>();

  constructor(private readonly o: ControlExposureOptions) {}

  /** The judgement while mapping runs (null before ensure() and after release()). */
  current(): Exposure | null {
    return this.latest;
  }

  /** Starts the mappings (idempotent) and resolves once the router granted the TCP port or the wait ran out. */
  async ensure(): Promise<Exposure> {
    if (this.mappers.length === 0) {
      const log = this.o.log.child({ part: 'control-exposure' });
      const want: Array<[number, 'udp' | 'tcp']> = [[this.o.controlPort, 'tcp'], ...this.o.stunPorts.map((p): [number, 'udp'] => [p, 'udp'])];
      for (const [port, transport] of want) {
        const entry = { port, transport, external: null as string | null, m: undefined as unknown as PortMapper };
        entry.m = new PortMapper({
          ...this.o.mapper,
          internalPort: () => port,
          transport,
          log: log.child({ port, transport }),
          onChange: (ext) => {
            entry.external = ext;
            this.update();
          },
        });
        this.mappers.push(entry);
      }
      for (const e of this.mappers) e.m.start();
    }
    const tcp = this.mappers[0]!;
    // Ask the gateway first (cached): when nothing answers there is nothing to wait for. The
    // mappers keep trying in the background; a late mapping updates the invite.
    const answered = await tcp.m.probe();
    if (tcp.external === null && answered.length > 0) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          this.waiters.delete(check);
          resolve();
        };
        const check = (): void => {
          if (tcp.external !== null && this.mappers.slice(1).every((e) => e.external !== null)) done();
        };
        const t = setTimeout(done, this.o.waitMs ?? 4000);
        this.waiters.add(check);
      });
    }
    this.update();
    return this.latest!;
  }

  /** Deletes the mappings at the router (on leave and exit). */
  async release(): Promise<void> {
    const ms = this.mappers;
    this.mappers = [];
    this.latest = null;
    await Promise.all(ms.map((e) => e.m.stop()));
  }

  private update(): void {
    const [tcp, ...stun] = this.mappers;
    if (!tcp) return;
    const before = this.latest;
    this.latest = judgeExposure({
      lanUrl: this.o.lanUrl,
      tcp: tcp.external,
      stun: stun.map((e) => [e.port, e.external] as const),
      answered: tcp.m.answered(),
    });
    if (before?.url !== this.latest.url || before.reach !== this.latest.reach) {
      this.o.log.info('invite reach', { reach: this.latest.reach, url: this.latest.url, ...(this.latest.note && { note: this.latest.note }) });
      this.o.onChange?.(this.latest);
    }
    for (const w of [...this.waiters]) w();
  }
}
