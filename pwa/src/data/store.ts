// The one place live state lives. The Watch stream (live.ts) writes it; views read and subscribe.
import type { HelperStatus } from '../gen/lanrage/v1/helper.js';
import type { MetricsSample, PeerMetricsSample } from '../gen/lanrage/v1/metrics.js';
import type { LanStats } from '../gen/lanrage/v1/network.js';
import type { Party } from '../gen/lanrage/v1/party.js';
import type { Peer } from '../gen/lanrage/v1/peer.js';
import type { NatReport } from '../gen/lanrage/v1/network.js';
import { Ring } from './ring.js';

export type ConnectionState = 'connecting' | 'live' | 'helper-down';

/** About two minutes at the helper's one sample a second. */
export const SAMPLE_CAPACITY = 120;

export interface LiveState {
  readonly connection: ConnectionState;
  readonly status: HelperStatus | undefined;
  /** performance.now() when `status` arrived, to advance its uptime between snapshots. */
  readonly statusAt: number;
  readonly latest: MetricsSample | undefined;
  /** Oldest first, at most SAMPLE_CAPACITY. */
  readonly samples: readonly MetricsSample[];
  /** Streams opened since the page loaded (rotations included). */
  readonly streamsOpened: number;
  /** Why the last stream failed, for the helper-down view. */
  readonly lastError: string | undefined;
  /** False until the helper has said whether it is in a party (stream snapshot or a call). */
  readonly partyKnown: boolean;
  /** The current party; undefined when not in one. */
  readonly party: Party | undefined;
  /** The other members' connections, by device id. */
  readonly peers: ReadonlyMap<string, Peer>;
  /** LAN discovery state and counters; undefined until the helper sent them. */
  readonly lan: LanStats | undefined;
  /** The latest NAT report (netcheck); undefined until the helper has made one. */
  readonly natReport: NatReport | undefined;
  /** Each peer's traffic and path quality, the last SAMPLE_CAPACITY seconds, oldest first. */
  readonly peerSeries: ReadonlyMap<string, readonly PeerMetricsSample[]>;
}

type Listener = (state: LiveState) => void;

class LiveStore {
  private readonly ring = new Ring<MetricsSample>(SAMPLE_CAPACITY);
  private readonly listeners = new Set<Listener>();
  private current: LiveState = {
    connection: 'connecting',
    status: undefined,
    statusAt: 0,
    latest: undefined,
    samples: [],
    streamsOpened: 0,
    lastError: undefined,
    partyKnown: false,
    party: undefined,
    peers: new Map(),
    lan: undefined,
    natReport: undefined,
    peerSeries: new Map(),
  };

  get state(): LiveState {
    return this.current;
  }

  /** Calls `listener` now and on every change; returns the unsubscribe function. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    listener(this.current);
    return () => this.listeners.delete(listener);
  }

  setConnection(connection: ConnectionState, lastError?: string): void {
    if (connection === this.current.connection && lastError === this.current.lastError) return;
    this.update({ connection, lastError });
  }

  setStatus(status: HelperStatus): void {
    this.update({ status, statusAt: performance.now() });
  }

  streamOpened(): void {
    this.update({ streamsOpened: this.current.streamsOpened + 1 });
  }

  addSample(sample: MetricsSample): void {
    // A restarted helper or a resumed laptop can send a time before the last one; the charts
    // plot by time, so start over rather than draw backwards.
    const last = this.ring.last?.time?.getTime();
    const now = sample.time?.getTime();
    if (last !== undefined && now !== undefined && now < last) this.ring.clear();
    this.ring.push(sample);
    this.update({ latest: sample, samples: this.ring.toArray() });
  }

  /**
   * The party as the helper last described it. Peers of devices that are no longer members are
   * dropped here too: a `removed` event lost to a reconnect must not leave a ghost behind.
   */
  setParty(party: Party | undefined): void {
    const members = new Set(party?.members.map((m) => m.deviceId) ?? []);
    let peers = this.current.peers;
    if ([...peers.keys()].some((id) => !members.has(id))) {
      peers = new Map([...peers].filter(([id]) => members.has(id)));
    }
    this.update({ party, partyKnown: true, peers });
  }

  /** A report replaces an older one only: a late answer must not undo a newer stream event. */
  setNatReport(report: NatReport): void {
    const old = this.current.natReport?.time?.getTime() ?? -Infinity;
    if ((report.time?.getTime() ?? Infinity) < old) return;
    this.update({ natReport: report });
  }

  setPeer(peer: Peer): void {
    if (peer.deviceId === '') return;
    const peers = new Map(this.current.peers);
    peers.set(peer.deviceId, peer);
    this.update({ peers });
  }

  removePeer(deviceId: string): void {
    if (!this.current.peers.has(deviceId)) return;
    const peers = new Map(this.current.peers);
    peers.delete(deviceId);
    this.update({ peers });
  }

  /** One second of every peer's metrics; peers no longer reported are dropped. */
  setPeerMetrics(samples: readonly PeerMetricsSample[]): void {
    const next = new Map<string, readonly PeerMetricsSample[]>();
    for (const s of samples) {
      const old = this.current.peerSeries.get(s.deviceId) ?? [];
      const lastT = old.at(-1)?.time?.getTime() ?? -Infinity;
      const keep = (s.time?.getTime() ?? Infinity) < lastT ? [] : old.slice(-(SAMPLE_CAPACITY - 1));
      next.set(s.deviceId, [...keep, s]);
    }
    this.update({ peerSeries: next });
  }

  setLan(lan: LanStats): void {
    this.update({ lan });
  }

  private update(patch: Partial<LiveState>): void {
    this.current = { ...this.current, ...patch };
    for (const l of this.listeners) l(this.current);
  }
}

export const liveStore = new LiveStore();
export type { LiveStore };
