// Keeps the two WireGuards of a pair from crossing their first handshakes (pure; one per peer).
//
// WireGuard keeps one handshake per peer. When both sides initiate at once (one for its keepalive,
// one for the first packet of a game), each consumes the other's initiation, which replaces its
// own; both responses are then refused and nothing moves until WireGuard retries after 5 s. The
// lab showed it on most joins once held packets were flushed together (first ping ~5.3 s), and on
// 2 of 20 joins even without holding (both initiations on the wire before either arrived).
// Three rules, all in the datagrams we forward between WireGuard and the peer:
//   1. the peer's initiation reaches our WireGuard: any initiation of ours still held is stale
//      (our WireGuard replaced it) and must not be sent;
//   2. our WireGuard initiates within IN_FLIGHT_MS after we handed it the peer's initiation: drop
//      it, the peer completes the handshake it started and its first data confirms ours;
//   3. both initiations are in flight (ours left and nothing answered it, see ATTEMPT_MS): the
//      side with the lower disco key drops the peer's initiation and keeps its own, the other side
//      takes it. Both decide alike, so exactly one handshake completes.
// If a dropped or yielded-to packet is lost after all, WireGuard's own 5 s retry still applies.
//
// A crossing that gets through costs ~20 s, not 5: each side has just sent a response, and
// wireguard-go's retry (SendHandshakeInitiation) returns without sending, and without re-arming
// its timer, when any handshake message left less than 5 s before. Neither side tries again until
// the 20 s persistent keepalive (seen in a 16-player join storm: 7 of 120 pairs up ~20 s after
// their path, the log showing "retrying (try 2)" with no initiation after it).

export const WG_HANDSHAKE_INITIATION = 1;
export const WG_HANDSHAKE_RESPONSE = 2;
/**
 * How long an initiation counts as in flight: until answered or until WireGuard retries it
 * (REKEY_TIMEOUT, 5 s). Not a round trip: in a join storm the helpers' event loops run 1-2 s late,
 * so an initiation can reach the peer's WireGuard 2 s after it left, and a 1 s window let those
 * crossings through on both rules. A longer window costs nothing: rule 3's side answered nothing,
 * so its WireGuard's own 5 s retry goes out and the higher side takes it; and after answering
 * the peer (rule 2) WireGuard sends no initiation of its own for 5 s anyway, so one it sends
 * within 5 s of being handed the peer's was written before it read that one.
 */
export const IN_FLIGHT_MS = 5000;
/**
 * Rule 3: our handshake stays unanswered-and-retrying this long at most (REKEY_ATTEMPT_TIME).
 * WireGuard retries every 5 s until answered, and once a peer is on the fast path those retries
 * leave through nft, unseen here: judged by the last one we saw, the lower side took the peer's
 * initiation 5.08 s after it, while its unseen retry was in flight, and the pair lost 20 s.
 */
export const ATTEMPT_MS = 90_000;
/**
 * wireguard-go consumes at most one initiation per peer every 20 ms (HandshakeInitationRate) and
 * drops a closer one as a flood, unanswered. A late event loop hands two initiations over in one
 * go although they left the peer far apart: seen in a 16-player storm, where the peer flushed its
 * held initiation 5 s after writing it and WireGuard's retry followed 157 ms later; both reached
 * the other WireGuard 16 ms apart, it answered the stale one only, and the pair waited 5 s more.
 * So initiations from one peer reach our WireGuard at least this far apart (with a margin for
 * wireguard-go's own queue under load).
 */
export const INITIATION_SPACING_MS = 50;

export class HandshakeGuard {
  private peerInitAt = -Infinity;
  private ownInitAt = -Infinity;
  /** When the peer's last initiation reached (or is due to reach) our WireGuard. */
  private initDeliveredAt = -Infinity;

  /** lower: our disco public key sorts before the peer's (see rule 3). */
  constructor(private readonly lower: boolean) {}

  /** Our WireGuard sent this toward the peer: false when it must be dropped (rule 2). */
  outgoing(msg: Buffer, now: number): boolean {
    if (msg[0] !== WG_HANDSHAKE_INITIATION) return true;
    if (now - this.peerInitAt < IN_FLIGHT_MS) {
      return false;
    }
    this.ownInitAt = now;
    return true;
  }

  /**
   * An initiation that outgoing() passed did not go on the wire after all (the relay send failed,
   * or it went into the hold). Forget it: otherwise rule 3 would make the lower side drop the
   * peer's initiation to keep one that the peer never gets, and both handshakes are lost until
   * WireGuard's 5 s retry. A held one passes outgoing() again when it leaves (releaseHeld).
   */
  unsent(msg: Buffer): void {
    if (msg[0] === WG_HANDSHAKE_INITIATION) this.ownInitAt = -Infinity;
  }

  /**
   * The peer sent this to our WireGuard: 'deliver', 'deliver-discard-held' (rule 1) or 'drop' (rule 3).
   */
  incoming(msg: Buffer, now: number): 'deliver' | 'deliver-discard-held' | 'drop' {
    if (msg[0] === WG_HANDSHAKE_RESPONSE) {
      this.ownInitAt = -Infinity;
      return 'deliver';
    }
    if (msg[0] !== WG_HANDSHAKE_INITIATION) return 'deliver';
    if (this.lower && now - this.ownInitAt < ATTEMPT_MS) {
      return 'drop';
    }
    this.peerInitAt = now;
    this.ownInitAt = -Infinity;
    return 'deliver-discard-held';
  }

  /**
   * How long to wait before handing the peer's initiation (one incoming() delivers) to our
   * WireGuard: 0, or until INITIATION_SPACING_MS after the previous one.
   */
  spacing(now: number): number {
    const at = Math.max(now, this.initDeliveredAt + INITIATION_SPACING_MS);
    this.initDeliveredAt = at;
    return at - now;
  }
}

export const isHandshakeInitiation = (b: Buffer): boolean => b[0] === WG_HANDSHAKE_INITIATION;

/**
 * Held packets leave when a path answers, often seconds after WireGuard wrote them. The crossing
 * rules must see an initiation when it goes on the wire, not when it was held: both sides of a
 * join hold the initiation their keepalive started and flush it at about the same moment, and
 * judged by the hold time rule 3 never fires, both initiations are taken, and the pair waits for
 * WireGuard's 5 s retry. So each held initiation passes the guard again here (rule 2 may drop it).
 */
export function releaseHeld(guard: HandshakeGuard, held: readonly Buffer[], now: number): { send: Buffer[]; dropped: number } {
  const send: Buffer[] = [];
  let dropped = 0;
  // WireGuard keeps only its latest initiation: an older one held beside it (the path took longer
  // than its 5 s retry) is stale. Sent together, the peer answers the stale one (a response our
  // WireGuard refuses) and refuses the latest as a flood (< 20 ms apart): 5 s more to the next retry.
  let last = -1;
  held.forEach((m, i) => {
    if (m[0] === WG_HANDSHAKE_INITIATION) last = i;
  });
  held.forEach((m, i) => {
    if (m[0] === WG_HANDSHAKE_INITIATION && (i !== last || !guard.outgoing(m, now))) dropped++;
    else send.push(m);
  });
  return { send, dropped };
}
