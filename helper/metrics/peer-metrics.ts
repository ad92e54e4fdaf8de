// Per-peer metrics: once a second while in a party, one WireGuard read (UAPI get: every peer's
// bytes and handshake in one round trip) plus the disco probes' records turn into a sample per
// peer: byte and packet rates, RTT, jitter, loss and a quality score. Packets on the fast path
// never reach Node, so their counts come from nftables' per-peer counters, read seldom (an `nft`
// process costs ~30 ms of CPU here): every 10 s while somebody watches, every 60 s otherwise, and
// only when the fast-path peers' WireGuard bytes moved since the last read; while nobody watches,
// a trickle (keepalives, a handshake: under NFT_REST_TRICKLE_BYTES) waits for more, at most
// NFT_REST_MAX_MS. The counters are cumulative, so a later read loses no packet.
// Path changes are recorded as they happen. The I/O sits behind PeerMetricsSource.
//
// While nobody watches (no Watch stream with metrics holds watch()) and the party rests (no
// peer's WireGuard bytes moved beyond keepalives, no path or peer changed), the round backs off
// from every second to every 2, then 4 s (REST_MAX_MS): at rest it was the largest steady item
// of an idle helper. The history keeps 1 s rows, so a round after a longer gap hands over one
// sample per skipped second too (the rates averaged over the gap) and the graphs stay
// continuous. Any traffic, a path change or a watcher brings the 1 s round back at once. What
// reads latest() outside a Watch stream (the Prometheus endpoint) may then see figures up to
// REST_MAX_MS old.

import type { Logger } from '../core/log.js';
import { PathKind } from '../gen/lanrage/v1/peer.js';
import type { FastPathCounters } from '../net/fastpath.js';
import type { PeerProbes } from '../net/magicsock.js';
import { counterDelta, jitterOf, LossWindow, pathRtt, qualityScore } from './quality.js';

export interface PeerMetricsInput {
  deviceId: string;
  name: string;
  path: PathKind;
  fastPath: boolean;
  /** WireGuard's cumulative counters (they include fast-path traffic: WireGuard carries it all). */
  rxBytes: number;
  txBytes: number;
  probes: PeerProbes | null;
}

export interface PeerMetricsSource {
  inputs(): Promise<PeerMetricsInput[]>;
  fastPathCounters(): Promise<Map<string, FastPathCounters>>;
  /** Somebody watches (true) or nobody does any more (false): probe RTTs more often meanwhile. */
  liveProbing?(on: boolean): void;
}

export interface PeerSample {
  atMs: number;
  deviceId: string;
  name: string;
  path: PathKind;
  fastPath: boolean;
  rttMs: number;
  jitterMs: number;
  lossRatio: number;
  rxBps: number;
  txBps: number;
  rxPps: number;
  txPps: number;
  quality: number;
  rxBytes: number;
  txBytes: number;
  rxPackets: number;
  txPackets: number;
}

export interface PathChangeRecord {
  atMs: number;
  deviceId: string;
  name: string;
  from: PathKind;
  to: PathKind;
  reason: string;
  endpoint: string;
}

interface PeerAcc {
  wgRx?: number;
  wgTx?: number;
  proxRx?: number;
  proxTx?: number;
  nftRx?: number;
  nftTx?: number;
  /** Packets per second the last nftables read measured, held until the next read. */
  nftRxPps: number;
  nftTxPps: number;
  rxPackets: number;
  txPackets: number;
  rxBytes: number;
  txBytes: number;
  loss: LossWindow;
  path?: PathKind;
  /** The probe records and their answer count the cached RTT and jitter were computed from. */
  rttOf?: PeerProbes['direct'];
  rttAnswered: number;
  rtt: number | null;
  jitter: number;
}

/** The longest wait between two rounds while nobody watches and the party rests. */
export const REST_MAX_MS = 4000;
/** WireGuard bytes per peer in one round that still count as rest (keepalives, a handshake). */
export const REST_ROUND_BYTES = 512;

/** WireGuard bytes on the fast path that do not make an unwatched helper run `nft` (keepalives, handshakes). */
export const NFT_REST_TRICKLE_BYTES = 4096;
/** An unwatched helper reads the fast path's counters at least this often while bytes trickle. */
export const NFT_REST_MAX_MS = 10 * 60_000;

export interface PeerMetricsOptions {
  source: PeerMetricsSource;
  log: Logger;
  onSamples(samples: PeerSample[]): void;
  intervalMs?: number;
  nftWatchedMs?: number;
  nftIdleMs?: number;
  now?: () => number;
}

export class PeerMetrics {
  private readonly acc = new Map<string, PeerAcc>();
  private latestSamples: PeerSample[] = [];
  private timer: NodeJS.Timeout | null = null;
  private lastTick = 0;
  /** The wait before the next round: intervalMs, doubling up to REST_MAX_MS while unwatched at rest. */
  private waitMs: number;

  private lastNft = 0;
  /** The fast-path peers' WireGuard byte counters at the last nftables read, and what it read. */
  private nftWg: Map<string, { rx: number; tx: number }> | null = null;
  private nftLast: Map<string, FastPathCounters> | null = null;
  private nftReadAt = 0;
  private watchers = 0;
  private running = false;
  private busy = false;
  private readonly now: () => number;
  private lastRoundAt = 0;
  /** The wait chosen after the last round (a watcher may cut it short; its seconds are still filled). */
  private restWaitMs = 0;

  constructor(private readonly o: PeerMetricsOptions) {
    this.now = o.now ?? Date.now;
    this.waitMs = o.intervalMs ?? 1000;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(this.waitMs);
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The wait before the next round (for tests and logs). */
  intervalMs(): number {
    return this.waitMs;
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    const timer = setTimeout(() => {
      void this.tick().finally(() => {
        if (this.timer === timer && this.running) this.schedule(this.waitMs);
      });
    }, ms);
    timer.unref();
    this.timer = timer;
  }

  /** Somebody watches live: read the fast path's counters more often. Returns the release. */
  watch(): () => void {
    this.watchers++;
    if (this.watchers === 1) {
      this.o.source.liveProbing?.(true);
      // Back to 1 s rounds now, not after a rest wait of up to 4 s.
      this.waitMs = this.o.intervalMs ?? 1000;
      if (this.running) {
        this.schedule(this.waitMs);
        void this.tick();
      }
    }
    let released = false;
    return () => {
      if (!released) {
        this.watchers--;
        if (this.watchers === 0) this.o.source.liveProbing?.(false);
      }
      released = true;
    };
  }

  /** Somebody watches live (a Watch stream with metrics holds watch()). */
  watched(): boolean {
    return this.watchers > 0;
  }

  latest(): readonly PeerSample[] {
    return this.latestSamples;
  }

  totals(deviceId: string): { rxPackets: number; txPackets: number } | undefined {
    const a = this.acc.get(deviceId);
    return a && { rxPackets: a.rxPackets, txPackets: a.txPackets };
  }

  /** One round: exported for tests, which drive it without timers. */
  async tick(): Promise<PeerSample[]> {
    if (this.busy) return this.latestSamples;
    this.busy = true;
    try {
      const inputs = await this.o.source.inputs();
      const now = this.now();
      const dt = this.lastTick > 0 ? (now - this.lastTick) / 1000 : 0;
      this.lastTick = now;
      const nftEvery = this.watchers > 0 ? (this.o.nftWatchedMs ?? 10_000) : (this.o.nftIdleMs ?? 60_000);
      const anyFast = inputs.some((i) => i.fastPath);
      let nft: Map<string, FastPathCounters> | null = null;
      let nftDt = 0;
      if (anyFast && now - this.lastNft >= nftEvery) {
        // The nftables counters count WireGuard's packets only, so while no fast-path peer's
        // WireGuard bytes moved they did not move either: the last read stands (an `nft` process
        // a minute was the second largest item in an idle helper's profile).
        const moved = this.fastBytesMoved(inputs);
        const stands = this.nftLast !== null && (moved === 0 || (this.watchers === 0 && moved < NFT_REST_TRICKLE_BYTES && now - this.nftReadAt < NFT_REST_MAX_MS));
        if (stands) {
          nft = this.nftLast;
        } else {
          nft = await this.o.source.fastPathCounters().catch((err: unknown) => {
            this.o.log.debug('fast-path counters unreadable', { err: String(err) });
            return null;
          });
          this.nftLast = nft;
          this.nftReadAt = now;
          this.nftWg = nft !== null ? new Map(inputs.filter((i) => i.fastPath).map((i) => [i.deviceId, { rx: i.rxBytes, tx: i.txBytes }])) : null;
        }
        nftDt = this.lastNft > 0 ? (now - this.lastNft) / 1000 : 0;
        this.lastNft = now;
      }
      let rest = inputs.length === this.latestSamples.length;
      for (const i of inputs) {
        const a = this.acc.get(i.deviceId);
        if (!a || a.path !== i.path || a.wgRx === undefined || a.wgTx === undefined || Math.abs(i.rxBytes - a.wgRx) + Math.abs(i.txBytes - a.wgTx) > REST_ROUND_BYTES) rest = false;
      }
      const seen = new Set<string>();
      const samples = inputs.map((i) => {
        seen.add(i.deviceId);
        return this.sample(i, now, dt, nft, nftDt);
      });
      for (const id of [...this.acc.keys()]) if (!seen.has(id)) this.acc.delete(id);
      this.latestSamples = samples;
      if (samples.length > 0) {
        // One sample per second the last wait skipped, so the 1 s history has no holes.
        // Only seconds a rest wait skipped: a late round or a test's jump is not filled in.
        const gaps = this.lastRoundAt > 0 ? Math.min(Math.round(this.restWaitMs / 1000), Math.round((now - this.lastRoundAt) / 1000)) - 1 : 0;
        for (let k = gaps; k >= 1; k--) this.o.onSamples(samples.map((x) => ({ ...x, atMs: now - k * 1000 })));
        this.o.onSamples(samples);
      }
      this.lastRoundAt = now;
      const base = this.o.intervalMs ?? 1000;
      this.waitMs = this.watchers === 0 && rest ? Math.min(REST_MAX_MS, Math.max(base, this.waitMs * 2)) : base;
      this.restWaitMs = this.waitMs;
      return samples;
    } catch (err) {
      this.o.log.debug('peer metrics round failed', { err: String(err) });
      return this.latestSamples;
    } finally {
      this.busy = false;
    }
  }

  /** WireGuard bytes the fast-path peers moved since the last nftables read (Infinity: a peer new to the fast path, or no read yet). */
  private fastBytesMoved(inputs: readonly PeerMetricsInput[]): number {
    let moved = 0;
    for (const i of inputs) {
      if (!i.fastPath) continue;
      const at = this.nftWg?.get(i.deviceId);
      if (!at || i.rxBytes < at.rx || i.txBytes < at.tx) return Infinity;
      moved += i.rxBytes - at.rx + (i.txBytes - at.tx);
    }
    return moved;
  }

  private sample(i: PeerMetricsInput, now: number, dt: number, nft: Map<string, FastPathCounters> | null, nftDt: number): PeerSample {
    let a = this.acc.get(i.deviceId);
    if (!a) {
      a = { nftRxPps: 0, nftTxPps: 0, rxPackets: 0, txPackets: 0, rxBytes: 0, txBytes: 0, loss: new LossWindow(), rttAnswered: -1, rtt: null, jitter: 0 };
      this.acc.set(i.deviceId, a);
    }
    const dRx = counterDelta(a.wgRx, i.rxBytes);
    const dTx = counterDelta(a.wgTx, i.txBytes);
    a.wgRx = i.rxBytes;
    a.wgTx = i.txBytes;
    a.rxBytes += dRx;
    a.txBytes += dTx;
    const prox = i.probes?.proxied ?? { rx: 0, tx: 0 };
    const dpRx = counterDelta(a.proxRx, prox.rx);
    const dpTx = counterDelta(a.proxTx, prox.tx);
    a.proxRx = prox.rx;
    a.proxTx = prox.tx;
    a.rxPackets += dpRx;
    a.txPackets += dpTx;
    if (!i.fastPath) {
      a.nftRxPps = 0;
      a.nftTxPps = 0;
    }
    if (nft) {
      const c = nft.get(i.deviceId);
      if (c) {
        const nRx = counterDelta(a.nftRx ?? 0, c.rxPackets);
        const nTx = counterDelta(a.nftTx ?? 0, c.txPackets);
        a.rxPackets += nRx;
        a.txPackets += nTx;
        a.nftRxPps = nftDt > 0 ? nRx / nftDt : 0;
        a.nftTxPps = nftDt > 0 ? nTx / nftDt : 0;
        a.nftRx = c.rxPackets; // table counters start at 0 when the peer enters the fast path
        a.nftTx = c.txPackets;
      } else {
        a.nftRx = undefined;
        a.nftTx = undefined;
      }
    }
    a.path = i.path;
    const probes = i.path === PathKind.PATH_KIND_RELAYED ? i.probes?.relay : i.path === PathKind.PATH_KIND_DIRECT ? i.probes?.direct : undefined;
    // RTT and jitter change only with a new pong (one per 5-30 s at rest): computed then only.
    if (probes !== a.rttOf || (probes?.answeredCount ?? -1) !== a.rttAnswered) {
      const rtts = probes?.recent(10) ?? [];
      a.rtt = probes ? pathRtt(rtts) : null;
      a.jitter = probes ? jitterOf(rtts) : 0;
      a.rttOf = probes;
      a.rttAnswered = probes?.answeredCount ?? -1;
    }
    const rtt = a.rtt;
    const jitter = a.jitter;
    const sent = (i.probes?.direct.sentCount ?? 0) + (i.probes?.relay.sentCount ?? 0);
    const lost = (i.probes?.direct.lostCount ?? 0) + (i.probes?.relay.lostCount ?? 0);
    const loss = a.loss.add(now, sent, lost);
    const up = i.path === PathKind.PATH_KIND_DIRECT || i.path === PathKind.PATH_KIND_RELAYED;
    return {
      atMs: now,
      deviceId: i.deviceId,
      name: i.name,
      path: i.path,
      fastPath: i.fastPath,
      rttMs: up && rtt !== null ? rtt : 0,
      jitterMs: up ? jitter : 0,
      lossRatio: loss,
      rxBps: dt > 0 ? dRx / dt : 0,
      txBps: dt > 0 ? dTx / dt : 0,
      // nftables is read every 10-60 s; its rate stands for the seconds in between, except those in
      // which WireGuard moved no bytes at all (then no packet went either way).
      rxPps: (dt > 0 ? dpRx / dt : 0) + (dRx > 0 ? a.nftRxPps : 0),
      txPps: (dt > 0 ? dpTx / dt : 0) + (dTx > 0 ? a.nftTxPps : 0),
      quality: up ? qualityScore(rtt, jitter, loss) : 0,
      rxBytes: a.rxBytes,
      txBytes: a.txBytes,
      rxPackets: a.rxPackets,
      txPackets: a.txPackets,
    };
  }
}

/** Path changes worth recording: another kind of path, or the same kind over another endpoint. */
export class PathChanges {
  private readonly last = new Map<string, { kind: PathKind; endpoint: string }>();

  constructor(private readonly onChange: (c: PathChangeRecord) => void, private readonly now: () => number = Date.now) {}

  observe(deviceId: string, name: string, kind: PathKind, endpoint: string, reason: string): void {
    const prev = this.last.get(deviceId);
    if (prev && prev.kind === kind && prev.endpoint === endpoint) return;
    this.last.set(deviceId, { kind, endpoint });
    this.onChange({ atMs: this.now(), deviceId, name, from: prev?.kind ?? PathKind.PATH_KIND_UNSPECIFIED, to: kind, reason, endpoint });
  }

  forget(deviceId: string): void {
    this.last.delete(deviceId);
  }
}
