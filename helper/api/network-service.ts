import {
  NatFiltering,
  NatMapping,
  PortMappingProtocol,
  NetworkServiceService,
  UdpReachability,
  type GetNatReportResponse,
  type NatReport,
  type RunNetcheckResponse,
} from '../gen/lanrage/v1/network.js';
import type { FilteringBehavior, MappingBehavior } from '../net/netcheck.js';
import type { NetcheckResult } from '../net/netcheck-run.js';
import type { Netchecker } from '../net/netchecker.js';
import type { PortMapProtocol } from '../net/portmapper/portmapper.js';
import type { Handler } from './wrap.js';

export const networkDefinition = NetworkServiceService;
/** RunNetcheck sends packets: it needs the install token. */
export const networkMutating: ReadonlySet<string> = new Set(['runNetcheck']);

const MAPPING: Record<MappingBehavior, NatMapping> = {
  none: NatMapping.NAT_MAPPING_NONE,
  'endpoint-independent': NatMapping.NAT_MAPPING_ENDPOINT_INDEPENDENT,
  'address-dependent': NatMapping.NAT_MAPPING_ADDRESS_DEPENDENT,
  'address-and-port-dependent': NatMapping.NAT_MAPPING_ADDRESS_AND_PORT_DEPENDENT,
  unknown: NatMapping.NAT_MAPPING_UNSPECIFIED,
};
const FILTERING: Record<FilteringBehavior, NatFiltering> = {
  'endpoint-independent': NatFiltering.NAT_FILTERING_ENDPOINT_INDEPENDENT,
  'address-dependent': NatFiltering.NAT_FILTERING_ADDRESS_DEPENDENT,
  'address-and-port-dependent': NatFiltering.NAT_FILTERING_ADDRESS_AND_PORT_DEPENDENT,
  unknown: NatFiltering.NAT_FILTERING_UNSPECIFIED,
};

const PORT_MAPPING: Record<PortMapProtocol, PortMappingProtocol> = {
  upnp: PortMappingProtocol.PORT_MAPPING_PROTOCOL_UPNP,
  'nat-pmp': PortMappingProtocol.PORT_MAPPING_PROTOCOL_NAT_PMP,
  pcp: PortMappingProtocol.PORT_MAPPING_PROTOCOL_PCP,
};

/** The report as the API sends it (relays that did not answer: rtt_ms 0, answered false). */
export function toProtoNatReport(r: NetcheckResult): NatReport {
  return {
    time: r.at,
    udp: r.udp === 'open' ? UdpReachability.UDP_REACHABILITY_OPEN : UdpReachability.UDP_REACHABILITY_BLOCKED,
    mapping: MAPPING[r.mapping],
    filtering: FILTERING[r.filtering],
    publicAddress: r.publicAddress,
    portPreserved: r.portPreserved,
    portMapping: (r.portMapping ?? []).map((p) => PORT_MAPPING[p]),
    relays: (r.relays ?? []).map((x) => ({ relay: x.relay, rttMs: x.rttMs ?? 0, answered: x.rttMs !== null, inUse: x.inUse })),
    localAddresses: [...r.localAddresses],
    notes: [...r.notes],
    stunServer: r.server,
  };
}

export function networkHandlers(netcheck: Netchecker): Record<string, Handler> {
  return {
    getNatReport: (): GetNatReportResponse => {
      const r = netcheck.latest();
      return r ? { report: toProtoNatReport(r) } : {};
    },
    runNetcheck: async (): Promise<RunNetcheckResponse> => ({ report: toProtoNatReport(await netcheck.runNow()) }),
  };
}
