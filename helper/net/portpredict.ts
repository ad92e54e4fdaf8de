// Port prediction for NATs with endpoint-dependent ("symmetric") mapping that hand out ports in
// sequence: each new destination gets the previous port plus a small constant step (the delta).
// Pure: time is passed in, nothing is sent from here.
//
// How it is used (magicsock.ts):
//  - The symmetric side knows every flow it opened: its one public socket is the only sender, and
//    a NAT allocates a port for each new destination (a destination silent for longer than the
//    NAT's idle timeout counts as new again). FlowLog numbers those flows in order.
//  - STUN answers give (flow number, mapped port) samples; the delta is the port step per flow,
//    and from the latest sample the port our NAT gave any later flow follows by arithmetic. So the
//    symmetric side can tell a peer exactly where its mapping towards that peer landed (in its
//    per-peer call-me-maybe), instead of making the peer guess blindly.
//  - The peer (whose NAT keeps one mapping) probes that port and a small window around it: other
//    machines behind the same NAT, TCP through it, or our own other sockets (netcheck's) may have
//    used ports we never saw, so the window reaches further up than down.
//    Those probes are bounded per attempt and rate-limited (ProbeBudget).

/** Largest step accepted as "sequential": beyond it the samples look random. */
export const MAX_DETECTED_DELTA = 16;
/** Linux conntrack forgets an unreplied or short UDP flow after 30 s (nf_conntrack_udp_timeout). */
export const DEFAULT_FLOW_IDLE_MS = 30_000;
/** Window around a predicted port, in steps of the delta: k = WINDOW_LOW..WINDOW_HIGH. */
export const WINDOW_LOW = -1;
export const WINDOW_HIGH = 8;
/** At most this many predicted endpoints per peer (windows of the first predictions only). */
export const MAX_PREDICTED_PER_PEER = 16;

export interface FlowLogOptions {
  idleMs?: number;
  /** Flows remembered; beyond this the idle ones are forgotten first, then the oldest. */
  maxFlows?: number;
}

/** Numbers the NAT flows opened by one local socket, in the order a NAT would allocate ports. */
export class FlowLog {
  private readonly idleMs: number;
  private readonly maxFlows: number;
  private readonly flows = new Map<string, { idx: number; last: number }>();
  private next = 0;

  constructor(o: FlowLogOptions = {}) {
    this.idleMs = o.idleMs ?? DEFAULT_FLOW_IDLE_MS;
    this.maxFlows = o.maxFlows ?? 4096;
  }

  /** A datagram to `dest` ("ip:port") leaves now; returns the number of the flow it belongs to. */
  note(dest: string, now: number): number {
    const f = this.flows.get(dest);
    if (f && now - f.last <= this.idleMs) {
      f.last = now;
      return f.idx;
    }
    const idx = this.next++;
    if (f) this.flows.delete(dest);
    this.flows.set(dest, { idx, last: now });
    if (this.flows.size > this.maxFlows) this.prune(now);
    return idx;
  }

  /** The number of the live flow towards `dest`, or null when none is open. */
  indexOf(dest: string, now: number): number | null {
    const f = this.flows.get(dest);
    return f && now - f.last <= this.idleMs ? f.idx : null;
  }

  get opened(): number {
    return this.next;
  }

  private prune(now: number): void {
    for (const [k, f] of this.flows) if (now - f.last > this.idleMs) this.flows.delete(k);
    for (const k of this.flows.keys()) {
      if (this.flows.size <= this.maxFlows) break;
      this.flows.delete(k);
    }
  }
}

/** One STUN answer: the flow it travelled on and the public address the server saw. */
export interface PortSample {
  idx: number;
  ip: string;
  port: number;
}

/**
 * The port step per new flow, from samples of one STUN probe (flows opened one after another).
 * 0 when it cannot be told: fewer than two distinct flows, different public IPs, a step that is
 * not the same between every pair, not a whole number, zero (endpoint-independent mapping) or
 * larger than MAX_DETECTED_DELTA (random allocation).
 */
export function detectPortDelta(samples: readonly PortSample[]): number {
  const byIdx = new Map<number, PortSample>();
  for (const s of samples) if (!byIdx.has(s.idx)) byIdx.set(s.idx, s);
  const s = [...byIdx.values()].sort((a, b) => a.idx - b.idx);
  if (s.length < 2) return 0;
  let delta: number | null = null;
  for (let i = 1; i < s.length; i++) {
    const a = s[i - 1]!;
    const b = s[i]!;
    if (a.ip !== b.ip) return 0;
    const d = (b.port - a.port) / (b.idx - a.idx);
    if (!Number.isInteger(d) || d === 0 || Math.abs(d) > MAX_DETECTED_DELTA) return 0;
    if (delta !== null && d !== delta) return 0;
    delta = d;
  }
  return delta ?? 0;
}

/** The port our NAT gave flow `idx`, by arithmetic from a reference sample; null if out of range. */
export function predictPort(ref: PortSample, delta: number, idx: number): number | null {
  if (delta === 0 || !Number.isInteger(delta)) return null;
  const p = ref.port + delta * (idx - ref.idx);
  return p >= 1 && p <= 65535 ? p : null;
}

/**
 * Endpoints to probe around a port a symmetric peer told us (ip:port), k·delta away for
 * k = low..high, k = 0 (the port itself) first. Empty unless |delta| is 1..MAX_DETECTED_DELTA.
 */
export function predictionWindow(ip: string, port: number, delta: number, low = WINDOW_LOW, high = WINDOW_HIGH): string[] {
  if (!Number.isInteger(delta) || delta === 0 || Math.abs(delta) > MAX_DETECTED_DELTA) return [];
  const out: string[] = [];
  const ks = [0];
  for (let k = 1; k <= Math.max(high, -low); k++) {
    if (k <= high) ks.push(k);
    if (-k >= low) ks.push(-k);
  }
  for (const k of ks) {
    const p = port + k * delta;
    if (p >= 1 && p <= 65535) out.push(`${ip}:${p}`);
  }
  return out;
}

export interface ProbeBudgetOptions {
  /** Probes per attempt (an attempt begins when the peer sends a new prediction). */
  perAttempt?: number;
  /** Token-bucket rate and burst. */
  perSecond?: number;
  burst?: number;
  /** Attempts per prediction: the same port told again is probed at most this many times over. */
  attemptsPerPrediction?: number;
}

/**
 * Bounds the packets spent on predicted ports: at most `perAttempt` per attempt, at most
 * `perSecond` on average (bursts up to `burst`), and the same prediction gets at most
 * `attemptsPerPrediction` attempts; then we stay relayed until the peer's NAT moves.
 */
export class ProbeBudget {
  private readonly perAttempt: number;
  private readonly rate: number;
  private readonly burst: number;
  private readonly maxAttempts: number;
  private tokens: number;
  private lastRefill: number | null = null;
  private usedThisAttempt = 0;
  private attemptOpen = false;
  private prediction: string | null = null;
  private attemptsForPrediction = 0;
  sent = 0;
  refused = 0;
  attempts = 0;

  constructor(o: ProbeBudgetOptions = {}) {
    this.perAttempt = o.perAttempt ?? 256;
    this.rate = o.perSecond ?? 100;
    this.burst = o.burst ?? 32;
    this.maxAttempts = o.attemptsPerPrediction ?? 2;
    this.tokens = this.burst;
  }

  /** The peer told us where to probe; returns false when this prediction used up its attempts. */
  begin(prediction: string): boolean {
    if (prediction !== this.prediction) {
      this.prediction = prediction;
      this.attemptsForPrediction = 0;
    }
    if (this.attemptsForPrediction >= this.maxAttempts) {
      this.attemptOpen = false;
      return false;
    }
    this.attemptsForPrediction++;
    this.attempts++;
    this.attemptOpen = true;
    this.usedThisAttempt = 0;
    return true;
  }

  /** May one more predicted probe go now? Consumes a token when it may. */
  take(now: number): boolean {
    if (this.lastRefill !== null) this.tokens = Math.min(this.burst, this.tokens + ((now - this.lastRefill) * this.rate) / 1000);
    this.lastRefill = now;
    if (!this.attemptOpen || this.usedThisAttempt >= this.perAttempt || this.tokens < 1) {
      this.refused++;
      return false;
    }
    this.tokens -= 1;
    this.usedThisAttempt++;
    this.sent++;
    return true;
  }

  /** A direct path answered: nothing more to spend (should it be lost, the peer may try again). */
  end(): void {
    this.attemptOpen = false;
    this.prediction = null;
  }
}
