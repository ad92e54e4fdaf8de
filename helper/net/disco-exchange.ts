// Disco with the peers magicsock knows (disco.ts seals and opens): their pings answered, their
// pongs fed to the path machines (path.ts), our path machines' pings sent (primed at low TTL first,
// so that our NAT mapping exists before the peer's packets arrive), call-me-maybe both ways
// (through the control plane), and the user's pings (`lanrage ping`). Everything it sends or looks
// up goes through DiscoExchangeIo, so that it runs in unit tests with fake sockets and a clock.
//
// Call-me-maybe from a peer behind a sequential symmetric NAT (portpredict.ts): the endpoints it
// names beyond its published candidates are its predicted ports towards us; a window around each
// is probed within the peer's ProbeBudget. A call from a peer we do not know yet is kept for a while
// (the control plane may tell the caller about us before it tells us about the caller).

import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { parseEndpoint, type Endpoint } from './addr.js';
import type { BirthdayRunner } from './birthday-runner.js';
import { isCandidateAllowed, validatePeerCandidates, type AddressPolicy } from './candidates.js';
import type { DiscoBox, DiscoMessage } from './disco.js';
import { PEER_ID_RE, type PeerEndpoint } from './endpoint.js';
import type { LocalView } from './local-view.js';
import type { Counters, MagicSockOptions, PingResult } from './magicsock-api.js';
import { MAX_PREDICTED_PER_PEER, predictionWindow } from './portpredict.js';
import type { PublicSocket } from './socket.js';

/** A mapping opened by our last packet is assumed gone after this much silence towards a candidate. */
export const REPRIME_AFTER_MS = 20_000;
/** A call-me-maybe from a peer we do not know yet is kept this long, for this many peers. */
export const PENDING_CMM_MS = 30_000;
export const MAX_PENDING_CMM = 256;
/** The control server takes at most 16 candidates in a list (control/validate.ts). */
const MAX_PRIMED_NAMED = 16;

export type DiscoSocket = Pick<PublicSocket, 'send' | 'prime'>;

export interface DiscoExchangeIo {
  clock: Clock;
  log: Logger;
  c: Counters;
  policy: AddressPolicy;
  box: Pick<DiscoBox, 'seal' | 'open'>;
  /** TTL of priming packets (0: no priming). */
  primingTtl: number;
  closed(): boolean;
  peer(id: string): PeerEndpoint | undefined;
  peerByDisco(discoKey: string): PeerEndpoint | undefined;
  /** WireGuard datagrams from this address now belong to this peer. */
  learnAddress(rec: PeerEndpoint, addr: string): void;
  /** The socket traffic to this endpoint of the peer leaves from (its pin, else the public one). */
  sockFor(rec: PeerEndpoint, key: string | null): DiscoSocket;
  /** Resolves once the priming packets queued so far have left. */
  whenPrimed(): Promise<void>;
  self: Pick<LocalView, 'isLan' | 'predictedTowards' | 'publicAddress' | 'candidates'>;
  birthday: Pick<BirthdayRunner, 'answered' | 'startSpray'>;
  sendCallMeMaybe: MagicSockOptions['sendCallMeMaybe'];
}

/** Our call-me-maybe's candidate list: predictions first (the peer keeps at most MAX_PEER_CANDIDATES), our public address first of all when the peer is to probe our sockets (it probes the first IP it finds). */
export function callMeMaybeList(predicted: readonly string[], candidates: readonly string[], publicAddress: string | null): string[] {
  const first = publicAddress !== null ? [publicAddress, ...predicted.filter((c) => c !== publicAddress)] : [...predicted];
  return [...first, ...candidates.filter((c) => !first.includes(c))];
}

/** The ports to probe around a sequential NAT's predicted endpoints, at most MAX_PREDICTED_PER_PEER. */
export function predictedWindow(told: readonly string[], delta: number): string[] {
  const win: string[] = [];
  for (const c of told) {
    const ep = parseEndpoint(c);
    if (!ep) continue;
    for (const w of predictionWindow(ep.ip, ep.port, delta)) if (!win.includes(w)) win.push(w);
  }
  return win.slice(0, MAX_PREDICTED_PER_PEER);
}

/** Calls from peers not known yet: newest kept, oldest evicted past `max`, stale after `ttlMs`. */
/** A peer's call-me-maybe: its candidates, and whether it punched towards where we are now. */
export interface KeptCall {
  candidates: string[];
  opensGate: boolean;
}

/**
 * Whether a call-me-maybe shows that the peer opened its NAT towards us as we are now: it names
 * which of our candidates it sent to (`primed`), and one of them must be among our current ones.
 * A call sent while the peer still knew our old port (we restarted and it had not heard yet) says
 * nothing about the new one; taking it as a punch sends our full-TTL packets to its router first,
 * whose unreplied conntrack entry then moves its mapping away: both sides send for ever and
 * nothing arrives (CI, helper restart while the control server was down). An empty list comes
 * from callers that do not say: counted as a punch, as before.
 */
export function callOpensGate(primed: readonly string[], ours: readonly string[]): boolean {
  return primed.length === 0 || primed.some((ep) => ours.includes(ep));
}

export class PendingCalls {
  private readonly calls = new Map<string, { call: KeptCall; at: number }>();

  constructor(
    private readonly max = MAX_PENDING_CMM,
    private readonly ttlMs = PENDING_CMM_MS,
  ) {}

  get size(): number {
    return this.calls.size;
  }

  put(peerId: string, call: KeptCall, now: number): void {
    if (this.calls.size >= this.max) {
      const oldest = this.calls.keys().next().value;
      if (oldest !== undefined) this.calls.delete(oldest);
    }
    this.calls.delete(peerId);
    this.calls.set(peerId, { call, at: now });
  }

  /** The peer's kept call (removed), or null when there is none or it is stale. */
  take(peerId: string, now: number): KeptCall | null {
    const p = this.calls.get(peerId);
    if (!p) return null;
    this.calls.delete(peerId);
    return now - p.at < this.ttlMs ? p.call : null;
  }
}

export class DiscoExchange {
  private readonly pending = new PendingCalls();
  private readonly userPings = new Map<string, (rtt: number, via: string) => void>();

  constructor(private readonly io: DiscoExchangeIo) {}

  seal(rec: PeerEndpoint, m: DiscoMessage): Buffer {
    return this.io.box.seal(rec.peer.discoPublicKey, m);
  }

  /** An authenticated disco message from a known peer, or null (counted). */
  open(b: Buffer): { rec: PeerEndpoint; message: DiscoMessage } | null {
    const c = this.io.c;
    const r = this.io.box.open(b);
    if (!r.ok) {
      if (r.error === 'unknown-key') c.disco_unknown_key++;
      else if (r.error === 'auth') c.disco_bad_auth++;
      else c.disco_malformed++;
      return null;
    }
    const rec = this.io.peerByDisco(r.sender);
    if (!rec) {
      c.disco_unknown_key++;
      return null;
    }
    return { rec, message: r.message };
  }

  /** A disco datagram on the public socket (or a pinned one). */
  onDisco(msg: Buffer, ip: string, port: number): void {
    const io = this.io;
    const c = io.c;
    const opened = this.open(msg);
    if (!opened) return;
    const { rec, message: m } = opened;
    const from = `${ip}:${port}`;
    // A path through the virtual LAN itself (tunnel in tunnel) or through loopback is no path.
    if (!isCandidateAllowed(from, io.policy)) {
      c.disco_bad_source++;
      return;
    }
    io.learnAddress(rec, from);
    if (m.type === 'ping') {
      c.disco_ping_rx++;
      this.send(rec, { ip, port }, this.seal(rec, { type: 'pong', txid: m.txid, observed: from }));
      c.disco_pong_tx++;
      rec.machine.onPing(from);
      return;
    }
    c.disco_pong_rx++;
    const rtt = rec.machine.onPong(from, m.txid);
    if (rtt === null) {
      if (!io.birthday.answered(rec, m.txid, from)) c.disco_pong_unmatched++;
      return;
    }
    this.pong(m.txid, rtt, from);
  }

  /** A pong (direct or relayed) that may answer a user's ping. */
  pong(txid: Buffer, rttMs: number, via: string): void {
    this.userPings.get(txid.toString('hex'))?.(rttMs, via);
  }

  private send(rec: PeerEndpoint, ep: Endpoint, b: Buffer): void {
    this.io.c.tx_disco++;
    const key = `${ep.ip}:${ep.port}`;
    rec.lastSent.set(key, this.io.clock.now());
    this.io.sockFor(rec, key).send(b, ep.port, ep.ip);
  }

  /** A ping from the peer's path machine (path.ts PathIO.ping). */
  probe(rec: PeerEndpoint, endpoint: string, txid: Buffer, lowTtl: boolean): void {
    const io = this.io;
    const c = io.c;
    const ep = parseEndpoint(endpoint);
    if (!ep || rec.removed) return;
    const now = io.clock.now();
    // Guesses are budgeted; a predicted port the peer has spoken from is a path like any other.
    if (rec.predicted.has(endpoint) && !rec.known.has(endpoint)) {
      if (!rec.budget.take(now)) {
        c.predict_refused++;
        return;
      }
      c.predict_probes++;
    }
    // Sealed after the budget said yes: a refused guess costs no cipher.
    const b = this.seal(rec, { type: 'ping', txid });
    c.disco_ping_tx++;
    const last = rec.lastSent.get(endpoint);
    c.path_datagrams++;
    if (lowTtl) {
      rec.lastSent.set(endpoint, now);
      io.sockFor(rec, endpoint).prime(b, ep.port, ep.ip);
      return;
    }
    // The first packet towards a candidate (or the first after a long silence) is preceded by the
    // same ping at the priming TTL, so our NAT mapping exists before the peer's packets arrive.
    if (io.primingTtl > 0 && !io.self.isLan(endpoint) && (last === undefined || now - last > REPRIME_AFTER_MS)) {
      c.path_datagrams++;
      io.sockFor(rec, endpoint).prime(b, ep.port, ep.ip);
    }
    this.send(rec, ep, b);
  }

  /** Asks the peer (through the control plane) to punch towards our candidates now. */
  async callMeMaybe(rec: PeerEndpoint, spraySockets = 0): Promise<void> {
    const io = this.io;
    // The peer punches when this arrives: our priming packets must have left first.
    await io.whenPrimed();
    if (rec.removed || io.closed()) return;
    io.c.cmm_sent++;
    const mine = io.self.predictedTowards(rec.machine.candidates());
    if (mine.length > 0) {
      io.c.predict_cmm++;
      io.log.debug('call-me-maybe with predicted ports', { peer: rec.peer.id, predicted: mine });
    }
    try {
      // Every candidate of the peer was just pinged or primed (path.ts round()): say which, so a
      // peer that moved since does not take this call as a punch towards where it is now.
      const primed = rec.machine.candidates().slice(0, MAX_PRIMED_NAMED);
      io.sendCallMeMaybe(rec.peer.id, callMeMaybeList(mine, io.self.candidates, spraySockets > 0 ? io.self.publicAddress : null), spraySockets, primed);
    } catch (err) {
      io.log.warn('sendCallMeMaybe failed', { peer: rec.peer.id, err });
    }
  }

  /** A peer's call-me-maybe (relayed by the control plane): punch towards what it names. */
  handleCallMeMaybe(peerId: string, candidates: string[], spraySockets = 0, primed: readonly string[] = []): void {
    const io = this.io;
    if (io.closed() || typeof peerId !== 'string' || !PEER_ID_RE.test(peerId)) return;
    const valid = validatePeerCandidates(candidates, io.policy);
    const opensGate = callOpensGate(primed, io.self.candidates);
    io.c.cmm_received++;
    if (!opensGate) {
      io.c.cmm_stale++;
      io.log.debug('call-me-maybe towards our old candidates: not a punch towards us yet', { peer: peerId, primed, ours: io.self.candidates });
    }
    const rec = io.peer(peerId);
    if (rec) {
      rec.machine.callMeMaybe(this.expandPredicted(rec, valid), opensGate);
      if (Number.isInteger(spraySockets) && spraySockets > 0) io.birthday.startSpray(rec, valid, spraySockets);
      return;
    }
    // The peer may know about us before the control plane tells us about it: keep its call.
    io.c.cmm_buffered++;
    this.pending.put(peerId, { candidates: valid, opensGate }, io.clock.now());
  }

  /** A new peer: a call it made before we knew it is answered now. */
  added(rec: PeerEndpoint): void {
    const kept = this.pending.take(rec.peer.id, this.io.clock.now());
    if (kept !== null) rec.machine.callMeMaybe(this.expandPredicted(rec, kept.candidates), kept.opensGate);
  }

  /**
   * A call-me-maybe from a peer behind a sequential symmetric NAT: the endpoints it names beyond
   * its published candidates are its predicted ports towards us; add a window around each (other
   * hosts behind its NAT may have taken ports it never saw). Probed within the peer's budget.
   */
  private expandPredicted(rec: PeerEndpoint, valid: string[]): string[] {
    const log = this.io.log;
    const delta = rec.peer.portDelta ?? 0;
    if (rec.peer.natHint !== 'endpoint-dependent' || delta === 0) {
      log.debug('call-me-maybe', { peer: rec.peer.id, candidates: valid, natHint: rec.peer.natHint, delta });
      return valid;
    }
    const told = valid.filter((c) => !rec.peer.candidates.includes(c) && !this.io.self.isLan(c));
    log.debug('call-me-maybe from a sequential NAT', { peer: rec.peer.id, candidates: valid, told, delta });
    if (told.length === 0) return valid;
    const predicted = predictedWindow(told, delta);
    if (!rec.budget.begin(told.join(','))) {
      // This very prediction was probed twice already: stay relayed until the peer's NAT moves.
      this.io.c.predict_refused++;
      return valid.filter((c) => !told.includes(c));
    }
    rec.predicted = new Set([...rec.predicted, ...predicted].slice(-2 * MAX_PREDICTED_PER_PEER));
    return [...valid, ...predicted.filter((p) => !valid.includes(p))];
  }

  /** Disco pings over the active path (or every candidate while there is none), one after another. */
  async userPing(peerId: string, count: number, timeoutMs = 1000): Promise<PingResult[]> {
    if (!Number.isInteger(count) || count < 1 || count > 100) throw new Error('ping count must be 1-100');
    if (!Number.isFinite(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000) throw new Error('ping timeout must be 1-60000 ms');
    const out: PingResult[] = [];
    for (let seq = 1; seq <= count; seq++) {
      const rec = this.io.peer(peerId);
      if (!rec) throw new Error(`unknown peer ${peerId}`);
      const active = rec.machine.state().endpoint;
      const relayed = !active && rec.relay.state().up;
      const targets = active ? [active] : relayed ? [] : rec.machine.peerHasPunched ? rec.machine.candidates() : [];
      const txids = (relayed ? [rec.relay.pingNow()] : targets.map((t) => rec.machine.pingNow(t)))
        .filter((t): t is Buffer => t !== null)
        .map((t) => t.toString('hex'));
      const answer = await new Promise<{ rtt: number; via: string } | null>((resolve) => {
        if (txids.length === 0) return resolve(null);
        const cancel = this.io.clock.setTimeout(() => finish(null), timeoutMs);
        const finish = (r: { rtt: number; via: string } | null): void => {
          cancel();
          for (const t of txids) this.userPings.delete(t);
          resolve(r);
        };
        for (const t of txids) this.userPings.set(t, (rtt, via) => finish({ rtt, via }));
      });
      out.push(answer
        ? { seq, answered: true, rttMs: answer.rtt, via: answer.via, path: answer.via.startsWith('relay ') ? 'relayed' : 'direct' }
        : { seq, answered: false, rttMs: null, via: null, path: 'none' });
    }
    return out;
  }

  close(): void {
    this.userPings.clear();
  }
}
