// Asks the home router to forward a public UDP port to the helper's one public port, so that
// peers behind any NAT (symmetric ones included) can reach us directly: PCP first, then NAT-PMP,
// then UPnP IGD, always and only at the default gateway. The mapping is leased (never
// permanent), renewed at half its lifetime, and deleted on stop().
//
// Written by hand rather than with a library: the three protocols are small (a few fixed-size
// datagrams and four SOAP calls), the npm packages for them are unmaintained or pull in XML
// parsers and HTTP clients, and we must control exactly which addresses are contacted (only
// the gateway from the routing table) and how strictly the router's answers are checked.

import { randomBytes } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { systemClock, type Clock } from '../../core/clock.js';
import type { Logger } from '../../core/log.js';
import { defaultGateway, type Gateway } from './gateway.js';
import * as natpmp from './natpmp.js';
import * as pcp from './pcp.js';
import { NodePortMapIo, type PortMapIo } from './transport.js';
import * as upnp from './upnp.js';

export type PortMapProtocol = 'pcp' | 'nat-pmp' | 'upnp';
export const PORTMAP_PROTOCOLS: readonly PortMapProtocol[] = ['pcp', 'nat-pmp', 'upnp'];

export interface PortMapping {
  protocol: PortMapProtocol;
  /** "ip:port" where peers reach us. */
  external: string;
  internalPort: number;
  /** As granted by the router. */
  lifetimeSeconds: number;
}

export interface PortMapperTiming {
  /** PCP / NAT-PMP: send times of one request (ms from the first). */
  udpSendAtMs: readonly number[];
  udpTimeoutMs: number;
  ssdpSendAtMs: readonly number[];
  ssdpTimeoutMs: number;
  httpTimeoutMs: number;
  /** A probe's answer is reused this long. */
  probeCacheMs: number;
  /** After a failed attempt the next waits this long, doubling up to maxRetryMs. */
  retryMs: number;
  maxRetryMs: number;
  /** Renewals never come closer together than this. */
  minRenewMs: number;
}

/** A probe where nothing answers takes max(udpTimeoutMs, ssdpTimeoutMs) = 1.5 s. */
export const PORTMAP_TIMING: PortMapperTiming = {
  udpSendAtMs: [0, 250, 750],
  udpTimeoutMs: 1250,
  ssdpSendAtMs: [0, 500],
  ssdpTimeoutMs: 1500,
  httpTimeoutMs: 1000,
  probeCacheMs: 30_000,
  retryMs: 30_000,
  maxRetryMs: 10 * 60_000,
  minRenewMs: 5_000,
};

export const DEFAULT_LEASE_SECONDS = 2 * 3600;
const DESCRIPTION = 'LANrage';

export interface PortMapperOptions {
  /** The local port to map (magicsock's public port); 0 while unknown. */
  internalPort(): number;
  /** The port's transport (default udp; tcp for the embedded control server's gRPC port). */
  transport?: 'udp' | 'tcp';
  /** Called with the external "ip:port" when it is (re)mapped or changes, null when lost or removed. */
  onChange(external: string | null): void;
  log: Logger;
  leaseSeconds?: number;
  /** Which protocols to try, in order (default all: PCP, NAT-PMP, UPnP). */
  protocols?: readonly PortMapProtocol[];
  gateway?: () => Gateway | null;
  io?: PortMapIo;
  clock?: Clock;
  timing?: Partial<PortMapperTiming>;
}

interface Discovery {
  gw: Gateway;
  at: number;
  pcp: boolean;
  natpmp: { ip: string } | null;
  upnp: { control: upnp.IgdControl; ip: string } | null;
}

/** An external address a peer could use: IPv4, not private, shared, loopback or link-local. */
export function isUsableExternalIp(ip: string): boolean {
  if (!isIPv4(ip)) return false;
  const [a = 0, b = 0] = ip.split('.').map(Number);
  if (a === 0 || a === 10 || a === 127 || a >= 224) return false;
  if (a === 172 && b >= 16 && b < 32) return false;
  if (a === 192 && b === 168) return false;
  if (a === 169 && b === 254) return false;
  // Carrier-grade NAT space (RFC 6598): the router is itself behind a NAT; the mapping is no use.
  if (a === 100 && b >= 64 && b < 128) return false;
  return true;
}

export class PortMapper {
  private readonly clock: Clock;
  private readonly io: PortMapIo;
  private readonly t: PortMapperTiming;
  private readonly lease: number;
  private readonly protocols: readonly PortMapProtocol[];
  private readonly transport: 'udp' | 'tcp';
  private readonly pcpNonce = randomBytes(12);
  private running = false;
  /** Bumped by stop(): work started under an older generation drops its result. */
  private gen = 0;
  private current: (PortMapping & { gw: Gateway; expiresAt: number; upnp?: upnp.IgdControl }) | null = null;
  private discovery: Discovery | null = null;
  private probing: Promise<Discovery | null> | null = null;
  private cancelTimer: () => void = () => {};
  private failures = 0;
  private busy: Promise<void> = Promise.resolve();

  constructor(private readonly o: PortMapperOptions) {
    this.clock = o.clock ?? systemClock;
    this.io = o.io ?? new NodePortMapIo();
    this.t = { ...PORTMAP_TIMING, ...o.timing };
    this.lease = o.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
    if (!Number.isInteger(this.lease) || this.lease < 10 || this.lease > 86400) throw new RangeError(`lease must be 10-86400 s, got ${this.lease}`);
    this.protocols = o.protocols ?? PORTMAP_PROTOCOLS;
    this.transport = o.transport ?? 'udp';
  }

  /** The mapping in force, if any. */
  mapped(): PortMapping | null {
    if (!this.current) return null;
    const { protocol, external, internalPort, lifetimeSeconds } = this.current;
    return { protocol, external, internalPort, lifetimeSeconds };
  }

  /** Protocols that answered the latest probe (empty before the first). */
  answered(): PortMapProtocol[] {
    const d = this.discovery;
    if (!d) return [];
    return PORTMAP_PROTOCOLS.filter((p) => (p === 'pcp' ? d.pcp : p === 'nat-pmp' ? d.natpmp !== null : d.upnp !== null));
  }

  /** Datagrams sent so far (PCP, NAT-PMP, SSDP). */
  get packetsSent(): number {
    return this.io.sent;
  }

  /** Which protocols answer at the gateway (a recent answer is reused). For the NAT report. */
  async probe(): Promise<PortMapProtocol[]> {
    await this.discover();
    return this.answered();
  }

  /** Starts mapping (idempotent); keeps trying in the background with backoff. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.failures = 0;
    this.schedule(0);
  }

  /** Stops renewing and deletes the mapping at the router (bounded by the timeouts). */
  async stop(): Promise<void> {
    if (!this.running && !this.current) return;
    this.running = false;
    this.gen++;
    this.cancelTimer();
    await this.busy.catch(() => undefined);
    const m = this.current;
    this.current = null;
    if (!m) return;
    this.o.onChange(null);
    try {
      await this.remove(m);
      this.o.log.info('port mapping removed', { protocol: m.protocol, external: m.external });
    } catch (err) {
      this.o.log.warn('could not remove the port mapping (it expires by itself)', { protocol: m.protocol, external: m.external, err: errText(err) });
    }
  }

  private schedule(ms: number): void {
    this.cancelTimer();
    const gen = this.gen;
    this.cancelTimer = this.clock.setTimeout(() => {
      if (gen !== this.gen || !this.running) return;
      this.busy = this.attempt(gen);
    }, ms);
  }

  private async attempt(gen: number): Promise<void> {
    let m: Awaited<ReturnType<PortMapper['map']>> = null;
    try {
      m = await this.map();
    } catch (err) {
      this.o.log.debug('port mapping attempt failed', { err: errText(err) });
    }
    if (gen !== this.gen || !this.running) {
      // stop() came while we were asking: the router may hold a mapping nobody will renew.
      if (m && !this.current) await this.remove(m).catch(() => undefined);
      return;
    }
    const prev = this.current;
    if (m) {
      this.failures = 0;
      this.current = m;
      if (prev?.external !== m.external) {
        this.o.log.info('port mapped', { protocol: m.protocol, external: m.external, internalPort: m.internalPort, lifetimeSeconds: m.lifetimeSeconds });
        this.o.onChange(m.external);
      } else {
        this.o.log.debug('port mapping renewed', { protocol: m.protocol, external: m.external, lifetimeSeconds: m.lifetimeSeconds });
      }
      this.schedule(Math.max(this.t.minRenewMs, (m.lifetimeSeconds * 1000) / 2));
      return;
    }
    this.failures++;
    if (prev && this.clock.now() < prev.expiresAt - this.t.minRenewMs) {
      // Keep the mapping we have until it runs out; try again well before that.
      this.schedule(Math.max(this.t.minRenewMs, (prev.expiresAt - this.clock.now()) / 3));
      return;
    }
    if (prev) {
      this.current = null;
      this.o.log.info('port mapping lost', { protocol: prev.protocol, external: prev.external });
      this.o.onChange(null);
    }
    this.schedule(Math.min(this.t.maxRetryMs, this.t.retryMs * 2 ** Math.min(this.failures - 1, 10)));
  }

  /** One mapping attempt: renew with the protocol in use, else the first protocol that works. */
  private async map(): Promise<(PortMapping & { gw: Gateway; expiresAt: number; upnp?: upnp.IgdControl }) | null> {
    const port = this.o.internalPort();
    if (port <= 0) return null;
    const cur = this.current;
    if (cur && cur.internalPort === port) {
      const again = await this.mapWith(cur.protocol, cur.gw, port, Number(cur.external.split(':')[1]), cur.upnp).catch((err: unknown) => {
        this.o.log.debug('renewal failed', { protocol: cur.protocol, err: errText(err) });
        return null;
      });
      if (again) return again;
    }
    const d = await this.discover(cur !== null);
    if (!d) return null;
    for (const p of this.protocols) {
      if ((p === 'pcp' && !d.pcp) || (p === 'nat-pmp' && !d.natpmp) || (p === 'upnp' && !d.upnp)) continue;
      try {
        const m = await this.mapWith(p, d.gw, port, port, d.upnp?.control);
        if (m) return m;
      } catch (err) {
        this.o.log.debug('mapping refused', { protocol: p, err: errText(err) });
      }
    }
    return null;
  }

  private async mapWith(p: PortMapProtocol, gw: Gateway, port: number, wantExternal: number, control?: upnp.IgdControl) {
    const m = await this.grant(p, gw, port, wantExternal, control);
    const ip = m?.external.split(':')[0] ?? '';
    if (m && !isUsableExternalIp(ip)) {
      // No use to peers; do not leave it open at the router either.
      await this.remove(m).catch(() => undefined);
      throw new Error(`the router's external address ${ip} is not public (another NAT in front of it?)`);
    }
    return m;
  }

  private async grant(p: PortMapProtocol, gw: Gateway, port: number, wantExternal: number, control?: upnp.IgdControl) {
    const now = this.clock.now();
    const done = (ip: string, ext: number, life: number, extra: { upnp?: upnp.IgdControl } = {}) => {
      if (!isIPv4(ip)) throw new Error(`bad external address ${JSON.stringify(ip.slice(0, 40))}`);
      if (!Number.isInteger(ext) || ext < 1 || ext > 65535) throw new Error(`bad external port ${ext}`);
      if (life < 1) throw new Error('the router granted a zero lifetime');
      return { protocol: p, external: `${ip}:${ext}`, internalPort: port, lifetimeSeconds: life, gw, expiresAt: now + life * 1000, ...extra };
    };
    if (p === 'pcp') {
      const req = { nonce: this.pcpNonce, clientIp: gw.localIp, internalPort: port, suggestedExternalPort: wantExternal, lifetimeSeconds: this.lease, transport: this.transport };
      const r = await this.udp(gw, pcp.encodeMapRequest(req), (b) => pcp.decodeMapResponse(b, req));
      return r ? done(r.externalIp, r.externalPort, Math.min(r.lifetimeSeconds, this.lease)) : null;
    }
    if (p === 'nat-pmp') {
      const a = await this.udp(gw, natpmp.encodeExternalAddressRequest(), (b) => natpmp.decodeExternalAddressResponse(b));
      if (!a) return null;
      const r = await this.udp(gw, natpmp.encodeMapRequest(port, wantExternal, this.lease, this.transport), (b) => {
        const m = natpmp.decodeMapResponse(b, this.transport);
        return m.internalPort === port ? m : undefined;
      });
      return r ? done(a.ip, r.externalPort, Math.min(r.lifetimeSeconds, this.lease)) : null;
    }
    const ctl = control ?? this.discovery?.upnp?.control;
    if (!ctl) return null;
    let ext = wantExternal;
    for (let i = 0; i < 3; i++) {
      try {
        await this.soap(ctl, 'AddPortMapping', upnp.encodeAddPortMapping(ctl.serviceType, { externalPort: ext, internalPort: port, internalClient: gw.localIp, leaseSeconds: this.lease, description: DESCRIPTION, transport: this.transport }));
        break;
      } catch (err) {
        // Someone else holds that external port: try a random one (twice at most).
        if (err instanceof upnp.UpnpError && err.code === upnp.UPNP_CONFLICT && i < 2) {
          ext = 1024 + Math.floor(Math.random() * (65536 - 1024));
          continue;
        }
        throw err;
      }
    }
    const ip = (await this.soap(ctl, 'GetExternalIPAddress', upnp.encodeGetExternalIp(ctl.serviceType))).get('NewExternalIPAddress') ?? '';
    return done(ip, ext, this.lease, { upnp: ctl });
  }

  private async remove(m: PortMapping & { gw: Gateway; upnp?: upnp.IgdControl }): Promise<void> {
    const ext = Number(m.external.split(':')[1]);
    // One try each, no long retransmission: we may be shutting down.
    const quick = { udpSendAtMs: [0, 250], udpTimeoutMs: 600 };
    if (m.protocol === 'pcp') {
      const req = { nonce: this.pcpNonce, clientIp: m.gw.localIp, internalPort: m.internalPort, suggestedExternalPort: ext, lifetimeSeconds: 0, transport: this.transport };
      const r = await this.udp(m.gw, pcp.encodeMapRequest(req), (b) => pcp.decodeMapResponse(b, req), quick);
      if (!r) throw new Error('no answer');
    } else if (m.protocol === 'nat-pmp') {
      const r = await this.udp(m.gw, natpmp.encodeMapRequest(m.internalPort, 0, 0, this.transport), (b) => natpmp.decodeMapResponse(b, this.transport), quick);
      if (!r) throw new Error('no answer');
    } else if (m.upnp) {
      await this.soap(m.upnp, 'DeletePortMapping', upnp.encodeDeletePortMapping(m.upnp.serviceType, ext, this.transport));
    }
  }

  /** Which protocols answer at the gateway: all three asked at once, so nothing-answers costs ~1.5 s. */
  private discover(fresh = false): Promise<Discovery | null> {
    const d = this.discovery;
    if (!fresh && d && this.clock.now() - d.at < this.t.probeCacheMs) return Promise.resolve(d);
    this.probing ??= this.discoverNow().finally(() => {
      this.probing = null;
    });
    return this.probing;
  }

  private async discoverNow(): Promise<Discovery | null> {
    const gw = (this.o.gateway ?? defaultGateway)();
    if (!gw) {
      this.o.log.debug('no default gateway: nothing to ask for a port mapping');
      this.discovery = null;
      return null;
    }
    const want = new Set(this.protocols);
    const [pcpOk, pmp, igd] = await Promise.all([
      want.has('pcp') ? this.udp(gw, pcp.encodeAnnounceRequest(gw.localIp), (b) => pcp.decodeAnnounceResponse(b)).catch(() => null) : null,
      want.has('nat-pmp') ? this.udp(gw, natpmp.encodeExternalAddressRequest(), (b) => natpmp.decodeExternalAddressResponse(b)).catch(() => null) : null,
      want.has('upnp') ? this.findIgd(gw).catch((err: unknown) => (this.o.log.debug('UPnP not usable', { err: errText(err) }), null)) : null,
    ]);
    const d: Discovery = { gw, at: this.clock.now(), pcp: pcpOk !== null, natpmp: pmp ? { ip: pmp.ip } : null, upnp: igd };
    this.discovery = d;
    this.o.log.debug('port mapping probe', { gateway: gw.ip, answered: this.answered() });
    return d;
  }

  private async findIgd(gw: Gateway): Promise<{ control: upnp.IgdControl; ip: string } | null> {
    const answer = await this.io.ssdp(gw.localIp, gw.ip, upnp.encodeMSearch(), (b) => upnp.parseSsdpAnswer(b, gw.ip), {
      sendAtMs: this.t.ssdpSendAtMs,
      timeoutMs: this.t.ssdpTimeoutMs,
    });
    if (!answer) return null;
    const desc = await this.io.http('GET', answer.location, { maxBytes: upnp.MAX_DESCRIPTION, timeoutMs: this.t.httpTimeoutMs });
    if (desc.status !== 200) throw new Error(`UPnP: description HTTP ${desc.status}`);
    const control = upnp.parseDescription(desc.body, answer.location, gw.ip);
    const ip = (await this.soap(control, 'GetExternalIPAddress', upnp.encodeGetExternalIp(control.serviceType))).get('NewExternalIPAddress') ?? '';
    return { control, ip };
  }

  private async soap(ctl: upnp.IgdControl, action: string, req: upnp.SoapRequest): Promise<Map<string, string>> {
    const res = await this.io.http('POST', ctl.controlUrl, {
      headers: { 'Content-Type': 'text/xml; charset="utf-8"', SOAPAction: req.soapAction },
      body: req.body,
      maxBytes: upnp.MAX_SOAP_ANSWER,
      timeoutMs: this.t.httpTimeoutMs,
    });
    return upnp.parseSoapAnswer(res.status, res.body, action);
  }

  private udp<T>(gw: Gateway, msg: Buffer, decode: (b: Buffer) => T | undefined, t: { udpSendAtMs: readonly number[]; udpTimeoutMs: number } = this.t): Promise<T | null> {
    let refusal: unknown = null;
    return this.io
      .exchange(gw.localIp, gw.ip, natpmp.NATPMP_PORT, msg, (b) => {
        try {
          return decode(b);
        } catch (err) {
          // A definite "no" from the router ends the exchange; garbage is ignored.
          if (err instanceof pcp.PcpError || err instanceof natpmp.NatPmpError) {
            refusal = err;
            return null as T;
          }
          return undefined;
        }
      }, { sendAtMs: t.udpSendAtMs, timeoutMs: t.udpTimeoutMs })
      .then((v) => {
        if (refusal) throw refusal;
        return v;
      });
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
