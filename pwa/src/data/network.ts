// The NAT report: its RPCs and how its fields read to a player. The report itself lives in
// liveStore (the Watch stream brings every new one); the calls write their answers there too.
import {
  GetNatReportRequest,
  NatFiltering,
  NatMapping,
  NetworkServiceDefinition,
  RunNetcheckRequest,
  UdpReachability,
  type NatReport,
} from '../gen/lanrage/v1/network.js';
import { unary } from '../api/transport.js';
import { liveStore } from './store.js';

export type { NatReport };
export { UdpReachability };

/** A run takes about 1.5 s, up to ~3 s when answers are missing. */
const RUN_TIMEOUT_MS = 15_000;

export async function getNatReport(): Promise<NatReport | undefined> {
  const res = await unary(NetworkServiceDefinition, NetworkServiceDefinition.methods.getNatReport, GetNatReportRequest.fromPartial({}));
  if (res.report) liveStore.setNatReport(res.report);
  return res.report;
}

export async function runNetcheck(): Promise<NatReport | undefined> {
  const res = await unary(NetworkServiceDefinition, NetworkServiceDefinition.methods.runNetcheck, RunNetcheckRequest.fromPartial({}), {
    auth: true,
    timeoutMs: RUN_TIMEOUT_MS,
  });
  if (res.report) liveStore.setNatReport(res.report);
  return res.report;
}

export interface Described {
  label: string;
  detail: string;
  /** good: direct paths are easy; fair: they need hole punching; poor: expect a relay. */
  tone: 'good' | 'fair' | 'poor' | 'unknown';
}

export function describeMapping(m: NatMapping): Described {
  switch (m) {
    case NatMapping.NAT_MAPPING_NONE:
      return { label: 'No NAT', detail: 'The public address is this machine’s own.', tone: 'good' };
    case NatMapping.NAT_MAPPING_ENDPOINT_INDEPENDENT:
      return { label: 'Endpoint-independent', detail: 'One public port for every destination: friends can use it.', tone: 'good' };
    case NatMapping.NAT_MAPPING_ADDRESS_DEPENDENT:
      return { label: 'Address-dependent', detail: 'A new public port for each destination IP.', tone: 'fair' };
    case NatMapping.NAT_MAPPING_ADDRESS_AND_PORT_DEPENDENT:
      return { label: 'Address- and port-dependent', detail: 'A new public port per destination (“symmetric”): direct paths are hard.', tone: 'poor' };
    default:
      return { label: 'Unknown', detail: 'See the notes below.', tone: 'unknown' };
  }
}

export function describeFiltering(f: NatFiltering): Described {
  switch (f) {
    case NatFiltering.NAT_FILTERING_ENDPOINT_INDEPENDENT:
      return { label: 'Endpoint-independent', detail: 'Anyone may answer an open mapping (“full cone”).', tone: 'good' };
    case NatFiltering.NAT_FILTERING_ADDRESS_DEPENDENT:
      return { label: 'Address-dependent', detail: 'Only addresses this machine has sent to may answer.', tone: 'fair' };
    case NatFiltering.NAT_FILTERING_ADDRESS_AND_PORT_DEPENDENT:
      return { label: 'Address- and port-dependent', detail: 'Only the exact address and port sent to may answer: hole punching needed.', tone: 'fair' };
    default:
      return { label: 'Unknown', detail: 'See the notes below.', tone: 'unknown' };
  }
}

export function describeUdp(u: UdpReachability): Described {
  switch (u) {
    case UdpReachability.UDP_REACHABILITY_OPEN:
      return { label: 'Open', detail: 'The control server answered over UDP.', tone: 'good' };
    case UdpReachability.UDP_REACHABILITY_BLOCKED:
      return { label: 'Blocked', detail: 'No UDP answer: only a relay over TCP can connect this machine.', tone: 'poor' };
    default:
      return { label: 'Unknown', detail: '', tone: 'unknown' };
  }
}
