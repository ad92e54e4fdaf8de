import { Metadata } from '@grpc/grpc-js';
import {
  NatFiltering,
  NatMapping,
  NetworkServiceClient,
  PortMappingProtocol,
  UdpReachability,
  type GetNatReportResponse,
  type NatReport,
  type RunNetcheckResponse,
} from '../gen/lanrage/v1/network.js';
import { flag } from '../core/args.js';
import { unary, withClient } from './call.js';
import type { Command } from './commands.js';

const MAPPING: Record<NatMapping, string> = {
  [NatMapping.NAT_MAPPING_UNSPECIFIED]: 'unknown',
  [NatMapping.NAT_MAPPING_NONE]: 'none',
  [NatMapping.NAT_MAPPING_ENDPOINT_INDEPENDENT]: 'endpoint-independent',
  [NatMapping.NAT_MAPPING_ADDRESS_DEPENDENT]: 'address-dependent',
  [NatMapping.NAT_MAPPING_ADDRESS_AND_PORT_DEPENDENT]: 'address-and-port-dependent',
  [NatMapping.UNRECOGNIZED]: 'unknown',
};
const FILTERING: Record<NatFiltering, string> = {
  [NatFiltering.NAT_FILTERING_UNSPECIFIED]: 'unknown',
  [NatFiltering.NAT_FILTERING_ENDPOINT_INDEPENDENT]: 'endpoint-independent',
  [NatFiltering.NAT_FILTERING_ADDRESS_DEPENDENT]: 'address-dependent',
  [NatFiltering.NAT_FILTERING_ADDRESS_AND_PORT_DEPENDENT]: 'address-and-port-dependent',
  [NatFiltering.UNRECOGNIZED]: 'unknown',
};

/** The report with its enums as words: what `--json` prints. */
export function natReportJson(r: NatReport): Record<string, unknown> {
  return {
    time: r.time?.toISOString() ?? null,
    udp: r.udp === UdpReachability.UDP_REACHABILITY_OPEN ? 'open' : r.udp === UdpReachability.UDP_REACHABILITY_BLOCKED ? 'blocked' : 'unknown',
    mapping: MAPPING[r.mapping] ?? 'unknown',
    filtering: FILTERING[r.filtering] ?? 'unknown',
    publicAddress: r.publicAddress,
    portPreserved: r.portPreserved,
    portMapping: r.portMapping.map((p) => PORT_MAPPING_WORDS[p] ?? 'unknown'),
    relays: r.relays.map((x) => ({ relay: x.relay, rttMs: x.answered ? x.rttMs : null, inUse: x.inUse })),
    localAddresses: r.localAddresses,
    notes: r.notes,
    stunServer: r.stunServer,
  };
}

const MAPPING_WORDS: Record<string, string> = {
  none: 'no NAT: the public address is this machine’s own',
  'endpoint-independent': 'one public port for every destination (peers can use the STUN address)',
  'address-dependent': 'a new public port per destination IP',
  'address-and-port-dependent': 'a new public port per destination ("symmetric"): the STUN address is no use to peers',
  unknown: 'unknown',
};
const FILTERING_WORDS: Record<string, string> = {
  'endpoint-independent': 'anyone may answer an open mapping ("full cone")',
  'address-dependent': 'only IPs this machine has sent to may answer',
  'address-and-port-dependent': 'only the exact ip:port this machine sent to may answer (hole punching needed)',
  unknown: 'unknown',
};

const PORT_MAPPING_WORDS: Partial<Record<number, string>> = {
  [PortMappingProtocol.PORT_MAPPING_PROTOCOL_UPNP]: 'upnp',
  [PortMappingProtocol.PORT_MAPPING_PROTOCOL_NAT_PMP]: 'nat-pmp',
  [PortMappingProtocol.PORT_MAPPING_PROTOCOL_PCP]: 'pcp',
};

export function formatNatReport(r: NatReport): string[] {
  const j = natReportJson(r);
  const lines = [`NAT report${r.time ? ` of ${r.time.toLocaleString()}` : ''}${r.stunServer ? `, against ${r.stunServer}` : ''}`];
  if (j.udp === 'blocked') {
    lines.push('  UDP        blocked: only a relay over TCP can connect this machine');
  } else {
    lines.push(
      `  UDP        ${String(j.udp)}`,
      `  public     ${r.publicAddress || '-'}${r.publicAddress ? (r.portPreserved ? ' (local port kept)' : ' (local port changed)') : ''}`,
      `  mapping    ${String(j.mapping)}: ${MAPPING_WORDS[String(j.mapping)] ?? ''}`,
      `  filtering  ${String(j.filtering)}: ${FILTERING_WORDS[String(j.filtering)] ?? ''}`,
    );
  }
  lines.push(
    `  local      ${r.localAddresses.join(', ') || '-'}`,
    `  port mapping  ${(j.portMapping as string[]).join(', ') || 'none answered (UPnP, NAT-PMP, PCP)'}`,
    `  relays        ${r.relays.length ? r.relays.map((x) => `${x.relay} ${x.answered ? `${x.rttMs.toFixed(1)} ms` : 'no answer'}${x.inUse ? ' (in use)' : ''}`).join(', ') : 'none offered (relays are offered to party members)'}`,
  );
  for (const n of r.notes) lines.push(`  note: ${n}`);
  return lines;
}

export const netcheckCommand: Command = {
  name: 'netcheck',
  usage: 'netcheck [--cached]',
  summary: 'test the NAT (RFC 5780) against the control server and show the report',
  async run(args, ctx) {
    await withClient(NetworkServiceClient, ctx, async (client) => {
      let report: NatReport | undefined;
      if (flag(args, 'cached') !== undefined) {
        report = (await unary<object, GetNatReportResponse>(client, client.getNatReport, {}, new Metadata(), ctx.deadline())).report;
        if (!report) throw new Error('no NAT report yet: run `lanrage netcheck` (the helper needs a control server: create or join a party)');
      } else {
        // A run takes about 1.5 s, up to ~3 s when answers are missing.
        const res = await unary<object, RunNetcheckResponse>(client, client.runNetcheck, {}, ctx.authMetadata(), new Date(Date.now() + 15_000));
        report = res.report;
        if (!report) throw new Error('the helper answered without a report');
      }
      if (ctx.json) return ctx.out(JSON.stringify(natReportJson(report)));
      formatNatReport(report).forEach((l) => ctx.out(l));
    });
  },
};
