// One peer as magicsock sees it: what the control plane said about it (MagicPeer), its direct path
// machine (path.ts) and relayed path (relaypath.ts), the endpoint its traffic uses now, the socket
// pinned to it by birthday probing, the handshake guard and hold queue for WireGuard's packets
// while no path answers, and the bookkeeping of the probes sent to it. State only: magicsock.ts
// and its helpers (peer-table.ts, disco-exchange.ts, birthday-runner.ts, relay-glue.ts,
// fastpath.ts) act on it.

import type { Endpoint } from './addr.js';
import { AttemptLimiter, type Spray } from './birthday.js';
import { validatePeerCandidates, type AddressPolicy } from './candidates.js';
import { isKey } from './disco.js';
import { HandshakeGuard } from './handshake.js';
import type { MagicPeer } from './magicsock-api.js';
import { leadsKeepalives, type PathMachine } from './path.js';
import { MAX_DETECTED_DELTA, ProbeBudget } from './portpredict.js';
import type { RelayPath, ViewState } from './relaypath.js';
import type { PublicSocket } from './socket.js';
import type { SpraySockets } from './spraysock.js';
import { HoldQueue } from './wgproxy.js';

export const PEER_ID_RE = /^[A-Za-z0-9._:@-]{1,128}$/;
/** Source addresses remembered per peer (a symmetric NAT can show us many over time). */
const MAX_KNOWN_ADDRS = 32;

/** A peer as the control plane describes it, made safe (null: unusable, e.g. our own disco key). */
export function validatePeer(p: MagicPeer, ownDiscoKey: string, policy: AddressPolicy): MagicPeer | null {
  if (!p || typeof p.id !== 'string' || !PEER_ID_RE.test(p.id)) return null;
  if (!isKey(p.discoPublicKey) || !isKey(p.wgPublicKey) || p.discoPublicKey === ownDiscoKey) return null;
  const hint = p.natHint;
  const natHint = hint === 'endpoint-independent' || hint === 'endpoint-dependent' || hint === 'unknown' ? hint : undefined;
  const relayed = Array.isArray(p.relayed) ? validatePeerCandidates(p.relayed, policy).slice(0, 4) : [];
  // A step we would never probe with (predictionWindow refuses it) is no step.
  const d = p.portDelta;
  const portDelta = typeof d === 'number' && Number.isInteger(d) && Math.abs(d) <= MAX_DETECTED_DELTA ? d : 0;
  return { id: p.id, discoPublicKey: p.discoPublicKey, wgPublicKey: p.wgPublicKey, candidates: validatePeerCandidates(p.candidates, policy), relayed, ...(natHint ? { natHint } : {}), portDelta };
}

/** A pair without WireGuard data for this long is idle (traffic-watch.ts reads at rest every ~4 s). */
export const IDLE_AFTER_MS = 30_000;

export class PeerEndpoint {
  // Set right after construction: both need the endpoint in their callbacks.
  machine!: PathMachine;
  relay!: RelayPath;
  /** The peer's relayed address our allocation sends to (null: no relayed path). */
  relayTarget: string | null = null;
  view: ViewState | null = null;
  readonly handshake: HandshakeGuard;
  readonly hold = new HoldQueue();
  proxyPort = 0;
  active: Endpoint | null = null;
  activeKey: string | null = null;
  /** The direct endpoint set aside while it is suspect and the relay carries the traffic, else null. */
  suspectEp: string | null = null;
  /** Addresses that sent authenticated disco as this peer. */
  readonly known = new Set<string>();
  /** When we last sent a disco packet to each candidate (priming decisions). */
  readonly lastSent = new Map<string, number>();
  /** The endpoint WireGuard currently has on the fast path, or null. */
  fastEp: string | null = null;
  /** The local port the fast path gives that endpoint's traffic when pinned, else null. */
  fastPort: number | null = null;
  /** The first probing window ended without a direct path (logged once, with the packets spent). */
  unreachableLogged = false;
  /** Predicted ports of a symmetric peer (its call-me-maybe + window): probed within `budget`. */
  predicted = new Set<string>();
  readonly budget = new ProbeBudget();
  /** Birthday probing: attempts, our open sockets (hard side), our probes (easy side). */
  bday = new AttemptLimiter();
  bdayTimer: () => void = () => {};
  spraySocks: SpraySockets | null = null;
  spray: { probes: Spray; txid: Buffer; cancel: () => void } | null = null;
  /** The endpoint a spray socket won for this peer: everything to it leaves from that socket. */
  pin: { key: string; sock: PublicSocket } | null = null;
  reconciling = false;
  removed = false;
  /** When WireGuard data last moved to or from the peer (noteTraffic); the add counts as traffic. */
  lastTrafficAt: number;

  constructor(
    public peer: MagicPeer,
    private readonly ownDiscoKey: string,
    readonly addedAt: number,
  ) {
    this.handshake = new HandshakeGuard(ownDiscoKey < peer.discoPublicKey);
    this.lastTrafficAt = addedAt;
  }

  /** No WireGuard data for IDLE_AFTER_MS: the direct path keeps itself alive at its idle pace (path.ts). */
  idle(now: number): boolean {
    return now - this.lastTrafficAt >= IDLE_AFTER_MS;
  }

  /** Whether our side keeps this pair's paths alive (path.ts, relaypath.ts); the peer answers. */
  leads(): boolean {
    return leadsKeepalives(this.ownDiscoKey, this.peer.discoPublicKey);
  }

  get id(): string {
    return this.peer.id;
  }

  /** The socket traffic to this endpoint of this peer leaves from: its pin, else the public one. */
  sockFor(key: string | null, publicSock: PublicSocket): PublicSocket {
    const pin = this.pin;
    return pin !== null && pin.key === key ? pin.sock : publicSock;
  }

  /**
   * Remembers that `addr` spoke for this peer (most recent last); returns an address forgotten to
   * make room (never the active one), or null.
   */
  learn(addr: string): string | null {
    let forgotten: string | null = null;
    if (this.known.has(addr)) this.known.delete(addr);
    else if (this.known.size >= MAX_KNOWN_ADDRS) {
      for (const old of this.known) {
        if (old === this.activeKey) continue;
        this.known.delete(old);
        forgotten = old;
        break;
      }
    }
    this.known.add(addr);
    return forgotten;
  }

  unpin(): void {
    const pin = this.pin;
    if (pin === null) return;
    this.pin = null;
    void pin.sock.close();
  }
}
