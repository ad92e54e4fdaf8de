// Our place on a relay: one TURN allocation (coturn) that every relayed peer path goes through.
//
// The control server names the relays and mints credentials (fetchOffers). We measure each UDP
// relay with a STUN Binding from the public socket, take the fastest (keeping the current one
// unless another is clearly faster), and allocate over the public socket so that relayed traffic
// leaves from the same NAT mapping as everything else. When the relay did not answer the UDP
// measurement (1 s), TURN over TCP starts at once alongside UDP; otherwise after tcpAfterMs.
// Whichever allocates first is kept: a network that blocks UDP costs about a second, not the
// retransmission schedule (lab: join → first ping 1.7 s from a UDP-blocked site).
//
// Every peer path is relayed→relayed: we send from our allocation to the peer's relayed address,
// which the control plane publishes. That needs no knowledge of either side's NAT, and coturn
// relays between two of its own allocations (measured, STACK-NOTES).

import { systemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { RelayOffer } from '../controlclient/relays.js';
import { isIPv4 } from './addr.js';
import { isClearlyBetter } from './path.js';
import { TurnClient, type DatagramTransport, type TurnStats, type TurnTiming } from './turn/index.js';

export type { RelayOffer };

export interface RelayChoice {
  offer: RelayOffer;
  /** Measured STUN RTT over UDP, or null when UDP did not answer. */
  rttMs: number | null;
}

const key = (o: Pick<RelayOffer, 'host' | 'port'>): string => `${o.host}:${o.port}`;

/**
 * The relay to use: the lowest measured RTT over UDP; the current one is kept unless another is
 * clearly better. With no UDP answer at all, the first relay that takes TCP (UDP may be blocked).
 */
export function chooseRelay(offers: readonly RelayOffer[], rtts: ReadonlyMap<string, number | null>, current: string | null): RelayChoice | null {
  const measured = offers
    .map((offer) => ({ offer, rttMs: rtts.get(key(offer)) ?? null }))
    .filter((c): c is { offer: RelayOffer; rttMs: number } => c.rttMs !== null && c.offer.transports.includes('udp'))
    .sort((a, b) => a.rttMs - b.rttMs);
  const best = measured[0];
  if (best) {
    const cur = measured.find((c) => key(c.offer) === current);
    if (cur && cur !== best && !isClearlyBetter({ rttMs: best.rttMs, lan: false }, { rttMs: cur.rttMs, lan: false })) return cur;
    return best;
  }
  const kept = offers.find((o) => key(o) === current);
  if (kept) return { offer: kept, rttMs: null };
  const first = offers.find((o) => o.transports.includes('tcp')) ?? offers[0];
  return first ? { offer: first, rttMs: null } : null;
}

export interface RelayConnOptions {
  log: Logger;
  clock?: Clock;
  /** Relays with fresh credentials, from the control server (rejects when there is none to ask). */
  fetchOffers(): Promise<RelayOffer[]>;
  /** The helper's public UDP socket. */
  shared: DatagramTransport;
  /** RTT of a STUN Binding to "ip:port" over the public socket, or null. */
  measure(server: string): Promise<number | null>;
  onData(from: string, data: Buffer): void;
  /** Our relayed address or relay changed (or went away). */
  onChange(): void;
  turnTiming?: Partial<TurnTiming>;
  tcpAfterMs?: number;
  /** How often several relays are measured again (default 60 s). */
  reselectMs?: number;
}

type Transport = 'udp' | 'tcp';

/** One offered relay as the NAT report shows it: "udp:ip:port", its RTT (null: no answer), in use. */
export interface RelayLatency {
  relay: string;
  rttMs: number | null;
  inUse: boolean;
}

interface Active {
  client: TurnClient;
  offer: RelayOffer;
  transport: Transport;
}

const RETRY_MS = [1000, 2000, 5000, 10_000, 30_000, 60_000];
const NO_RELAYS_RETRY_MS = 300_000;
/** Credentials closer to expiry than this are not used for a new allocation. */
const CREDENTIAL_MARGIN_MS = 5_000;
const MEASURE_MS = 1000;

export class RelayConn {
  private readonly clock: Clock;
  private readonly log: Logger;
  private active: Active | null = null;
  /** Clients still allocating (UDP and TCP race): their datagrams must reach them too. */
  private readonly starting = new Set<TurnClient>();
  private peers: string[] = [];
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: () => void = () => {};
  private why: string | null = 'no relay yet';
  private lastOffers: RelayOffer[] = [];

  constructor(private readonly o: RelayConnOptions) {
    this.clock = o.clock ?? systemClock;
    this.log = o.log.child({ part: 'relay' });
  }

  /** Starts finding and keeping a relay in the background (idempotent). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Asks the control server again now (e.g. after reconnecting to it). */
  refresh(): void {
    this.wake();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake();
    const a = this.active;
    this.active = null;
    for (const c of this.starting) void c.close();
    this.starting.clear();
    if (a) await a.client.close().catch(() => undefined);
    await this.loop?.catch(() => undefined);
    this.why = 'no relay yet';
    this.o.onChange();
  }

  /**
   * Relay hosts the control server offered. A peer's relayed address must be on one of them: a
   * member could otherwise publish any address and have our allocation send to it.
   */
  relayHosts(): Set<string> {
    return new Set(this.lastOffers.map((x) => x.host));
  }

  /** Our relayed "ip:port" while allocated. */
  relayed(): string | null {
    return this.active?.client.relayed ?? null;
  }

  /** "udp:203.0.113.1:3478" for the relay in use, or null. */
  server(): string | null {
    const a = this.active;
    return a && a.client.relayed !== null ? `${a.transport}:${key(a.offer)}` : null;
  }

  /**
   * The round-trip time to every relay the control server offered last, measured now with a STUN
   * Binding over the public socket (bounded to 1 s; null: no answer, or TCP only). For the NAT
   * report; the relay choice keeps its own measurements.
   */
  async latencies(): Promise<RelayLatency[]> {
    return Promise.all(
      this.lastOffers.map(async (o) => ({
        relay: `${o.transports.includes('udp') ? 'udp' : 'tcp'}:${key(o)}`,
        rttMs: o.transports.includes('udp') ? await this.measureBounded(key(o)) : null,
        inUse: this.active !== null && key(this.active.offer) === key(o),
      })),
    );
  }

  /** Relayed traffic went unanswered: check our allocation now (a NAT rebinding orphans it silently). */
  checkNow(): void {
    this.active?.client.checkNow();
  }

  /** Why there is no relay to fall back on (for the path reason), or null when there is one. */
  unavailableReason(): string | null {
    return this.relayed() !== null ? null : this.why;
  }

  stats(): (TurnStats & { server: string }) | null {
    const a = this.active;
    return a ? { ...a.client.stats(), server: `${a.transport}:${key(a.offer)}` } : null;
  }

  /**
   * Exactly the party's relayed addresses may exchange data with us. Resolves once the relay
   * installed them (at once without an allocation); never rejects (a refusal is logged).
   */
  permit(peers: readonly string[]): Promise<void> {
    this.peers = [...new Set(peers)].sort();
    const a = this.active;
    if (!a) return Promise.resolve();
    return a.client.permit(this.peers).catch((err: unknown) => this.log.warn('relay refused a peer', { err: String(err) }));
  }

  send(peer: string, data: Buffer): boolean {
    return this.active?.client.send(peer, data) ?? false;
  }

  /** For the shared socket: true when the datagram was one of our relays' (consumed). */
  handleDatagram(buf: Buffer, from: string): boolean {
    if (this.active?.client.handleDatagram(buf, from)) return true;
    for (const c of this.starting) if (c.handleDatagram(buf, from)) return true;
    return false;
  }

  // --- the loop -----------------------------------------------------------------------------------

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const cancel = this.clock.setTimeout(done, ms);
      function done(): void {
        cancel();
        resolve();
      }
      this.wake = done;
    });
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (this.running) {
      let wait: number;
      try {
        wait = await this.step();
        failures = 0;
      } catch (err) {
        const delay = RETRY_MS[Math.min(failures, RETRY_MS.length - 1)] ?? 60_000;
        failures++;
        this.why = `the relay could not be reached (${err instanceof Error ? err.message : String(err)}); retrying`;
        this.log.warn('no relay allocation; retrying', { err: String(err), inMs: delay });
        this.o.onChange();
        wait = delay;
      }
      if (!this.running) return;
      await this.sleep(wait);
    }
  }

  /** One pass: get offers, pick a relay, allocate if it is not the one in use. Returns the next wait. */
  private async step(): Promise<number> {
    let offers: RelayOffer[];
    try {
      offers = (await this.o.fetchOffers()).filter((x) => isIPv4(x.host) && x.transports.length > 0);
    } catch (err) {
      throw new Error(`no relay credentials from the control server: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!this.running) return 0;
    this.lastOffers = offers;
    if (offers.length === 0) {
      this.why = 'the control server offers no relay';
      this.o.onChange();
      return NO_RELAYS_RETRY_MS;
    }
    const reselect = this.o.reselectMs ?? 60_000;
    const cur = this.active;
    // One relay and it works: nothing to measure or choose.
    if (cur && offers.length === 1 && key(offers[0] as RelayOffer) === key(cur.offer)) return reselect;
    const rtts = new Map<string, number | null>();
    await Promise.all(offers.filter((x) => x.transports.includes('udp')).map(async (x) => rtts.set(key(x), await this.measureBounded(key(x)))));
    if (!this.running) return 0;
    const choice = chooseRelay(offers, rtts, cur ? key(cur.offer) : null);
    if (!choice) return reselect;
    if (cur && key(choice.offer) === key(cur.offer)) return reselect;
    const next = await this.connect(choice.offer, rtts.get(key(choice.offer)) ?? null);
    if (!this.running) {
      await next.client.close();
      return 0;
    }
    this.active = next;
    this.why = null;
    if (cur) {
      this.log.info('relay switched', { from: key(cur.offer), to: key(next.offer) });
      void cur.client.close();
    }
    this.o.onChange();
    return reselect;
  }

  /** A relay that has not answered a STUN Binding within MEASURE_MS counts as unreachable over UDP. */
  private measureBounded(server: string): Promise<number | null> {
    return new Promise((resolve) => {
      const cancel = this.clock.setTimeout(() => resolve(null), MEASURE_MS);
      this.o.measure(server).then(
        (rtt) => {
          cancel();
          resolve(rtt);
        },
        () => {
          cancel();
          resolve(null);
        },
      );
    });
  }

  /**
   * UDP over the public socket first, TCP alongside after tcpAfterMs; at once when the relay did
   * not answer the UDP measurement (UDP is probably blocked: waiting would only delay the party).
   */
  private async connect(offer: RelayOffer, rttMs: number | null): Promise<Active> {
    const wantUdp = offer.transports.includes('udp');
    const wantTcp = offer.transports.includes('tcp');
    const attempts: Array<Promise<Active>> = [];
    const clients: TurnClient[] = [];
    const attempt = (t: Transport): Promise<Active> => {
      const client = this.makeClient(offer, t);
      clients.push(client);
      this.starting.add(client);
      return client.start().then(
        () => ({ client, offer, transport: t }),
        (err: unknown) => {
          this.starting.delete(client);
          throw err;
        },
      );
    };
    if (wantUdp) attempts.push(attempt('udp'));
    if (wantTcp) {
      const delay = wantUdp && rttMs !== null ? (this.o.tcpAfterMs ?? 1500) : 0;
      attempts.push(
        new Promise<void>((resolve) => this.clock.setTimeout(resolve, delay)).then(() => {
          if (clients.some((c) => c.relayed !== null) || !this.running) throw new Error('not needed');
          return attempt('tcp');
        }),
      );
    }
    let won: Active;
    try {
      won = await Promise.any(attempts);
    } catch (err) {
      const errs = err instanceof AggregateError ? err.errors.filter((e) => !(e instanceof Error && e.message === 'not needed')) : [err];
      throw new Error(errs.map((e) => (e instanceof Error ? e.message : String(e))).join('; ') || 'no transport to the relay');
    } finally {
      for (const c of clients) this.starting.delete(c);
    }
    for (const c of clients) if (c !== won.client) void c.close();
    this.log.info('relay in use', { relay: key(offer), transport: won.transport, relayed: won.client.relayed, rttMs });
    won.client.on('data', (from, data) => this.o.onData(from, data));
    won.client.on('lost', (reason) => {
      this.why = `the relay stopped answering (${reason}); reconnecting`;
      this.o.onChange();
    });
    won.client.on('reallocated', () => {
      this.why = null;
      this.o.onChange();
    });
    // Races lost by the other transport still resolve later; make sure they never linger.
    void Promise.allSettled(attempts).then(() => {
      for (const c of clients) if (c !== won.client) void c.close();
    });
    if (this.peers.length > 0) won.client.permit(this.peers).catch((err: unknown) => this.log.warn('relay refused a peer', { err: String(err) }));
    return won;
  }

  private makeClient(offer: RelayOffer, t: Transport): TurnClient {
    let first = true;
    return new TurnClient({
      server: { host: offer.host, port: offer.port, transport: t },
      ...(t === 'udp' ? { transport: this.o.shared } : {}),
      log: this.log,
      clock: this.clock,
      ...(this.o.turnTiming ? { timing: this.o.turnTiming } : {}),
      // Credentials count only at Allocate: every (re-)allocation gets fresh ones.
      getCredentials: async () => {
        let o = offer;
        if (!first || o.expiresAt - this.clock.now() < CREDENTIAL_MARGIN_MS) {
          const fresh = await this.o.fetchOffers();
          this.lastOffers = fresh;
          const same = fresh.find((x) => key(x) === key(offer));
          if (!same) throw new Error(`the control server no longer offers relay ${key(offer)}`);
          o = same;
        }
        first = false;
        return { username: o.username, password: o.password, ...(o.realm ? { realm: o.realm } : {}) };
      },
    });
  }
}
