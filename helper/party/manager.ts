import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { ApiError, Status } from '../core/api-error.js';
import type { HelperState } from '../core/helper-state.js';
import type { Logger } from '../core/log.js';
import { ControlClient } from '../controlclient/client.js';
import { loadOrCreateIdentity } from '../controlclient/identity.js';
import { formatInviteLink, normalizeControlUrl, parseInviteLink } from '../controlclient/invite.js';
import { parseControlUrls } from '../controlclient/control-urls.js';
import type { MemberState, PartyState } from '../controlclient/state.js';
import type { Party } from '../gen/lanrage/v1/party.js';
import type { Peer, PingResult } from '../gen/lanrage/v1/peer.js';
import { MagicSock, type PathState, type RelayLatency } from '../net/magicsock.js';
import { PortMapper, type PortMapProtocol } from '../net/portmapper/portmapper.js';
import { TrafficWatch } from '../net/traffic-watch.js';
import { IdleKeepalive } from './wg-keepalive.js';
import type { StateRepo } from '../store/state-repo.js';
import { createWgDevice, loadOrCreateKeyPair, removeStaleInterface, type WgDevice, type WgKeyPair, type WgPeerStats } from '../wg/index.js';
import { PeerWriter } from '../wg/peer-writer.js';
import { findMember, memberPathKind, toProtoParty, toProtoPeer, toProtoPing } from './convert.js';
import type { PartyEngine } from './engine.js';
import { loadOrCreateDiscoKey } from './keys.js';
import type { LanSelf } from '../lan/party-lan.js';
import type { Exposure } from '../control/exposure.js';
import { LatestOnly } from '../core/latest-only.js';
import type { PeerMetricsInput } from '../metrics/peer-metrics.js';
import type { FastPathCounters } from '../net/fastpath.js';

// The party engine: one control-server connection (to the server of the party we are in), one
// WireGuard interface while in a party, and the magicsock that finds and keeps the paths.
// Membership flows one way: control snapshot → WireGuard peers + magicsock peers → API events.

const RESUME_KEY = 'party';
interface Resume {
  controlUrl: string;
  partyId: string;
  inviteSecret: string;
  /** Other instances of the same control service (absent in what older versions stored). */
  fallbackUrls?: string[];
}
const isResume = (v: unknown): v is Resume => {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  const fb = r.fallbackUrls;
  return ['controlUrl', 'partyId', 'inviteSecret'].every((k) => typeof r[k] === 'string') && (fb === undefined || (Array.isArray(fb) && fb.every((x) => typeof x === 'string')));
};

export interface PartyManagerOptions {
  stateDir: string;
  log: Logger;
  state: HelperState;
  store: StateRepo;
  /**
   * Control server for new parties: the configured one (a comma-separated list when it runs as
   * several instances, control-urls.ts), or the embedded server's advertised URL.
   */
  defaultControlUrl(): string;
  /** WireGuard interface name (settings, or a flag in labs where several helpers share a machine). */
  interfaceName(): string;
  /** Try the Linux nftables fast path for direct peers. */
  fastPath: boolean;
  /** The LAN relay (broadcast discovery): told our tunnel and the other members' virtual IPs. */
  lan?: { setParty(self: LanSelf | null, peers: string[]): Promise<void>; close(): Promise<void> };
  /** Called on every control snapshot (connect, reconnect): the STUN servers may be new. */
  onControlSnapshot?: () => void;
  /** A member left the party (before the party event that shows it gone), with the reason. */
  onMemberLeft?: (deviceId: string, reason: 'left' | 'kicked' | 'timed-out' | 'unknown') => void;
  /** The control client in use (undefined: none), for announcements (servers/party-games.ts). */
  onControlClient?: (c: ControlClient | undefined) => void;
  /** Ask the router for a port mapping (UPnP / NAT-PMP / PCP) while in a party (default on). */
  portMapping?: boolean;
  /**
   * The embedded control server's reach (given only when it runs): while hosting a party on it,
   * its ports are mapped on the router and invite links carry the public address (control/exposure.ts).
   */
  exposure?: { ensure(): Promise<Exposure>; current(): Exposure | null; release(): Promise<void> };
  /** Every path a peer gets (metrics record the changes). */
  onPath?: (peer: Peer) => void;
  /** Packet totals per peer (from the metrics collector), for ListPeers. */
  packetTotals?: (deviceId: string) => { rxPackets: number; txPackets: number } | undefined;
}

export class PartyManager implements PartyEngine {
  private readonly log: Logger;
  private readonly identity: KeyObject;
  private readonly wgKeys: WgKeyPair;
  private readonly disco: { privateKey: string; publicKey: string };
  private readonly sock: MagicSock;
  private control: ControlClient | undefined;
  private wg: WgDevice | undefined;
  /** Every peer change to this.wg, in order and batched (peer-writer.ts). */
  private wgWriter: PeerWriter | undefined;
  private wgAddress = '';
  private partyState: PartyState | null = null;
  /** WireGuard public key → the peer's allowed IP (its virtual address /32). */
  private readonly wgPeers = new Map<string, string>();
  private readonly paths = new Map<string, PathState>();
  private stats = new Map<string, WgPeerStats>();
  private statsList: readonly WgPeerStats[] | null = null;
  /** Membership changes, applied one at a time and only the newest (latest-only.ts). */
  private readonly applying = new LatestOnly<PartyState | null>((p) =>
    this.applyNow(p).catch((err: unknown) => {
      this.log.error('could not apply the party', { err: String(err) });
      throw err;
    }),
  );
  private candidates: string[] = [];
  private closed = false;
  private readonly traffic = new TrafficWatch();
  private readonly keepalive = new IdleKeepalive();
  private trafficTimer: ReturnType<typeof setTimeout> | undefined;
  private checkingTraffic = false;
  /** While in a party: a router-mapped public port for magicsock, published as a candidate. */
  private readonly portMapper: PortMapper;

  constructor(private readonly opts: PartyManagerOptions) {
    this.log = opts.log.child({ part: 'party' });
    this.identity = loadOrCreateIdentity(join(opts.stateDir, 'identity.pem'));
    this.wgKeys = loadOrCreateKeyPair(join(opts.stateDir, 'wireguard.key'));
    this.disco = loadOrCreateDiscoKey(join(opts.stateDir, 'disco.key'));
    this.sock = new MagicSock({
      port: opts.state.settings.listenPort,
      discoPrivateKey: this.disco.privateKey,
      log: opts.log.child({ part: 'magicsock' }),
      stunServers: () => this.control?.stunServers() ?? [],
      wgPort: () => this.wg?.listenPort ?? 0,
      setWgEndpoint: async (wgPublicKey, endpoint) => {
        const allowedIp = this.wgPeers.get(wgPublicKey);
        if (!this.wgWriter || allowedIp === undefined) return;
        // The keepalive starts only now: set without an endpoint, WireGuard's first handshake
        // fails at once and it waits 5 s to retry (measured: every join took ~5.4 s to ping).
        this.keepalive.set(wgPublicKey);
        await this.wgWriter.set({ publicKey: wgPublicKey, endpoint, allowedIps: [allowedIp], persistentKeepaliveSeconds: 20 });
      },
      sendCallMeMaybe: (peerId, cands, spraySockets, primed) => {
        this.control?.callMeMaybe(peerId, cands, spraySockets, primed).catch((err: unknown) => this.log.debug('call-me-maybe not delivered', { peerId, err }));
      },
      fastPath: opts.fastPath,
      wgInterface: opts.interfaceName(),
      // Fresh TURN credentials for every allocation, only while in a party (the server checks).
      fetchRelayOffers: () => (this.control ? this.control.getRelays() : Promise.reject(new Error('not connected to a control server'))),
    });
    this.sock.on('path', (peerId: string, path: PathState) => {
      this.paths.set(peerId, path);
      const m = this.partyState?.members.find((x) => x.deviceId === peerId);
      if (m) {
        const peer = this.protoPeer(m, path);
        this.opts.onPath?.(peer);
        this.opts.state.events.publish({ peer: { peer, removed: false } });
      }
    });
    this.sock.on('candidates', (c: string[]) => {
      this.candidates = c;
      this.pushEndpoints();
    });
    // Peers reach us through the relay at this address: publish it like a candidate.
    this.sock.on('relayed', () => this.pushEndpoints());
    this.portMapper = new PortMapper({
      internalPort: () => this.sock.port,
      onChange: (external) => {
        this.sock.setMappedCandidate(external);
        this.pushEndpoints();
      },
      log: opts.log.child({ part: 'portmapper' }),
    });
  }

  async start(): Promise<void> {
    // A helper killed with -9 leaves its interface (and wireguard-go) behind.
    await removeStaleInterface(this.opts.interfaceName(), this.log);
    await this.sock.start();
    const resume = this.opts.store.get(RESUME_KEY, isResume);
    if (resume) {
      this.log.info('resuming the party', { partyId: resume.partyId, control: resume.controlUrl });
      // In the background: the helper must come up even while its control server is away.
      void this.resume(resume);
    }
  }

  /** Reconnects to the party's control server until it answers (or the user moves on). */
  private async resume(r: Resume, attempt = 0): Promise<void> {
    if (this.closed || this.opts.store.get(RESUME_KEY, isResume)?.partyId !== r.partyId || this.control) return;
    try {
      const c = await this.connect([r.controlUrl, ...(r.fallbackUrls ?? [])]);
      c.rememberInviteSecret(r.partyId, r.inviteSecret);
      if (!c.party()) await c.joinParty(r.partyId, r.inviteSecret);
    } catch (err) {
      const delay = Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5));
      this.log.warn('could not resume the party yet; retrying', { err: String(err), inMs: delay });
      setTimeout(() => void this.resume(r, attempt + 1), delay).unref();
    }
  }

  /** The STUN servers of the control server we are connected to (empty when none). */
  stunServers(): string[] {
    return this.control?.stunServers() ?? [];
  }

  /** Port-mapping protocols the gateway answers (for the NAT report; probes if none is recent). */
  portMappingProtocols(): Promise<PortMapProtocol[]> {
    return this.opts.portMapping === false ? Promise.resolve([]) : this.portMapper.probe();
  }

  /** This machine's addresses changed: new candidates (and STUN) for the party now. */
  networkChanged(): void {
    void this.sock.localCandidates().catch((err: unknown) => this.log.debug('candidate refresh failed', { err: String(err) }));
  }

  /** The offered relays' RTTs from our public socket, measured now (for the NAT report). */
  relayLatencies(): Promise<RelayLatency[]> {
    return this.sock.relayLatencies();
  }

  inParty(): boolean {
    return this.partyState !== null;
  }

  current(): Party | undefined {
    const p = this.partyState;
    if (!p) return undefined;
    const e = this.hostingEmbedded() ? this.opts.exposure?.current() : undefined;
    return toProtoParty(p, this.inviteLink(p, e?.url), e ?? undefined);
  }

  /** In a party whose control server is our embedded one (so its reach is ours to judge). */
  private hostingEmbedded(): boolean {
    return this.opts.exposure !== undefined && this.control !== undefined && this.control.url === normalizeControlUrl(this.opts.defaultControlUrl());
  }

  peers(): Peer[] {
    return (this.partyState?.members ?? []).filter((m) => !m.isSelf).map((m) => this.protoPeer(m, this.paths.get(m.deviceId)));
  }

  private protoPeer(m: MemberState, path: PathState | undefined): Peer {
    const p = toProtoPeer(m, path, this.statsFor(m));
    const t = this.opts.packetTotals?.(m.deviceId);
    return t ? { ...p, rxPackets: t.rxPackets, txPackets: t.txPackets } : p;
  }

  /** Reads WireGuard's counters (the device skips the read while its interface is quiet); null when unreadable. */
  private async refreshStats(): Promise<readonly WgPeerStats[] | null> {
    if (!this.wg) return null;
    const list = await this.wg.stats().catch(() => null);
    // The device hands back the same list while it did not read WireGuard again: nothing to rebuild.
    if (list !== this.statsList) this.stats = new Map((list ?? []).map((s) => [s.publicKey, s]));
    this.statsList = list;
    return list;
  }

  /** One WireGuard read for every peer plus the disco probes' records: the per-peer metrics' input. */
  async metricsInputs(): Promise<PeerMetricsInput[]> {
    if (!this.partyState) return [];
    const list = await this.refreshStats();
    // The traffic watch takes this reading as its own (one WireGuard read per round, not two).
    if (list && this.trafficTimer) {
      this.applyTraffic(list);
      // Its own read is now due from this reading, maybe sooner (bytes started to move: 500 ms).
      if (!this.checkingTraffic) {
        clearTimeout(this.trafficTimer);
        this.scheduleTrafficCheck();
      }
    }
    // Every second per peer: read what a sample needs, not a whole protobuf Peer (peers()).
    return (this.partyState?.members ?? []).filter((m) => !m.isSelf).map((m) => {
      const path = this.paths.get(m.deviceId);
      const stats = this.statsFor(m);
      return {
        deviceId: m.deviceId,
        name: m.name,
        path: memberPathKind(m, path),
        fastPath: path?.fastPath ?? false,
        rxBytes: stats?.rxBytes ?? 0,
        txBytes: stats?.txBytes ?? 0,
        probes: this.sock.peerProbes(m.deviceId),
      };
    });
  }

  /** Somebody watches the metrics: a fresh RTT sample every second on direct paths. */
  setLiveProbing(on: boolean): void {
    this.sock.setMetricProbing(on ? 1000 : 0);
  }

  /** Magicsock's counters (relay use among them) while in a party, else null. */
  magicCounters(): Record<string, number> | null {
    return this.partyState ? this.sock.counters() : null;
  }

  fastPathCounters(): Promise<Map<string, FastPathCounters>> {
    return this.sock.fastPathCounters();
  }

  async create(name: string): Promise<Party> {
    const c = await this.connect(parseControlUrls(this.opts.defaultControlUrl()));
    const { party, inviteSecret } = await c.createParty(name);
    this.remember(c, party.id, inviteSecret);
    await this.apply(party);
    // The invite must say at once whether friends elsewhere can use it.
    if (this.hostingEmbedded()) await this.opts.exposure?.ensure();
    return this.current()!;
  }

  async join(inviteLink: string): Promise<Party> {
    let link;
    try {
      link = parseInviteLink(inviteLink);
    } catch (err) {
      throw new ApiError(Status.INVALID_ARGUMENT, `that is not a LANrage invite link: ${(err as Error).message}`);
    }
    const t0 = performance.now();
    const c = await this.connect([link.controlUrl, ...link.fallbackUrls]);
    const t1 = performance.now();
    const party = await c.joinParty(link.partyId, link.secret);
    const t2 = performance.now();
    this.remember(c, party.id, link.secret);
    await this.apply(party);
    // Where a join's time goes (a join storm on a small machine: issue 13).
    this.log.debug('join timing', { connectMs: Math.round(t1 - t0), joinMs: Math.round(t2 - t1), applyMs: Math.round(performance.now() - t2), members: party.members.length });
    return this.current()!;
  }

  async leave(): Promise<void> {
    if (!this.control || !this.partyState) throw new ApiError(Status.FAILED_PRECONDITION, 'not in a party');
    await this.control.leaveParty();
    this.opts.store.delete(RESUME_KEY);
    await this.apply(null);
  }

  async kick(deviceId: string): Promise<void> {
    if (!this.control || !this.partyState) throw new ApiError(Status.FAILED_PRECONDITION, 'not in a party');
    await this.control.kick(deviceId);
  }

  async ping(peer: string, count: number): Promise<PingResult[]> {
    const m = findMember((this.partyState?.members ?? []).filter((x) => !x.isSelf), peer);
    if (!m) throw new ApiError(Status.NOT_FOUND, `no peer called "${peer}" in the party: use a name, device id or virtual IP from \`lanrage status\``);
    const results = await this.sock.ping(m.deviceId, count);
    return results.map(toProtoPing);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watchTraffic(false);
    await this.portMapper.stop();
    await this.opts.exposure?.release();
    await this.control?.close().catch(() => undefined);
    await this.sock.close().catch(() => undefined);
    await this.applying.settled();
    await this.opts.lan?.close();
    await this.wg?.close().catch((err: unknown) => this.log.warn('could not remove the WireGuard interface', { err: String(err) }));
    this.wg = undefined;
  }

  private inviteLink(p: PartyState, publicUrl?: string): string {
    if (!p.inviteSecret || !this.control) return '';
    // The instance in use first, the others of the same service as alternates.
    return publicUrl ? formatInviteLink(publicUrl, p.id, p.inviteSecret) : formatInviteLink(this.control.url, p.id, p.inviteSecret, this.control.urlList);
  }

  private statsFor(m: MemberState): WgPeerStats | undefined {
    return this.stats.get(m.wgPublicKey);
  }

  private remember(c: ControlClient, partyId: string, inviteSecret: string): void {
    const [controlUrl = c.url, ...fallbackUrls] = c.urlList;
    this.opts.store.put(RESUME_KEY, { controlUrl, partyId, inviteSecret, fallbackUrls } satisfies Resume);
  }

  /** `urls`: one control service, its primary instance first (several: the others are tried when it breaks). */
  private async connect(urls: readonly string[]): Promise<ControlClient> {
    const [target = '', ...fallbackUrls] = urls.map((u) => normalizeControlUrl(u));
    // Already on this service (through any of its instances): keep the connection.
    if (this.control && this.control.urlList.includes(target)) return this.control;
    if (this.control) {
      await this.control.close().catch(() => undefined);
      this.control = undefined;
      this.opts.onControlClient?.(undefined);
      await this.apply(null);
    }
    let c: ControlClient;
    try {
      c = await ControlClient.connect({
        url: target,
        fallbackUrls,
        identity: this.identity,
        name: this.opts.state.settings.deviceName,
        wgPublicKey: this.wgKeys.publicKey,
        discoPublicKey: this.disco.publicKey,
        log: this.log,
      });
    } catch (err) {
      if (err instanceof ApiError && err.code === Status.UNAVAILABLE) {
        const also = fallbackUrls.length > 0 ? ` (nor ${fallbackUrls.length === 1 ? 'the other instance' : `the ${fallbackUrls.length} other instances`} ${fallbackUrls.join(', ')})` : '';
        throw new ApiError(Status.UNAVAILABLE, `the control server at ${target}${also} is not answering: check the invite link or your connection`);
      }
      throw err;
    }
    this.control = c;
    this.opts.onControlClient?.(c);
    c.on('snapshot', (p) => {
      this.applyQuietly(p);
      this.opts.onControlSnapshot?.();
    });
    c.on('member', () => this.applyQuietly(c.party()));
    c.on('memberLeft', ({ deviceId, reason }) => {
      this.opts.onMemberLeft?.(deviceId, reason);
      this.applyQuietly(c.party());
    });
    c.on('callMeMaybe', ({ fromDeviceId, candidates, spraySockets, primed }) => this.sock.handleCallMeMaybe(fromDeviceId, candidates, spraySockets, primed));
    c.on('kicked', () => {
      this.log.info('kicked from the party');
      this.opts.store.delete(RESUME_KEY);
      this.applyQuietly(null);
    });
    c.on('reconnected', () => {
      this.pushEndpoints();
      this.sock.refreshRelay();
    });
    c.on('disconnected', ({ error }) => this.log.info('control server connection lost; reconnecting', { error }));
    this.pushEndpoints();
    // Candidates need the STUN servers this control server named.
    void this.sock.localCandidates().catch((err: unknown) => this.log.debug('candidate refresh failed', { err: String(err) }));
    return c;
  }

  private pushEndpoints(): void {
    const c = this.control;
    const relayed = this.sock.relayedAddress();
    if (!c || (this.candidates.length === 0 && relayed === null)) return;
    const nat = this.sock.natInfo();
    c.updateEndpoints(this.candidates, { mapping: nat.mapping, portMapped: this.portMapper.mapped() !== null, portDelta: this.sock.portDelta() }, relayed ? [relayed] : []).catch((err: unknown) =>
      this.log.debug('endpoint update failed', { err: String(err) }),
    );
  }

  /** For changes nobody waits on: failures are already logged by the chain. */
  private applyQuietly(p: PartyState | null): void {
    this.apply(p).catch(() => undefined);
  }

  /**
   * Serialised: WireGuard and magicsock follow the newest membership, one change at a time;
   * snapshots that a newer one overtook while waiting are skipped. The returned promise fails when
   * the run that applied this change (or a newer one) failed (create/join report it); later
   * changes still run.
   */
  private apply(p: PartyState | null): Promise<void> {
    const run = this.applying.push(p);
    return run.catch((err: unknown) => {
      const msg = err instanceof Error ? err.message : String(err);
      const perm = /EPERM|EACCES|Operation not permitted|permission/i.test(msg);
      throw new ApiError(
        Status.FAILED_PRECONDITION,
        perm
          ? `joined the party, but the tunnel could not be set up: creating the WireGuard interface needs root (run the helper with sudo, or as the lanrage service). ${msg}`
          : `joined the party, but the tunnel could not be set up: ${msg}`,
      );
    });
  }

  private async applyNow(p: PartyState | null): Promise<void> {
    if (this.closed) return;
    const before = this.partyState;
    this.partyState = p;
    const self = p?.members.find((m) => m.isSelf);
    if (!p || !self) {
      this.watchTraffic(false);
      await this.portMapper.stop();
      await this.opts.exposure?.release();
      await this.opts.lan?.setParty(null, []);
      this.sock.setPeers([]);
      await this.sock.stopRelay();
      this.wgPeers.clear();
      this.keepalive.clear();
      if (this.wg) {
        this.wgWriter = undefined;
        await this.wg.close();
        this.wg = undefined;
        this.wgAddress = '';
      }
      this.partyState = null;
      if (before) {
        for (const m of before.members) if (!m.isSelf) this.opts.state.events.publish({ peer: { peer: toProtoPeer(m, undefined, undefined), removed: true } });
      }
      this.publishParty();
      return;
    }
    const t0 = performance.now();
    if (this.opts.portMapping !== false) this.portMapper.start();
    // The TURN allocation needs only our membership: under way while WireGuard starts, so that
    // the relay (every pair's first path) is ready sooner.
    this.sock.startRelay();
    // A resumed party on our own server: map its ports again (create() waits for this itself).
    if (this.hostingEmbedded() && !this.opts.exposure?.current()) void this.opts.exposure?.ensure().then(() => this.publishParty());
    const prefix = p.networkCidr.split('/')[1] ?? '16';
    const address = `${self.virtualIp}/${prefix}`;
    if (this.wg && this.wgAddress !== address) {
      this.wgWriter = undefined;
      await this.wg.close();
      this.wg = undefined;
      this.wgPeers.clear();
      this.keepalive.clear();
    }
    if (!this.wg) {
      const s = this.opts.state.settings;
      this.wg = await createWgDevice({ name: this.opts.interfaceName(), privateKey: this.wgKeys.privateKey, address, mtu: s.mtu, log: this.log });
      this.wgAddress = address;
      this.wgWriter = new PeerWriter(this.wg, (w) => {
        if (w.ms >= 100) this.log.debug('slow WireGuard write', { ...w, ms: Math.round(w.ms) });
      });
      this.log.info('WireGuard interface up', { name: this.wg.name, backend: this.wg.backend, address, wgPort: this.wg.listenPort });
    }
    const t1 = performance.now();
    const writer = this.wgWriter!;
    const others = p.members.filter((m) => !m.isSelf);
    const keep = new Set(others.map((m) => m.wgPublicKey));
    const writes: Array<Promise<void>> = [];
    for (const key of [...this.wgPeers.keys()]) {
      if (!keep.has(key)) {
        writes.push(writer.remove(key));
        this.wgPeers.delete(key);
        this.keepalive.forget(key);
      }
    }
    // New members go to WireGuard in the same write as whatever else is queued (endpoints of
    // earlier members). Path finding for them waits for it: a peer that finds a path sends its
    // handshake at once, and a WireGuard that does not know it yet drops it (5 s lost, measured).
    // No keepalive yet: see setWgEndpoint.
    const fresh = others.filter((m) => this.wgPeers.get(m.wgPublicKey) !== `${m.virtualIp}/32`);
    writes.push(writer.setMany(fresh.map((m) => ({ publicKey: m.wgPublicKey, allowedIps: [`${m.virtualIp}/32`] }))));
    await Promise.all(writes);
    const t2 = performance.now();
    for (const m of fresh) this.wgPeers.set(m.wgPublicKey, `${m.virtualIp}/32`);
    // The LAN relay (nft, sockets) follows in the background and is not waited for: in a join
    // storm its start took ~2 s per helper, and waiting held the JoinParty answer and every newer
    // membership change (the next joiners' WireGuard peers and path finding) behind it. It
    // reports its own failures (LanStats.problem) and retries; the LAN lab tests wait for it.
    this.opts.lan
      ?.setParty({ virtualIp: self.virtualIp, tunnelInterface: this.wg.name }, others.map((m) => m.virtualIp))
      .catch((err: unknown) => this.log.warn('LAN relay update failed', { err: String(err) }));
    this.sock.setPeers(
      others
        .filter((m) => m.presence === 'online' || m.candidates.length > 0)
        .map((m) => ({
          id: m.deviceId,
          discoPublicKey: m.discoPublicKey,
          wgPublicKey: m.wgPublicKey,
          candidates: m.candidates,
          relayed: m.relayed,
          natHint: m.nat.mapping === 'none' ? 'endpoint-independent' : m.nat.mapping,
          portDelta: m.nat.portDelta,
        })),
    );
    this.watchTraffic(others.length > 0);
    for (const m of before?.members ?? []) {
      if (!m.isSelf && !p.members.some((x) => x.deviceId === m.deviceId)) {
        this.paths.delete(m.deviceId);
        this.opts.state.events.publish({ peer: { peer: toProtoPeer(m, undefined, undefined), removed: true } });
      }
    }
    this.publishParty();
    for (const m of others) this.opts.state.events.publish({ peer: { peer: this.protoPeer(m, this.paths.get(m.deviceId)), removed: false } });
    this.log.debug('apply timing', { members: p.members.length, fresh: fresh.length, wgDeviceMs: Math.round(t1 - t0), wgWriteMs: Math.round(t2 - t1), totalMs: Math.round(performance.now() - t0) });
  }

  /**
   * While there are peers: WireGuard's counters tell magicsock which paths went quiet. Read as
   * often as the traffic watch asks (often while bytes move, rarely at rest).
   */
  private watchTraffic(on: boolean): void {
    if (!on || this.closed) {
      clearTimeout(this.trafficTimer);
      this.trafficTimer = undefined;
      return;
    }
    if (this.trafficTimer) return;
    this.scheduleTrafficCheck();
  }

  private scheduleTrafficCheck(): void {
    // Due readMs after the latest reading, ours or the metrics round's (traffic-watch.ts); right
    // after a failed read (nothing updated) the plain interval, never a busy loop.
    const due = this.traffic.dueInMs(Date.now());
    const timer = setTimeout(() => {
      const read = this.traffic.dueInMs(Date.now()) > 0 ? Promise.resolve() : this.checkTraffic();
      void read.finally(() => {
        // Only this loop's own timer continues it (watchTraffic off and on again started another).
        if (this.trafficTimer === timer && !this.closed) this.scheduleTrafficCheck();
      });
    }, due > 0 ? due : this.traffic.nextReadMs());
    timer.unref();
    this.trafficTimer = timer;
  }

  private async checkTraffic(): Promise<void> {
    if (!this.wg || !this.partyState || this.checkingTraffic) return;
    this.checkingTraffic = true;
    try {
      const list = await this.refreshStats();
      if (list) this.applyTraffic(list);
      else this.log.debug('could not read WireGuard counters');
    } finally {
      this.checkingTraffic = false;
    }
  }

  /** WireGuard's keepalive off on pairs that handshook and rest (wg-keepalive.ts). */
  private stopIdleKeepalives(list: readonly WgPeerStats[], idOf: ReadonlyMap<string, string>): void {
    const writer = this.wgWriter;
    if (!writer) return;
    for (const key of this.keepalive.toStop(list, (k) => {
      const id = idOf.get(k);
      return id !== undefined && this.sock.peerIdle(id);
    })) {
      const allowedIp = this.wgPeers.get(key);
      if (allowedIp === undefined) continue;
      // No endpoint: WireGuard keeps the one it has (the peer writer keeps a pending one).
      writer.set({ publicKey: key, allowedIps: [allowedIp], persistentKeepaliveSeconds: 0 }).catch((err: unknown) =>
        this.log.debug('keepalive change failed', { err: String(err) }),
      );
    }
  }

  /** One reading of WireGuard's counters for the traffic watch, from its own read or the metrics round's. */
  private applyTraffic(list: readonly WgPeerStats[]): void {
    const p = this.partyState;
    if (!p) return;
    const quiet = this.traffic.update(list.map((s) => ({ key: s.publicKey, txBytes: s.txBytes, rxBytes: s.rxBytes })), Date.now());
    const busy = quiet.length > 0 || this.traffic.moving.size > 0;
    // At rest with every keepalive already off (most readings), there is nothing to look up.
    if (!busy && !this.keepalive.any()) return;
    const idOf = new Map(p.members.map((m) => [m.wgPublicKey, m.deviceId]));
    this.stopIdleKeepalives(list, idOf);
    if (!busy) return;
    for (const key of this.traffic.moving) {
      const id = idOf.get(key);
      if (id !== undefined) this.sock.noteTraffic(id);
    }
    if (quiet.length === 0) return;
    for (const key of quiet) {
      const id = idOf.get(key);
      if (id !== undefined) this.sock.suspect(id, this.traffic.stopped.has(key));
    }
    // The rebinding that silenced a path may have killed the control connection too, which must
    // carry the peer's new addresses (its relay re-allocation) to us.
    this.control?.checkConnection();
  }


  /** The invite's reach changed (a late or lost router mapping). */
  publishParty(): void {
    this.opts.state.events.publish({ party: { party: this.current() } });
    this.opts.state.events.publish({ helperStatus: this.opts.state.status() });
  }
}
