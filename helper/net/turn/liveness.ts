// What one liveness probe (the unauthenticated Allocate every sync starts with) says about our
// allocation. Pure: the client passes what it knows and what the relay answered.
//
// The relay keys an allocation by the 5-tuple it was made from. When a NAT router forgets our
// mapping (reboot, `conntrack -F`, a timeout), our next packet leaves from a NEW public port: the
// relay sees a stranger, drops our ChannelData/Send silently and answers the probe 401 — the
// allocation is orphaned, not gone, and resuming it is impossible from here (any authenticated
// request from the new 5-tuple gets 437). The mapped address (XOR-MAPPED-ADDRESS, when the answer
// carries one) tells the two apart for the log; either way the cure is a fresh allocation at once.

export interface ProbeAnswer {
  /** 437: this 5-tuple holds an allocation; 401: it holds none. */
  code: 401 | 437;
  /** Our "ip:port" as the relay sees it on this answer, when it says. */
  mapped: string | null;
}

export type Liveness =
  /** The allocation answers from the 5-tuple it was made from. */
  | 'alive'
  /** Our public address changed (NAT rebinding): the relay's allocation is unreachable from here. */
  | 'orphaned'
  /** The relay has no allocation for us (it restarted, or the allocation expired). */
  | 'gone';

/**
 * `known`: our mapped address from the Allocate answer (null when the relay did not say).
 * A 437 from a different mapped address is someone else's allocation on our new port, never ours.
 */
export function judgeProbe(known: string | null, answer: ProbeAnswer): Liveness {
  const moved = known !== null && answer.mapped !== null && answer.mapped !== known;
  if (moved) return 'orphaned';
  return answer.code === 437 ? 'alive' : 'gone';
}

