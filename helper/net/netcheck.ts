// NAT behaviour discovery (RFC 5780) as pure logic: what was observed in, a verdict out. The
// I/O that gathers the observations is netcheck-run.ts; the wire format is stun-5780.ts.
//
// Mapping (§4.3): test I asks the primary address; test II asks the alternate IP on the primary
// port; test III asks the alternate IP and port. Same mapped address for I and II: endpoint-
// independent; else II = III: address-dependent; else address-and-port-dependent.
// Filtering (§4.4), from a socket that has talked only to the primary address: an answer to
// "change IP and port" means endpoint-independent; else an answer to "change port" means
// address-dependent; else address-and-port-dependent.

export interface Endpoint {
  ip: string;
  port: number;
}

export interface BindingAnswer {
  /** The address the server saw (XOR-MAPPED-ADDRESS). */
  mapped: Endpoint;
  /** RFC 5780 OTHER-ADDRESS: null when the server has no alternate address. */
  other: Endpoint | null;
}

/** The outcome of a CHANGE-REQUEST: an answer came, nothing came, or the server cannot do it. */
export type ChangeOutcome = 'answered' | 'silent' | 'refused';

export interface NetcheckObservations {
  /** Local port of the mapping-test socket. */
  localPort: number;
  /** This machine's IPv4 interface addresses. */
  localAddresses: readonly string[];
  /** Mapping tests, one socket. undefined = not run; null = no answer. */
  test1: BindingAnswer | null;
  test2?: BindingAnswer | null;
  test3?: BindingAnswer | null;
  /** A one-address server's second port (same IP): only tells port-dependence apart. */
  secondPort?: BindingAnswer | null;
  /** Filtering tests, a second socket that contacts only the primary address. */
  filter1: BindingAnswer | null;
  /** Change IP and port. */
  filter2?: ChangeOutcome;
  /** Change port only. */
  filter3?: ChangeOutcome;
}

export type MappingBehavior = 'none' | 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent' | 'unknown';
export type FilteringBehavior = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent' | 'unknown';

export interface NatVerdict {
  udp: 'open' | 'blocked';
  mapping: MappingBehavior;
  filtering: FilteringBehavior;
  /** "ip:port" as the primary STUN address saw the mapping socket; '' when UDP is blocked. */
  publicAddress: string;
  portPreserved: boolean;
  /** Why a behaviour is unknown, in words a person can act on. */
  notes: string[];
}

const same = (a: Endpoint, b: Endpoint): boolean => a.ip === b.ip && a.port === b.port;
export const formatEndpoint = (e: Endpoint): string => (e.ip.includes(':') ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`);

export function classifyMapping(o: NetcheckObservations, notes: string[]): MappingBehavior {
  const x1 = o.test1?.mapped;
  if (!x1) {
    notes.push('the mapping tests got no answer from the primary STUN address');
    return 'unknown';
  }
  // §4.3: a mapped address that is one of our own means there is no NAT on the path.
  if (o.localAddresses.includes(x1.ip) && x1.port === o.localPort) return 'none';
  if (o.test2 === undefined) {
    // No alternate address: two ports of one IP tell only whether the port matters.
    const xp = o.secondPort?.mapped;
    if (xp && !same(xp, x1)) return 'address-and-port-dependent';
    notes.push(
      xp
        ? 'mapping is endpoint-independent or address-dependent: the control server has one STUN address (start it with --stun-alt-ip)'
        : 'the control server has one STUN address and its second port did not answer',
    );
    return 'unknown';
  }
  const x2 = o.test2?.mapped;
  if (!x2) {
    notes.push("the control server's alternate STUN address did not answer");
    return 'unknown';
  }
  if (same(x1, x2)) return 'endpoint-independent';
  const x3 = o.test3?.mapped;
  if (!x3) {
    notes.push("the control server's alternate STUN port did not answer");
    return 'unknown';
  }
  return same(x2, x3) ? 'address-dependent' : 'address-and-port-dependent';
}

export function classifyFiltering(o: NetcheckObservations, notes: string[]): FilteringBehavior {
  if (!o.filter1) {
    notes.push('the filtering tests got no answer from the primary STUN address');
    return 'unknown';
  }
  if (o.filter2 === undefined || o.filter2 === 'refused') {
    notes.push('filtering is unknown: the control server cannot answer from another address (start it with --stun-alt-ip)');
    return 'unknown';
  }
  if (o.filter2 === 'answered') return 'endpoint-independent';
  if (o.filter3 === 'answered') return 'address-dependent';
  if (o.filter3 === 'silent') return 'address-and-port-dependent';
  notes.push('filtering is unknown: the change-port test could not run');
  return 'unknown';
}

export function classifyNat(o: NetcheckObservations): NatVerdict {
  const first = o.test1 ?? o.filter1;
  if (!first) {
    return {
      udp: 'blocked',
      mapping: 'unknown',
      filtering: 'unknown',
      publicAddress: '',
      portPreserved: false,
      notes: ['no STUN answer at all: UDP to the control server is blocked (or the server is down); only a relay over TCP can help'],
    };
  }
  const notes: string[] = [];
  const mapping = classifyMapping(o, notes);
  const filtering = classifyFiltering(o, notes);
  return {
    udp: 'open',
    mapping,
    filtering,
    publicAddress: o.test1 ? formatEndpoint(o.test1.mapped) : '',
    portPreserved: o.test1 ? o.test1.mapped.port === o.localPort : false,
    notes,
  };
}
