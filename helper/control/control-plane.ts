import { createHash } from 'node:crypto';
import { ApiError, Status, invalidArgument } from '../core/api-error.js';
import type { Logger } from '../core/log.js';
import {
  MemberLeftReason,
  NatMapping,
  Presence,
  RelayTransport,
  type CallMeMaybeRequest,
  type CallMeMaybeResponse,
  type CreatePartyRequest,
  type CreatePartyResponse,
  type AnnounceRequest,
  type GetRelaysResponse,
  type JoinPartyRequest,
  type JoinPartyResponse,
  type KickMemberRequest,
  type Member,
  type NatHints,
  type Party,
  type RegisterRequest,
  type RegisterResponse,
  type SessionResponse,
  type UpdateEndpointsRequest,
} from '../gen/lanrage/control/v1/control.js';
import { systemClock, type Clock } from '../core/clock.js';
import { deviceIdFromIdentityKey, hashSecret, newInviteSecret, newPartyId, newSessionToken, secretMatches } from './ids.js';
import { DEFAULT_NETWORK_CIDR, allocateAddress, parsePool, type Pool } from './ip-pool.js';
import { AWAY_AFTER_MS, DROP_AFTER_MS, PresenceTracker } from './presence.js';
import { CHALLENGE_TTL_MS, ChallengeBook, NONCE_BYTES, registrationMessage, verifyRegistration } from './registration.js';
import type { ControlStore, MemberView } from './store.js';
import { LocalBus, type BusEvent, type ControlBus } from './bus.js';
import type { RelayConfig } from './relay-config.js';
import { mintTurnCredentials } from './turn-credentials.js';
import { AnnouncementBook, checkAnnouncement } from './announcements.js';
import { checkCandidates, checkDeviceId, checkInviteSecret, checkKey, checkName, checkNatHints, checkPartyId, checkRelayed, checkSpraySockets } from './validate.js';

// The control plane's rules, independent of gRPC: registration, parties, membership, addresses,
// presence and who is told what. Durable state goes through the ControlStore inside one
// transaction per operation; events are queued during it and delivered only after it commits.

export interface ControlPlaneOptions {
  store: ControlStore;
  log: Logger;
  clock?: Clock;
  /** The virtual LAN of new parties (default 10.66.0.0/16). */
  networkCidr?: string;
  awayAfterMs?: number;
  dropAfterMs?: number;
  challengeTtlMs?: number;
  maxMembers?: number;
  /** TURN relays handed to party members with fresh credentials (none: GetRelays answers an empty list). */
  relays?: RelayConfig;
  /** Other control instances on the same database (none: LocalBus). */
  bus?: ControlBus;
}

export type SessionSink = (e: SessionResponse) => void;

interface Session {
  deviceId: string;
  stunServers: readonly string[];
  send: SessionSink;
}

type Outgoing = { to: string; event: SessionResponse } | { to: string; snapshot: true } | { run: () => void };

const NO_NAT: NatHints = { mapping: NatMapping.NAT_MAPPING_UNSPECIFIED, portMapped: false, portDelta: 0 };
export const MAX_MEMBERS = 256;
const MAX_TOKENS_PER_DEVICE = 4;
// Call-me-maybe budget per sender: a burst for a whole party at start-up, then a steady trickle.
const CMM_BURST = 60;
const CMM_PER_SECOND = 5;

const unauthenticated = (msg: string): ApiError => new ApiError(Status.UNAUTHENTICATED, msg);
const tokenKey = (token: string): string => createHash('sha256').update(token).digest('hex');

export class ControlPlane {
  private readonly store: ControlStore;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly defaultPool: Pool;
  private readonly pools = new Map<string, Pool>();
  private readonly maxMembers: number;
  private readonly relays: RelayConfig | undefined;
  private readonly challenges: ChallengeBook;
  private readonly presence: PresenceTracker;
  private readonly sessions = new Map<string, Set<Session>>();
  private readonly tokens = new Map<string, string>();
  private readonly tokensByDevice = new Map<string, string[]>();
  private readonly cmmBudget = new Map<string, { tokens: number; at: number }>();
  private outbox: Outgoing[] = [];
  private readonly bus: ControlBus;
  private readonly announcements = new AnnouncementBook(() => this.clock.now());

  constructor(opts: ControlPlaneOptions) {
    this.store = opts.store;
    this.log = opts.log;
    this.clock = opts.clock ?? systemClock;
    this.defaultPool = parsePool(opts.networkCidr ?? DEFAULT_NETWORK_CIDR);
    this.maxMembers = opts.maxMembers ?? MAX_MEMBERS;
    this.relays = opts.relays;
    this.challenges = new ChallengeBook(this.clock, opts.challengeTtlMs ?? CHALLENGE_TTL_MS);
    const bus = (this.bus = opts.bus ?? new LocalBus());
    // Every instance tracks presence; only the leader acts on it, so each change happens once.
    this.presence = new PresenceTracker(
      this.clock,
      {
        onAway: (id) => bus.isLeader() && this.presenceChanged(id),
        onOnline: (id) => bus.isLeader() && this.presenceChanged(id),
        onDrop: (id) => bus.isLeader() && this.dropped(id),
      },
      opts.awayAfterMs ?? AWAY_AFTER_MS,
      opts.dropAfterMs ?? DROP_AFTER_MS,
    );
    // After a restart nobody is connected yet: members get the usual grace to come back.
    for (const m of this.store.allMemberships()) this.presence.track(m.deviceId);
    bus.attach({
      events: (evs) => this.deliverRemote(evs),
      remoteSessionOpened: (id) => this.presence.sessionOpened(id),
      remoteSessionClosed: (id) => this.presence.sessionClosed(id),
      resync: () => {
        for (const set of this.sessions.values()) for (const s of set) this.deliver(s, this.snapshotFor(s));
      },
      // Addressed to the announcer itself: the other instances record it (deliverRemote); its
      // own session, held here, is not sent anything.
      peerAsked: () => {
        const evs: BusEvent[] = [];
        for (const id of this.sessions.keys()) {
          const a = this.announcements.get(id);
          if (a) evs.push({ to: id, event: { announcement: { deviceId: id, announcement: a } } });
        }
        if (evs.length > 0) bus.publish(evs);
      },
    });
  }

  // ---- registration and sessions ----

  getChallenge(): { nonce: Buffer; expiresAt: Date } {
    const c = this.challenges.issue();
    return { nonce: c.nonce, expiresAt: new Date(c.expiresAt) };
  }

  register(req: RegisterRequest): RegisterResponse {
    const identityKey = checkKey('identity_public_key', req.identityPublicKey);
    if (req.nonce.length !== NONCE_BYTES) throw invalidArgument(`nonce must be the ${NONCE_BYTES} bytes from GetChallenge`);
    const wgKey = checkKey('wireguard_public_key', req.wireguardPublicKey);
    const discoKey = checkKey('disco_public_key', req.discoPublicKey);
    if (wgKey.equals(discoKey)) throw invalidArgument('wireguard_public_key and disco_public_key must be different keys');
    const name = checkName('name', req.name);
    // The nonce is spent by any attempt, good or bad: one signature try per challenge.
    if (!this.challenges.consume(req.nonce)) throw unauthenticated('the nonce is unknown, already used or expired: call GetChallenge again');
    if (!verifyRegistration(identityKey, req.signature, registrationMessage(req.nonce, wgKey, discoKey, name))) {
      throw unauthenticated('the signature does not verify with identity_public_key over this nonce, keys and name');
    }
    const id = deviceIdFromIdentityKey(identityKey);
    this.run(() => {
      const existing = this.store.device(id);
      if (existing && !existing.identityKey.equals(identityKey)) throw new ApiError(Status.PERMISSION_DENIED, 'this device id belongs to another identity key');
      for (const [kind, key, what] of [['wg', wgKey, 'WireGuard'], ['disco', discoKey, 'disco']] as const) {
        const owner = this.store.deviceByKey(kind, key);
        if (owner !== undefined && owner !== id) throw new ApiError(Status.ALREADY_EXISTS, `this ${what} public key is already registered by another device`);
      }
      const now = this.clock.now();
      this.store.saveDevice({
        id,
        identityKey,
        name,
        wgKey,
        discoKey,
        candidates: existing?.candidates ?? [],
        nat: existing?.nat ?? NO_NAT,
        relayed: existing?.relayed ?? [],
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
      });
      const changed = !existing || existing.name !== name || !existing.wgKey.equals(wgKey) || !existing.discoKey.equals(discoKey);
      if (changed) this.queueMemberUpdated(id);
    });
    const token = newSessionToken();
    this.rememberToken(id, token);
    // Per-device routine events are debug: a 10,000-device setup would flood info (issue 14).
    this.log.debug('device registered', { deviceId: id, name });
    return { deviceId: id, sessionToken: token };
  }

  /** The device a session token belongs to. */
  authenticate(token: string | undefined): string {
    if (token === undefined) throw unauthenticated('send metadata "authorization: Bearer <session_token>" with the token from Register');
    const id = this.tokens.get(tokenKey(token));
    if (id === undefined) throw unauthenticated('the session token is unknown (the control server may have restarted): register again');
    return id;
  }

  /** Opens a live stream for the device: it gets a snapshot now and events from then on. */
  openSession(deviceId: string, stunServers: readonly string[], send: SessionSink): () => void {
    const s: Session = { deviceId, stunServers, send };
    // Presence first: "back online" goes to the others; this session starts from the snapshot.
    this.presence.sessionOpened(deviceId);
    this.bus.sessionOpened(deviceId);
    let set = this.sessions.get(deviceId);
    if (!set) this.sessions.set(deviceId, (set = new Set()));
    set.add(s);
    this.log.debug('session opened', { deviceId, sessions: set.size });
    this.deliver(s, this.snapshotFor(s));
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      set.delete(s);
      if (set.size === 0 && this.sessions.get(deviceId) === set) this.sessions.delete(deviceId);
      this.log.debug('session closed', { deviceId, sessions: set.size });
      this.presence.sessionClosed(deviceId);
      this.bus.sessionClosed(deviceId);
    };
  }

  // ---- parties ----

  createParty(deviceId: string, req: CreatePartyRequest): CreatePartyResponse {
    const name = checkName('name', req.name);
    const secret = newInviteSecret();
    const partyId = this.run(() => {
      this.removeMember(deviceId, MemberLeftReason.MEMBER_LEFT_REASON_LEFT, { notifySelf: false });
      let id = newPartyId();
      while (this.store.party(id)) id = newPartyId();
      this.store.insertParty({
        id,
        name,
        secretHash: hashSecret(secret),
        hostDeviceId: deviceId,
        networkCidr: this.defaultPool.cidr,
        createdAt: this.clock.now(),
      });
      this.addMember(id, deviceId);
      return id;
    });
    this.log.info('party created', { partyId, deviceId });
    return { party: this.partyProto(partyId), inviteSecret: secret };
  }

  joinParty(deviceId: string, req: JoinPartyRequest): JoinPartyResponse {
    const partyId = checkPartyId(req.partyId);
    const secret = checkInviteSecret(req.inviteSecret);
    this.run(() => {
      const party = this.store.party(partyId);
      if (!party) throw new ApiError(Status.NOT_FOUND, `party ${partyId} does not exist (a party ends when its last member leaves)`);
      if (!secretMatches(party.secretHash, secret)) throw new ApiError(Status.PERMISSION_DENIED, `the invite secret is wrong for party ${partyId}: ask a member for a fresh invite link`);
      const current = this.store.membership(deviceId);
      if (current?.partyId === partyId) {
        this.outbox.push({ to: deviceId, snapshot: true });
        return;
      }
      this.removeMember(deviceId, MemberLeftReason.MEMBER_LEFT_REASON_LEFT, { notifySelf: false });
      this.addMember(partyId, deviceId);
    });
    this.log.debug('party joined', { partyId, deviceId });
    return { party: this.partyProto(partyId) };
  }

  /** Idempotent: leaving while in no party is not an error. */
  leaveParty(deviceId: string): void {
    this.run(() => this.removeMember(deviceId, MemberLeftReason.MEMBER_LEFT_REASON_LEFT, { notifySelf: true }));
  }

  kick(deviceId: string, req: KickMemberRequest): void {
    const target = checkDeviceId('device_id', req.deviceId);
    this.run(() => {
      const mine = this.store.membership(deviceId);
      if (!mine) throw new ApiError(Status.FAILED_PRECONDITION, 'you are not in a party');
      const party = this.store.party(mine.partyId)!;
      if (party.hostDeviceId !== deviceId) throw new ApiError(Status.PERMISSION_DENIED, 'only the party host can kick members');
      if (target === deviceId) throw invalidArgument('the host cannot kick itself: use LeaveParty');
      if (this.store.membership(target)?.partyId !== mine.partyId) throw new ApiError(Status.NOT_FOUND, `device ${target} is not in your party`);
      this.removeMember(target, MemberLeftReason.MEMBER_LEFT_REASON_KICKED, { notifySelf: true, by: deviceId });
    });
    this.log.info('member kicked', { deviceId: target, by: deviceId });
  }

  /** `relayed` may be left out (callers that predate it publish none). */
  updateEndpoints(deviceId: string, req: Omit<UpdateEndpointsRequest, 'relayed'> & { relayed?: string[] }): void {
    const candidates = checkCandidates('candidates', req.candidates);
    const nat = checkNatHints(req.nat);
    const relayed = checkRelayed('relayed', req.relayed ?? []);
    this.run(() => {
      const d = this.store.device(deviceId);
      if (!d) throw unauthenticated('this device is not registered: register again');
      if (JSON.stringify([d.candidates, d.nat, d.relayed]) === JSON.stringify([candidates, nat, relayed])) return;
      this.store.setDeviceEndpoints(deviceId, candidates, nat, relayed);
      this.queueMemberUpdated(deviceId);
    });
  }

  /**
   * The configured relays with credentials minted now for this device. Party members only: the
   * relay is there to carry a party's traffic, and credentials are what keep it from being open.
   */
  getRelays(deviceId: string): GetRelaysResponse {
    if (!this.store.membership(deviceId)) throw new ApiError(Status.FAILED_PRECONDITION, 'join a party first: relays are for party members');
    const cfg = this.relays;
    if (!cfg) return { relays: [] };
    const creds = mintTurnCredentials(cfg.secret, deviceId, this.clock.now(), cfg.ttlSeconds);
    return {
      relays: cfg.relays.map((r) => ({
        host: r.host,
        port: r.port,
        transports: r.transports.map((t) => (t === 'udp' ? RelayTransport.RELAY_TRANSPORT_UDP : RelayTransport.RELAY_TRANSPORT_TCP)),
        username: creds.username,
        password: creds.password,
        expiresAt: new Date(creds.expiresAt * 1000),
        realm: cfg.realm,
      })),
    };
  }

  /** Passes the caller's candidates (its published ones when none are given) to one party member. */
  callMeMaybe(deviceId: string, req: CallMeMaybeRequest): CallMeMaybeResponse {
    const to = checkDeviceId('to_device_id', req.toDeviceId);
    let candidates = checkCandidates('candidates', req.candidates);
    const spraySockets = checkSpraySockets(req.spraySockets);
    const primed = checkCandidates('primed', req.primed ?? []);
    if (to === deviceId) throw invalidArgument('to_device_id is yourself');
    const mine = this.store.membership(deviceId);
    if (!mine) throw new ApiError(Status.FAILED_PRECONDITION, 'you are not in a party');
    if (this.store.membership(to)?.partyId !== mine.partyId) throw new ApiError(Status.NOT_FOUND, `device ${to} is not in your party`);
    if (candidates.length === 0) candidates = this.store.device(deviceId)?.candidates ?? [];
    this.spendCallMeMaybe(deviceId);
    const targets = this.sessions.get(to);
    const event: SessionResponse = { callMeMaybe: { fromDeviceId: deviceId, candidates, spraySockets, primed } };
    for (const s of targets ?? []) this.deliver(s, event);
    const elsewhere = this.bus.connectedElsewhere(to);
    if (elsewhere) this.bus.publish([{ to, event }]);
    return { delivered: (targets?.size ?? 0) > 0 || elsewhere };
  }

  /** Replaces what the caller tells its party about its games (announcements.ts); the party is told. */
  announce(deviceId: string, req: AnnounceRequest): void {
    const a = checkAnnouncement(req.announcement);
    const mine = this.store.membership(deviceId);
    if (!mine) throw new ApiError(Status.FAILED_PRECONDITION, 'join a party first: announcements go to party members');
    if (!this.announcements.set(deviceId, a)) return;
    const event: SessionResponse = { announcement: { deviceId, announcement: a } };
    this.run(() => {
      for (const m of this.store.members(mine.partyId)) this.outbox.push({ to: m.deviceId, event });
    });
  }

  /** The party as its members see it, or undefined. */
  partyProto(partyId: string): Party | undefined {
    const p = this.store.party(partyId);
    if (!p) return undefined;
    return {
      id: p.id,
      name: p.name,
      hostDeviceId: p.hostDeviceId,
      networkCidr: p.networkCidr,
      members: this.store.members(partyId).map((m) => this.memberProto(m, p.hostDeviceId)),
      createdAt: new Date(p.createdAt),
    };
  }

  /** Stops timers; sessions that close afterwards change nothing. */
  close(): void {
    this.presence.close();
  }

  // ---- internals ----

  private run<T>(fn: () => T): T {
    const t0 = performance.now();
    let result: T;
    try {
      result = this.store.transaction(fn);
    } catch (err) {
      this.outbox = [];
      throw err;
    }
    this.flush();
    this.runMaxMs = Math.max(this.runMaxMs, performance.now() - t0);
    return result;
  }

  /** The longest operation (transaction and fan-out) since load-log.ts last reset it. */
  runMaxMs = 0;

  private flush(): void {
    const out = this.outbox;
    this.outbox = [];
    this.bus.publish(out.filter((o): o is BusEvent => !('run' in o)));
    for (const o of out) {
      if ('run' in o) o.run();
      else for (const s of this.sessions.get(o.to) ?? []) this.deliver(s, 'snapshot' in o ? this.snapshotFor(s) : o.event);
    }
  }

  /** Events another instance produced, for the sessions held here. */
  private deliverRemote(evs: readonly BusEvent[]): void {
    for (const o of evs) {
      // Announcements live in memory per instance: keep this one's book in step, so that the
      // snapshots it builds (a member reconnecting or joining here) carry them too.
      if (!('snapshot' in o)) {
        const { announcement: ann, memberLeft } = o.event;
        if (ann?.announcement) this.announcements.record(ann.deviceId, ann.announcement);
        if (memberLeft) this.announcements.forget(memberLeft.deviceId);
      }
      for (const s of this.sessions.get(o.to) ?? []) this.deliver(s, 'snapshot' in o ? this.snapshotFor(s) : o.event);
    }
  }

  /** Session events handed to streams so far (the fan-out a join storm causes). */
  delivered = 0;

  private deliver(s: Session, e: SessionResponse): void {
    this.delivered++;
    try {
      s.send(e);
    } catch (err) {
      this.log.warn('session event not delivered', { deviceId: s.deviceId, err: err instanceof Error ? err.message : String(err) });
    }
  }

  private snapshotFor(s: Session): SessionResponse {
    const m = this.store.membership(s.deviceId);
    const party = m ? this.partyProto(m.partyId) : undefined;
    const announcements = party ? this.announcements.of(party.members.map((x) => x.deviceId)) : [];
    return { snapshot: { party, selfDeviceId: s.deviceId, stunServers: [...s.stunServers], announcements } };
  }

  private memberProto(m: MemberView, hostId: string): Member {
    return {
      deviceId: m.deviceId,
      name: m.name,
      virtualIp: m.virtualIp,
      wireguardPublicKey: m.wgKey,
      discoPublicKey: m.discoKey,
      candidates: m.candidates,
      nat: m.nat,
      relayed: m.relayed,
      presence: this.presence.isAway(m.deviceId) ? Presence.PRESENCE_AWAY : Presence.PRESENCE_ONLINE,
      isHost: m.deviceId === hostId,
      joinedAt: new Date(m.joinedAt),
    };
  }

  private pool(cidr: string): Pool {
    let p = this.pools.get(cidr);
    if (!p) this.pools.set(cidr, (p = parsePool(cidr)));
    return p;
  }

  private addMember(partyId: string, deviceId: string): void {
    const party = this.store.party(partyId)!;
    const members = this.store.members(partyId);
    if (members.length >= this.maxMembers) throw new ApiError(Status.RESOURCE_EXHAUSTED, `the party is full (${this.maxMembers} members)`);
    const live = new Map(members.map((m) => [m.deviceId, m.virtualIp]));
    const ip = allocateAddress(this.pool(party.networkCidr), deviceId, live, this.store.allocations(partyId));
    this.store.setAllocation(partyId, deviceId, ip);
    this.store.insertMember({ partyId, deviceId, virtualIp: ip, joinedAt: this.clock.now() });
    const view = this.store.members(partyId).find((m) => m.deviceId === deviceId)!;
    const joined: SessionResponse = { memberJoined: this.memberProto(view, party.hostDeviceId) };
    for (const m of members) this.outbox.push({ to: m.deviceId, event: joined });
    this.outbox.push({ to: deviceId, snapshot: true });
    this.outbox.push({ run: () => this.presence.isConnected(deviceId) || this.presence.track(deviceId) });
  }

  private removeMember(deviceId: string, reason: MemberLeftReason, opts: { notifySelf: boolean; by?: string }): void {
    const m = this.store.membership(deviceId);
    if (!m) return;
    const party = this.store.party(m.partyId)!;
    this.store.deleteMember(deviceId);
    const rest = this.store.members(m.partyId);
    if (rest.length === 0) {
      this.store.deleteParty(m.partyId);
      this.outbox.push({ run: () => this.log.info('party ended', { partyId: m.partyId }) });
    } else {
      const left: SessionResponse = { memberLeft: { deviceId, reason } };
      for (const r of rest) this.outbox.push({ to: r.deviceId, event: left });
      if (party.hostDeviceId === deviceId) {
        // rest is oldest first: the longest-standing member becomes host.
        const host = rest[0]!;
        this.store.setPartyHost(m.partyId, host.deviceId);
        const updated: SessionResponse = { memberUpdated: this.memberProto(host, host.deviceId) };
        for (const r of rest) this.outbox.push({ to: r.deviceId, event: updated });
      }
    }
    if (reason === MemberLeftReason.MEMBER_LEFT_REASON_KICKED) this.outbox.push({ to: deviceId, event: { kicked: { partyId: m.partyId, byDeviceId: opts.by ?? '' } } });
    if (opts.notifySelf) this.outbox.push({ to: deviceId, snapshot: true });
    this.outbox.push({ run: () => this.presence.forget(deviceId) });
    this.announcements.forget(deviceId);
  }

  /** Queues member_updated for the device's whole party (itself included). */
  private queueMemberUpdated(deviceId: string): void {
    const m = this.store.membership(deviceId);
    if (!m) return;
    const party = this.store.party(m.partyId)!;
    const members = this.store.members(m.partyId);
    const view = members.find((x) => x.deviceId === deviceId);
    if (!view) return;
    const updated: SessionResponse = { memberUpdated: this.memberProto(view, party.hostDeviceId) };
    for (const x of members) this.outbox.push({ to: x.deviceId, event: updated });
  }

  private presenceChanged(deviceId: string): void {
    this.run(() => this.queueMemberUpdated(deviceId));
  }

  private dropped(deviceId: string): void {
    if (!this.store.membership(deviceId)) return;
    this.log.debug('member dropped: away too long', { deviceId });
    this.run(() => this.removeMember(deviceId, MemberLeftReason.MEMBER_LEFT_REASON_TIMED_OUT, { notifySelf: true }));
  }

  private rememberToken(deviceId: string, token: string): void {
    const key = tokenKey(token);
    const list = this.tokensByDevice.get(deviceId) ?? [];
    list.push(key);
    while (list.length > MAX_TOKENS_PER_DEVICE) this.tokens.delete(list.shift()!);
    this.tokensByDevice.set(deviceId, list);
    this.tokens.set(key, deviceId);
  }

  private spendCallMeMaybe(deviceId: string): void {
    const now = this.clock.now();
    const b = this.cmmBudget.get(deviceId) ?? { tokens: CMM_BURST, at: now };
    b.tokens = Math.min(CMM_BURST, b.tokens + ((now - b.at) / 1000) * CMM_PER_SECOND);
    b.at = now;
    if (b.tokens < 1) throw new ApiError(Status.RESOURCE_EXHAUSTED, `too many call-me-maybe messages: at most ${CMM_PER_SECOND} per second`);
    b.tokens -= 1;
    this.cmmBudget.set(deviceId, b);
  }
}
