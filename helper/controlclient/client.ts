import { lookup } from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import type { KeyObject } from 'node:crypto';
import { Client, Metadata, credentials, status as Status, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { ApiError, invalidArgument } from '../core/api-error.js';
import type { Logger } from '../core/log.js';
import { ControlServiceService, type Announcement, type MemberAnnouncement, type SessionResponse } from '../gen/lanrage/control/v1/control.js';
import { checkAnnouncement } from '../control/announcements.js';
import { PARTY_ID_RE } from '../control/ids.js';
import { registrationMessage } from '../control/registration.js';
import { checkCandidates, checkDeviceId, checkInviteSecret, checkName, checkPartyId, checkRelayed, checkSpraySockets, MAX_SPRAY_SOCKETS } from '../control/validate.js';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import { deviceIdOf, identityPublicKeyRaw, parseIdentity, signWithIdentity } from './identity.js';
import { normalizeControlUrl } from './invite.js';
import { loopLag } from '../core/loop-lag.js';
import { relayOffersFromProto, type RelayOffer } from './relays.js';
import {
  cleanCandidates,
  leftReason,
  memberFromProto,
  natToProto,
  partyFromProto,
  withMember,
  withoutMember,
  type LeftReason,
  type MemberState,
  type NatHintsState,
  type PartyState,
} from './state.js';

export type { RelayOffer } from './relays.js';

// The helper's connection to the control server. It registers with the device identity, keeps
// one Session stream open (that is what makes the device "online"), mirrors the party from it,
// and when the stream breaks it reconnects with backoff, registering again (session tokens do
// not survive a server restart) and re-sending its endpoints.

export interface ControlClientOptions {
  /** "http://host:port" or "https://host:port". */
  url: string;
  /**
   * Other instances of the same control service (sharing its database): when the connection
   * breaks, reconnecting tries them in turn with the primary.
   */
  fallbackUrls?: readonly string[];
  identity: KeyObject | { privateKeyPem: string };
  name: string;
  /** base64, 32 bytes. */
  wgPublicKey: string;
  /** base64, 32 bytes (X25519). */
  discoPublicKey: string;
  log: Logger;
  /** PEM of a CA (or self-signed certificate) to trust for https:// besides the system roots. */
  tlsCa?: Buffer;
  /** Deadline of each unary call and of the first snapshot (default 10 s). */
  callTimeoutMs?: number;
  backoff?: BackoffOptions;
}

export interface ControlClientEvents {
  /** The whole party (null: in none): on connect, after every own party change, after reconnecting. */
  snapshot: [party: PartyState | null];
  member: [member: MemberState, change: 'joined' | 'updated'];
  memberLeft: [left: { deviceId: string; reason: LeftReason; member?: MemberState }];
  callMeMaybe: [msg: { fromDeviceId: string; candidates: string[]; spraySockets: number; primed: string[] }];
  kicked: [info: { partyId: string; byDeviceId: string }];
  /** Members' announcements (announcements.ts): all of them after each snapshot (replace), then one per change. */
  announcements: [list: MemberAnnouncement[], replace: boolean];
  disconnected: [info: { error: string }];
  reconnected: [];
}

type Def = typeof ControlServiceService;
type UnaryName = { [K in keyof Def]: Def[K]['responseStream'] extends false ? K : never }[keyof Def];
type ReqOf<K extends keyof Def> = Parameters<Def[K]['requestSerialize']>[0];
type ResOf<K extends keyof Def> = ReturnType<Def[K]['responseDeserialize']>;

const SETTLE_MS = 2000;
/** checkConnection() calls at most this often. */
const CHECK_GAP_MS = 2000;

function decodeKey(what: string, b64: string): Buffer {
  const k = Buffer.from(b64, 'base64');
  if (k.length !== 32 || k.toString('base64') !== b64) throw invalidArgument(`${what} must be a base64 32-byte key`);
  return k;
}

export class ControlClient extends EventEmitter<ControlClientEvents> {
  /** The control URL in use (one of url and fallbackUrls). */
  url: string;
  readonly deviceId: string;
  private grpc: Client;
  private readonly urls: string[];
  private current = 0;
  private readonly tlsCa: Buffer | undefined;
  private readonly log: Logger;
  private readonly identity: KeyObject;
  private readonly name: string;
  private readonly wgKey: Buffer;
  private readonly discoKey: Buffer;
  private readonly timeoutMs: number;
  private readonly backoff: BackoffOptions;
  private controlHost: string;
  private token = '';
  private stream: ClientReadableStream<SessionResponse> | undefined;
  private state: PartyState | null = null;
  private stun: string[] = [];
  private controlIp: string | undefined;
  private online = false;
  private lastCheck = -Infinity;
  private closed = false;
  private reconnecting: Promise<void> | undefined;
  private cancelSleep: (() => void) | undefined;
  private lastEndpoints: { candidates: string[]; nat: NatHintsState; relayed: string[] } | undefined;
  private readonly secrets = new Map<string, string>();

  static async connect(opts: ControlClientOptions): Promise<ControlClient> {
    const c = new ControlClient(opts);
    // The first instance that answers: the primary may be the one that is down right now.
    for (let i = 0; ; i++) {
      try {
        await c.connectOnce();
        break;
      } catch (err) {
        if (i + 1 < c.urls.length) {
          c.log.info('control instance not answering; trying the next', { url: c.url, err: err instanceof Error ? err.message : String(err) });
          c.nextUrl();
          continue;
        }
        c.closed = true;
        c.grpc.close();
        throw c.toApiError(err);
      }
    }
    c.online = true;
    return c;
  }

  private constructor(opts: ControlClientOptions) {
    super();
    this.urls = [...new Set([opts.url, ...(opts.fallbackUrls ?? [])].map((x) => normalizeControlUrl(x)))];
    this.url = this.urls[0]!;
    this.tlsCa = opts.tlsCa;
    this.identity = 'privateKeyPem' in opts.identity ? parseIdentity(opts.identity.privateKeyPem) : opts.identity;
    this.deviceId = deviceIdOf(this.identity);
    this.name = checkName('name', opts.name.normalize('NFC'));
    this.wgKey = decodeKey('wgPublicKey', opts.wgPublicKey);
    this.discoKey = decodeKey('discoPublicKey', opts.discoPublicKey);
    this.log = opts.log.child({ part: 'control-client', control: this.url });
    this.timeoutMs = opts.callTimeoutMs ?? 10_000;
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
    [this.grpc, this.controlHost] = this.channel(this.url);
  }

  private channel(url: string): [Client, string] {
    const u = new URL(url);
    const port = u.port || (u.protocol === 'https:' ? '443' : '80');
    const grpc = new Client(`${u.hostname}:${port}`, u.protocol === 'https:' ? credentials.createSsl(this.tlsCa ?? null) : credentials.createInsecure(), {
      'grpc.max_receive_message_length': 4 * 1024 * 1024,
      'grpc.keepalive_time_ms': 15_000,
      'grpc.keepalive_timeout_ms': 10_000,
      // The channel's own reconnect backoff must not outgrow ours (its default reaches 120 s).
      'grpc.initial_reconnect_backoff_ms': this.backoff.initialMs,
      'grpc.max_reconnect_backoff_ms': this.backoff.maxMs,
    });
    return [grpc, u.hostname.replace(/^\[|\]$/g, '')];
  }

  /** Moves to the next control URL (another instance on the same database). */
  private nextUrl(): void {
    if (this.urls.length < 2) return;
    this.current = (this.current + 1) % this.urls.length;
    this.grpc.close();
    this.url = this.urls[this.current]!;
    [this.grpc, this.controlHost] = this.channel(this.url);
    this.controlIp = undefined;
    this.token = '';
    this.log.info('trying another control instance', { url: this.url });
  }

  /** Every instance this client may use (url and fallbackUrls), the configured primary first. */
  get urlList(): readonly string[] {
    return this.urls;
  }

  /** The current party, null when in none. */
  party(): PartyState | null {
    return this.state;
  }

  /** The control server's two STUN addresses ("ip:port"), as it announced them. */
  stunServers(): string[] {
    return [...this.stun];
  }

  get connected(): boolean {
    return this.online;
  }

  /** Lets a restarted helper show the invite link of a party it joined before. */
  rememberInviteSecret(partyId: string, secret: string): void {
    if (!PARTY_ID_RE.test(partyId)) throw invalidArgument('not a party id');
    this.rememberSecret(partyId, checkInviteSecret(secret));
  }

  private rememberSecret(partyId: string, secret: string): void {
    this.secrets.set(partyId, secret);
    if (this.state?.id === partyId) this.state = { ...this.state, inviteSecret: secret };
  }

  async createParty(name: string): Promise<{ party: PartyState; inviteSecret: string }> {
    const res = await this.unary('createParty', { name: checkName('name', name.normalize('NFC')) });
    const party = this.partyFromResponse(res.party);
    this.rememberSecret(party.id, res.inviteSecret);
    return { party: await this.settle((p) => p?.id === party.id, party), inviteSecret: res.inviteSecret };
  }

  async joinParty(partyId: string, inviteSecret: string): Promise<PartyState> {
    const req = { partyId: checkPartyId(partyId), inviteSecret: checkInviteSecret(inviteSecret) };
    const res = await this.unary('joinParty', req);
    const party = this.partyFromResponse(res.party);
    this.rememberSecret(party.id, inviteSecret);
    return this.settle((p) => p?.id === party.id, party);
  }

  async leaveParty(): Promise<void> {
    await this.unary('leaveParty', {});
    await this.settle((p) => p === null, null);
  }

  async kick(deviceId: string): Promise<void> {
    await this.unary('kickMember', { deviceId: checkDeviceId('device_id', deviceId) });
  }

  /**
   * Publishes this device's candidates, NAT hints and TURN relayed addresses (at most 4, IPv4);
   * they are re-sent after every reconnect.
   */
  async updateEndpoints(
    candidates: readonly string[],
    nat: NatHintsState = { mapping: 'unknown', portMapped: false, portDelta: 0 },
    relayed: readonly string[] = [],
  ): Promise<void> {
    const clean = checkCandidates('candidates', candidates);
    const cleanRelayed = checkRelayed('relayed', relayed);
    this.lastEndpoints = { candidates: clean, nat, relayed: cleanRelayed };
    await this.unary('updateEndpoints', { candidates: clean, nat: natToProto(nat), relayed: cleanRelayed });
  }

  /**
   * The relays the control server offers this device, with credentials minted for this call
   * (ask again before each allocation: they expire). Needs party membership (else
   * FAILED_PRECONDITION); empty when the server has none. Unusable entries are dropped.
   */
  async getRelays(): Promise<RelayOffer[]> {
    const res = await this.unary('getRelays', {});
    return relayOffersFromProto(res.relays, (why) => this.log.warn('relay offer ignored', { why }));
  }

  /**
   * Sends my candidates (the published ones when omitted) to one member; false if it is offline.
   * spraySockets > 0: I just opened that many sockets towards it (birthday probing). primed: its
   * candidates I just sent to (my NAT is open towards those).
   */
  async callMeMaybe(toDeviceId: string, candidates: readonly string[] = [], spraySockets = 0, primed: readonly string[] = []): Promise<boolean> {
    const res = await this.unary('callMeMaybe', {
      toDeviceId: checkDeviceId('to_device_id', toDeviceId),
      candidates: checkCandidates('candidates', candidates),
      spraySockets: checkSpraySockets(spraySockets),
      primed: checkCandidates('primed', primed),
    });
    return res.delivered;
  }

  /** Replaces what this device tells its party about its games; checked here as the server checks it. */
  async announce(a: Announcement): Promise<void> {
    await this.unary('announce', { announcement: checkAnnouncement(a) });
  }

  /**
   * One of our paths went quiet, maybe a NAT rebinding, which kills this TCP connection as well:
   * without traffic of ours on it we notice only at the next keepalive (15 s), and until then
   * the party's news — a peer's new relayed address — cannot reach us. One cheap call on the
   * connection now makes a dead one fail at once (the session stream fails with it and
   * reconnects). At most once per CHECK_GAP_MS.
   */
  checkConnection(): void {
    const now = Date.now();
    if (this.closed || !this.online || now - this.lastCheck < CHECK_GAP_MS) return;
    this.lastCheck = now;
    this.unary('getChallenge', {}, false).catch((err: unknown) => this.log.debug('connection check failed', { err: err instanceof Error ? err.message : String(err) }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.online = false;
    this.cancelSleep?.();
    const s = this.stream;
    this.stream = undefined;
    s?.cancel();
    await this.reconnecting?.catch(() => {});
    this.grpc.close();
  }

  // ---- connection ----

  private async connectOnce(): Promise<void> {
    const t0 = performance.now();
    const lag = loopLag.watch();
    try {
      if (isIP(this.controlHost) === 0) {
        // Resolved here only to translate stun_servers that name the same host into addresses.
        this.controlIp = (await lookup(this.controlHost)).address;
      }
      const steps = await this.register();
      const t1 = performance.now();
      await this.openSession();
      // Where a connection's time goes (a join storm on a small machine: issue 13).
      this.log.debug('control connect timing', { ...steps, sessionMs: Math.round(performance.now() - t1), totalMs: Math.round(performance.now() - t0), loopLagMs: lag() });
    } finally {
      lag();
    }
  }

  private async register(): Promise<{ challengeMs: number; registerMs: number }> {
    const t0 = performance.now();
    const challenge = await this.unary('getChallenge', {}, false);
    const t1 = performance.now();
    const signature = signWithIdentity(this.identity, registrationMessage(challenge.nonce, this.wgKey, this.discoKey, this.name));
    const res = await this.unary(
      'register',
      {
        identityPublicKey: identityPublicKeyRaw(this.identity),
        nonce: challenge.nonce,
        signature,
        name: this.name,
        wireguardPublicKey: this.wgKey,
        discoPublicKey: this.discoKey,
      },
      false,
    );
    if (res.deviceId !== this.deviceId) throw new Error(`the control server answered device id ${res.deviceId}, expected ${this.deviceId}`);
    this.token = res.sessionToken;
    return { challengeMs: Math.round(t1 - t0), registerMs: Math.round(performance.now() - t1) };
  }

  /** Opens the Session stream; resolves once its first snapshot has been applied. */
  private openSession(): Promise<void> {
    return new Promise((resolve, reject) => {
      const def = ControlServiceService.session;
      const stream = this.grpc.makeServerStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, {}, this.auth());
      this.stream = stream;
      let first = true;
      const fail = (why: string): void => {
        if (first) {
          first = false;
          clearTimeout(timer);
          if (this.stream === stream) this.stream = undefined;
          stream.cancel();
          reject(new Error(why));
        } else this.lost(stream, why);
      };
      const timer = setTimeout(() => fail(`no snapshot from the control server within ${this.timeoutMs} ms`), this.timeoutMs);
      stream.on('data', (ev: SessionResponse) => {
        if (first) {
          if (!ev.snapshot) return;
          first = false;
          clearTimeout(timer);
          this.handle(ev);
          resolve();
          return;
        }
        this.handle(ev);
      });
      stream.on('error', (err: ServiceError) => {
        if (first && err.code === Status.UNAUTHENTICATED) this.token = '';
        fail(`${Status[err.code] ?? err.code}: ${err.details}`);
      });
      stream.on('end', () => fail('the control server ended the session'));
    });
  }

  private lost(stream: ClientReadableStream<SessionResponse>, why: string): void {
    if (stream !== this.stream) return;
    this.stream = undefined;
    if (this.closed || this.reconnecting) return;
    this.online = false;
    this.log.warn('control server connection lost', { why });
    this.emit('disconnected', { error: why });
    this.reconnecting = this.reconnectLoop().finally(() => (this.reconnecting = undefined));
  }

  private async reconnectLoop(): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, backoffDelay(attempt, this.backoff));
        this.cancelSleep = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.cancelSleep = undefined;
      if (this.closed) return;
      // The instance that dropped us may be gone for good: try the others in turn.
      this.nextUrl();
      try {
        await this.connectOnce();
      } catch (err) {
        this.log.debug('reconnect failed', { attempt, err: err instanceof Error ? err.message : String(err) });
        continue;
      }
      if (!this.stream) continue; // broke again right after its snapshot
      this.online = true;
      this.log.info('control server connection restored', { attempts: attempt + 1 });
      this.emit('reconnected');
      if (this.lastEndpoints) {
        const { candidates, nat, relayed } = this.lastEndpoints;
        this.unary('updateEndpoints', { candidates, nat: natToProto(nat), relayed }).catch((err: unknown) =>
          this.log.warn('re-sending endpoints failed', { err: err instanceof Error ? err.message : String(err) }),
        );
      }
      return;
    }
  }

  // ---- events ----

  private handle(ev: SessionResponse): void {
    try {
      if (ev.snapshot) {
        this.stun = this.cleanStunServers(ev.snapshot.stunServers);
        this.state = ev.snapshot.party ? this.withSecret(partyFromProto(ev.snapshot.party, this.deviceId, (why) => this.log.warn('member dropped from snapshot', { why }))) : null;
        this.emit('snapshot', this.state);
        this.emit('announcements', this.cleanAnnouncements(ev.snapshot.announcements), true);
      } else if (ev.memberJoined || ev.memberUpdated) {
        if (!this.state) return;
        const m = memberFromProto((ev.memberJoined ?? ev.memberUpdated)!, this.state.networkCidr, this.deviceId);
        this.state = withMember(this.state, m);
        this.emit('member', m, ev.memberJoined ? 'joined' : 'updated');
      } else if (ev.memberLeft) {
        if (!this.state) return;
        const member = this.state.members.find((m) => m.deviceId === ev.memberLeft!.deviceId);
        this.state = withoutMember(this.state, ev.memberLeft.deviceId);
        this.emit('memberLeft', { deviceId: ev.memberLeft.deviceId, reason: leftReason(ev.memberLeft.reason), ...(member && { member }) });
      } else if (ev.callMeMaybe) {
        const from = ev.callMeMaybe.fromDeviceId;
        if (!this.state?.members.some((m) => m.deviceId === from && !m.isSelf)) return;
        const spray = ev.callMeMaybe.spraySockets;
        this.emit('callMeMaybe', {
          fromDeviceId: from,
          candidates: cleanCandidates(ev.callMeMaybe.candidates),
          spraySockets: spray <= MAX_SPRAY_SOCKETS ? spray : 0,
          primed: cleanCandidates(ev.callMeMaybe.primed ?? []),
        });
      } else if (ev.announcement) {
        this.emit('announcements', this.cleanAnnouncements([ev.announcement]), false);
      } else if (ev.kicked) {
        if (this.state?.id !== ev.kicked.partyId) return;
        this.state = null;
        this.emit('kicked', { partyId: ev.kicked.partyId, byDeviceId: ev.kicked.byDeviceId });
      }
    } catch (err) {
      this.log.warn('control event ignored', { err: err instanceof Error ? err.message : String(err) });
    }
  }

  /** Only current members' announcements that pass the server's own checks. */
  private cleanAnnouncements(list: readonly MemberAnnouncement[]): MemberAnnouncement[] {
    const out: MemberAnnouncement[] = [];
    for (const x of list) {
      if (!this.state?.members.some((m) => m.deviceId === x.deviceId)) continue;
      try {
        out.push({ deviceId: x.deviceId, announcement: checkAnnouncement(x.announcement) });
      } catch (err) {
        this.log.warn('member announcement ignored', { deviceId: x.deviceId, why: err instanceof Error ? err.message : String(err) });
      }
    }
    return out;
  }

  private withSecret(p: PartyState): PartyState {
    const secret = this.secrets.get(p.id);
    return secret ? { ...p, inviteSecret: secret } : p;
  }

  private partyFromResponse(p: Parameters<typeof partyFromProto>[0] | undefined): PartyState {
    if (!p) throw new ApiError(Status.INTERNAL, 'the control server answered without a party');
    try {
      return partyFromProto(p, this.deviceId, (why) => this.log.warn('member dropped', { why }));
    } catch (err) {
      throw new ApiError(Status.INTERNAL, `the control server answered an unusable party: ${(err as Error).message}`);
    }
  }

  /** STUN servers must be IP literals; the control host's own name is translated. */
  private cleanStunServers(list: readonly string[]): string[] {
    const out: string[] = [];
    for (const s of list.slice(0, 4)) {
      const named = /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(s);
      const candidate = named && isIP(named[1]!) === 0 && named[1] === this.controlHost && this.controlIp ? `${this.controlIp}:${named[2]}` : s;
      const clean = cleanCandidates([candidate]);
      if (clean[0]) out.push(clean[0]);
      else this.log.warn('unusable stun server ignored', { server: s.slice(0, 80) });
    }
    return out;
  }

  /**
   * After a call that changes our party, the Session stream brings the new snapshot; wait for it
   * briefly so that party() is current when the call returns. If it does not come (stream down),
   * take the call's answer.
   */
  private settle(done: (p: PartyState | null) => boolean, fallback: PartyState | null): Promise<PartyState> {
    const current = (): PartyState => (this.state ?? fallback)!;
    if (done(this.state)) return Promise.resolve(current());
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.off('snapshot', check);
        if (!done(this.state)) {
          this.state = fallback && this.withSecret(fallback);
          this.emit('snapshot', this.state);
        }
        resolve(current());
      };
      const check = (): void => {
        if (done(this.state)) finish();
      };
      const timer = setTimeout(finish, this.online ? SETTLE_MS : 0);
      this.on('snapshot', check);
    });
  }

  // ---- calls ----

  private auth(): Metadata {
    const md = new Metadata();
    md.set('authorization', `Bearer ${this.token}`);
    return md;
  }

  private async unary<K extends UnaryName>(name: K, req: ReqOf<K>, authenticated = true): Promise<ResOf<K>> {
    try {
      return await this.unaryOnce(name, req, authenticated);
    } catch (err) {
      // Tokens do not survive a server restart: register again once and retry.
      if (authenticated && !this.closed && (err as ServiceError).code === Status.UNAUTHENTICATED) {
        try {
          await this.register();
          return await this.unaryOnce(name, req, authenticated);
        } catch (again) {
          throw this.toApiError(again);
        }
      }
      throw this.toApiError(err);
    }
  }

  private unaryOnce<K extends UnaryName>(name: K, req: ReqOf<K>, authenticated: boolean): Promise<ResOf<K>> {
    const def = ControlServiceService[name] as unknown as {
      path: string;
      requestSerialize: (r: ReqOf<K>) => Buffer;
      responseDeserialize: (b: Buffer) => ResOf<K>;
    };
    return new Promise((resolve, reject) => {
      this.grpc.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        req,
        authenticated ? this.auth() : new Metadata(),
        { deadline: Date.now() + this.timeoutMs },
        (err, res) => (err || res === undefined ? reject(err ?? new Error('empty response')) : resolve(res)),
      );
    });
  }

  private toApiError(err: unknown): ApiError {
    if (err instanceof ApiError) return err;
    const e = err as Partial<ServiceError>;
    if (typeof e.code === 'number') {
      if (e.code === Status.UNAVAILABLE || e.code === Status.DEADLINE_EXCEEDED) {
        return new ApiError(Status.UNAVAILABLE, `the control server ${this.url} is unreachable: ${e.details ?? e.message}`);
      }
      return new ApiError(e.code, e.details ?? e.message ?? 'control server error');
    }
    return new ApiError(Status.UNAVAILABLE, `cannot reach the control server ${this.url}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
