// What magicsock (magicsock.ts) offers and needs: its options, the peers it is given, what it
// reports, and its counters (shared by the modules that do its work: endpoint.ts, peer-table.ts,
// disco-exchange.ts, birthday-runner.ts, relay-glue.ts).

import type { NetworkInterfaceInfo } from 'node:os';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { NftRunner } from './nft-committer.js';
import type { PathTiming } from './path.js';
import type { ProbeStats } from './probe-stats.js';
import type { RelayOffer } from './relayconn.js';
import type { RelayPathTiming } from './relaypath.js';
import type { NatMapping } from './stun/client.js';
import type { TurnTiming } from './turn/index.js';

export interface MagicPeer {
  id: string;
  discoPublicKey: string;
  wgPublicKey: string;
  candidates: string[];
  natHint?: NatMapping;
  /** The peer's NAT port step per new destination (0 or absent: not sequential, or unknown). */
  portDelta?: number;
  /** The peer's TURN relayed addresses (from the control plane). */
  relayed?: string[];
}

export interface PeerProbes {
  direct: ProbeStats;
  relay: ProbeStats;
  /** Datagrams the helper forwarded for this peer (relayed and proxied direct paths). */
  proxied: { rx: number; tx: number };
  /** The endpoint nftables counts this peer's fast-path packets under, or null. */
  fastEndpoint: string | null;
}

export interface PingResult {
  seq: number;
  answered: boolean;
  rttMs: number | null;
  via: string | null;
  path: 'direct' | 'relayed' | 'none';
}

export interface MagicSockOptions {
  port: number;
  discoPrivateKey: string;
  log: Logger;
  /** Given by the control server; no other STUN server is ever contacted. */
  stunServers(): string[];
  /** WireGuard's own local UDP port. */
  wgPort(): number;
  setWgEndpoint(wgPublicKey: string, endpoint: string): Promise<void>;
  /**
   * spraySockets > 0: we just opened that many sockets towards the peer (birthday.ts). primed:
   * the peer's candidates we just sent to (control.proto CallMeMaybeRequest.primed).
   */
  sendCallMeMaybe(peerId: string, myCandidates: string[], spraySockets?: number, primed?: string[]): void;
  /** Linux only: direct peers bypass Node via nftables (needs CAP_NET_ADMIN and `nft`). */
  fastPath?: boolean;
  /** TTL of priming packets (0 disables priming); 2 leaves a home NAT and dies one hop later. */
  primingTtl?: number;
  /** Tests only: 127.0.0.0/8 candidates. */
  allowLoopbackCandidates?: boolean;
  clock?: Clock;
  /** Never a candidate, ours or a peer's. Default ['10.66.0.0/16'] (the virtual LAN). */
  excludeSubnets?: string[];
  /** Default 0.0.0.0; a specific address makes it the only local candidate. */
  bindAddress?: string;
  /** The helper's WireGuard interface: excluded from candidates, names the fast-path nft table. */
  wgInterface?: string;
  excludeInterfaces?: string[];
  /** STUN refresh period (default 60 s, 0 = only when localCandidates() is called). */
  stunRefreshMs?: number;
  timing?: Partial<PathTiming>;
  /** Tests: replaces os.networkInterfaces(). */
  networkInterfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  /** Tests: replaces running `nft -f -`. */
  nft?: NftRunner;
  /** STUN/TURN datagrams that are neither ours nor our relay's. */
  onUnclaimed?(kind: 'stun' | 'channeldata', msg: Buffer, from: string): void;
  /** Relays with fresh credentials from the control server; without it, no relayed paths. */
  fetchRelayOffers?(): Promise<RelayOffer[]>;
  relayTiming?: Partial<RelayPathTiming>;
  turnTiming?: Partial<TurnTiming>;
  /** Start TURN over TCP when UDP to the relay has not answered by then (default 1500 ms). */
  relayTcpAfterMs?: number;
}

export const COUNTERS = [
  'rx_wireguard', 'rx_disco', 'rx_stun', 'rx_channeldata', 'rx_unknown',
  'tx_wireguard', 'tx_disco',
  'disco_ping_rx', 'disco_pong_rx', 'disco_ping_tx', 'disco_pong_tx', 'disco_primes',
  'disco_unknown_key', 'disco_bad_auth', 'disco_malformed', 'disco_bad_source', 'disco_pong_unmatched',
  'wg_to_wireguard', 'wg_unknown_source', 'wg_no_proxy', 'wg_held', 'wg_hold_dropped', 'wg_flushed', 'wg_stale_dropped', 'wg_crossing_dropped', 'wg_crossing_yielded',
  /** Peer initiations delayed so that WireGuard does not drop them as a flood (handshake.ts INITIATION_SPACING_MS). */
  'wg_init_spaced',
  'cmm_sent', 'cmm_received', 'cmm_buffered', 'cmm_invalid', 'cmm_stale',
  'predict_cmm', 'predict_probes', 'predict_refused',
  'birthday_attempts', 'birthday_sockets', 'birthday_opened', 'birthday_probes', 'birthday_hits', 'birthday_refused', 'birthday_failed',
  /** Datagrams sent by direct path finding: pings, keepalives and their priming copies. */
  'path_datagrams',
  'stun_unclaimed', 'stun_queries', 'stun_unanswered',
  'tx_relay', 'rx_relay_wireguard', 'rx_relay_disco', 'relay_send_failed', 'relay_bad_source', 'relay_target_refused',
  'fastpath_on', 'fastpath_off', 'fastpath_errors',
  /** WireGuard pointed back at a fast-path peer after a handshake message roamed it to the proxy (wg-repoint.ts). */
  'fastpath_repoints',
  'wg_endpoint_errors', 'socket_errors', 'peers_rejected',
] as const;
export type CounterName = (typeof COUNTERS)[number];
export type MagicCounters = Record<CounterName | 'dropped_while_priming' | 'peers' | 'peers_direct' | 'peers_relayed' | 'peers_fastpath', number>;

export type Counters = Record<CounterName, number>;

export function newCounters(): Counters {
  return Object.fromEntries(COUNTERS.map((k) => [k, 0])) as Counters;
}

/** Packets spent on path finding so far (all peers), for the logs and the lab's figures. */
export function pathSent(c: Counters): { datagrams: number; predicted: number; refused: number } {
  return { datagrams: c.path_datagrams, predicted: c.predict_probes, refused: c.predict_refused };
}
