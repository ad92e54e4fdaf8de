// The helper's metrics in Prometheus' text format (prom-client). Nothing is sampled for a scrape:
// every gauge reads the latest per-peer sample, the magicsock and LAN relay counters and the
// process' own CPU and memory at collect time, so a scrape costs a few hundred microseconds.
// The per-peer figures are the latest round's: every second while a Watch stream shows metrics,
// but up to 4 s old (peer-metrics.ts REST_MAX_MS) while nobody watches and the party rests.

import { Counter, Gauge, Registry } from 'prom-client';
import { PathKind } from '../gen/lanrage/v1/peer.js';
import type { LanStats } from '../gen/lanrage/v1/network.js';
import type { PeerSample } from './peer-metrics.js';

export interface PrometheusSources {
  peers(): readonly PeerSample[];
  /** Magicsock's counters (relay use among them); null while not in a party. */
  magic(): Record<string, number> | null;
  lan(): LanStats;
  /** Game sessions: ended since the helper started (by game profile id), and playing now. */
  gameSessions?(): { ended: ReadonlyMap<string, number>; playing: readonly string[] };
}

const PATH_NAMES: Record<number, string> = {
  [PathKind.PATH_KIND_CONNECTING]: 'connecting',
  [PathKind.PATH_KIND_DIRECT]: 'direct',
  [PathKind.PATH_KIND_RELAYED]: 'relayed',
  [PathKind.PATH_KIND_UNREACHABLE]: 'unreachable',
};
const PATHS = ['connecting', 'direct', 'relayed', 'unreachable'];

/** Builds the registry; `metrics()` renders the text exposition. */
export function prometheusRegistry(src: PrometheusSources): Registry {
  const reg = new Registry();
  const peerLabels = ['peer', 'name'] as const;
  const perPeer = (name: string, help: string, value: (s: PeerSample) => number, type: 'gauge' | 'counter' = 'gauge'): void => {
    const collect = function (this: Gauge<'peer' | 'name'> | Counter<'peer' | 'name'>): void {
      this.reset();
      for (const s of src.peers()) {
        const labels = { peer: s.deviceId, name: s.name };
        if (this instanceof Gauge) this.set(labels, value(s));
        else this.inc(labels, value(s));
      }
    };
    if (type === 'gauge') new Gauge({ name, help, labelNames: peerLabels, registers: [reg], collect });
    else new Counter({ name, help, labelNames: peerLabels, registers: [reg], collect });
  };

  new Gauge({
    name: 'lanrage_peer_path',
    help: 'The path to each peer: 1 for the current kind (direct, relayed, connecting, unreachable), 0 for the others.',
    labelNames: ['peer', 'name', 'path', 'fast_path'],
    registers: [reg],
    collect() {
      this.reset();
      for (const s of src.peers()) {
        const cur = PATH_NAMES[s.path] ?? 'connecting';
        for (const p of PATHS) this.set({ peer: s.deviceId, name: s.name, path: p, fast_path: String(s.fastPath && p === 'direct') }, p === cur ? 1 : 0);
      }
    },
  });
  perPeer('lanrage_peer_rtt_seconds', 'Lowest of the last ten disco probe round trips on the path in use (0 when unknown).', (s) => s.rttMs / 1000);
  perPeer('lanrage_peer_jitter_seconds', 'Mean absolute difference between consecutive round trips.', (s) => s.jitterMs / 1000);
  perPeer('lanrage_peer_loss_ratio', 'Share of keepalive probes unanswered over the last minute (0-1).', (s) => s.lossRatio);
  perPeer('lanrage_peer_quality', 'Path quality score 0-100 (helper/metrics/quality.ts).', (s) => s.quality);
  perPeer('lanrage_peer_receive_bytes_total', 'WireGuard bytes received from the peer.', (s) => s.rxBytes, 'counter');
  perPeer('lanrage_peer_transmit_bytes_total', 'WireGuard bytes sent to the peer.', (s) => s.txBytes, 'counter');
  perPeer('lanrage_peer_receive_packets_total', 'Packets received from the peer (fast-path nftables counters plus forwarded).', (s) => s.rxPackets, 'counter');
  perPeer('lanrage_peer_transmit_packets_total', 'Packets sent to the peer (fast-path nftables counters plus forwarded).', (s) => s.txPackets, 'counter');

  new Gauge({
    name: 'lanrage_relay_peers',
    help: 'Peers whose traffic goes through the TURN relay now.',
    registers: [reg],
    collect() {
      this.set(src.peers().filter((s) => s.path === PathKind.PATH_KIND_RELAYED).length);
    },
  });
  new Counter({
    name: 'lanrage_relay_datagrams_total',
    help: 'Datagrams through the TURN relay, by direction and kind.',
    labelNames: ['direction', 'kind'],
    registers: [reg],
    collect() {
      this.reset();
      const m = src.magic();
      if (!m) return;
      this.inc({ direction: 'tx', kind: 'all' }, m.tx_relay ?? 0);
      this.inc({ direction: 'rx', kind: 'wireguard' }, m.rx_relay_wireguard ?? 0);
      this.inc({ direction: 'rx', kind: 'disco' }, m.rx_relay_disco ?? 0);
    },
  });
  const LAN_COUNTERS = ['captured', 'forwarded', 'received', 'injected', 'droppedDuplicate', 'droppedRateLimited', 'droppedInvalid', 'droppedLoop', 'droppedPolicy', 'droppedNoListener', 'errors'] as const;
  new Counter({
    name: 'lanrage_lan_datagrams_total',
    help: 'LAN discovery relay (broadcasts and multicasts carried across the party), by counter.',
    labelNames: ['counter'],
    registers: [reg],
    collect() {
      this.reset();
      const l = src.lan();
      for (const k of LAN_COUNTERS) this.inc({ counter: k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) }, Number(l[k] ?? 0));
    },
  });
  new Gauge({
    name: 'lanrage_lan_relay_enabled',
    help: '1 while the LAN discovery relay runs.',
    registers: [reg],
    collect() {
      this.set(src.lan().enabled ? 1 : 0);
    },
  });
  new Counter({
    name: 'lanrage_game_sessions_total',
    help: 'Game sessions played here that ended (since the helper started), by game profile id.',
    labelNames: ['game'],
    registers: [reg],
    collect() {
      this.reset();
      for (const [game, n] of src.gameSessions?.().ended ?? []) this.inc({ game }, n);
    },
  });
  new Gauge({
    name: 'lanrage_game_playing',
    help: '1 for each game being played here now (a session is open), by game profile id.',
    labelNames: ['game'],
    registers: [reg],
    collect() {
      this.reset();
      for (const game of src.gameSessions?.().playing ?? []) this.set({ game }, 1);
    },
  });
  new Counter({
    name: 'lanrage_helper_cpu_seconds_total',
    help: 'CPU time (user + system) the helper process used.',
    registers: [reg],
    collect() {
      this.reset();
      const u = process.cpuUsage();
      this.inc((u.user + u.system) / 1e6);
    },
  });
  new Gauge({
    name: 'lanrage_helper_resident_memory_bytes',
    help: 'Resident memory of the helper process.',
    registers: [reg],
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  return reg;
}
