import { Metadata } from '@grpc/grpc-js';
import { ControlPlaneMode, HelperServiceClient, type GetStatusResponse, type HelperStatus } from '../gen/lanrage/v1/helper.js';
import type { LanStats } from '../gen/lanrage/v1/network.js';
import { PartyServiceClient, type GetPartyResponse } from '../gen/lanrage/v1/party.js';
import { unary, withClient } from './call.js';
import { showParty } from './party.js';
import type { Command } from './commands.js';

export function formatDuration(totalSeconds: number): string {
  const d = Math.floor(totalSeconds / 86400);
  const h = Math.floor((totalSeconds % 86400) / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

export function formatStatus(s: HelperStatus): string[] {
  return [
    `LANrage helper ${s.version}, running for ${formatDuration(s.uptimeSeconds)}`,
    `  device   ${s.deviceName} (${s.os}/${s.arch}, host ${s.hostname})`,
    `  control  ${s.controlPlane === ControlPlaneMode.CONTROL_PLANE_MODE_REMOTE ? 'remote control server' : 'embedded control server'}`,
    `  party    ${s.inParty ? 'in a party' : 'not in a party'}`,
    `  API      gRPC 127.0.0.1:${s.grpcPort}, PWA http://localhost:${s.httpPort}`,
  ];
}

/** One line for LAN discovery (broadcasts and multicasts carried across the party). */
export function formatLan(l: LanStats | undefined): string[] {
  if (!l) return [];
  const dropped = l.droppedDuplicate + l.droppedRateLimited + l.droppedInvalid + l.droppedLoop + l.droppedPolicy + l.droppedNoListener;
  const counts = `captured ${l.captured}, forwarded ${l.forwarded}, received ${l.received}, injected ${l.injected}, dropped ${dropped}` +
    (l.droppedRateLimited > 0 ? ` (${l.droppedRateLimited} rate-limited)` : '') + (l.errors > 0 ? `, ${l.errors} errors` : '');
  const lines = [`  LAN      discovery ${l.enabled ? `on (${l.ports.length} broadcast ports, ${l.groups.length} multicast groups)` : 'off'}: ${counts}`];
  if (l.problem) lines.push(`           ${l.problem}`);
  return lines;
}

export const statusCommand: Command = {
  name: 'status',
  usage: 'status',
  summary: "show the helper's state",
  async run(_args, ctx) {
    await withClient(HelperServiceClient, ctx, async (client) => {
      const res = await unary<object, GetStatusResponse>(client, client.getStatus, {}, new Metadata(), ctx.deadline());
      if (!res.status) throw new Error('the helper sent an empty status');
      if (ctx.json) return ctx.out(JSON.stringify({ ...res.status, startedAt: res.status.startedAt?.toISOString(), lan: res.lan }));
      [...formatStatus(res.status), ...formatLan(res.lan)].forEach((l) => ctx.out(l));
      if (res.status.inParty) {
        await withClient(PartyServiceClient, ctx, async (pc) => {
          const p = await unary<object, GetPartyResponse>(pc, pc.getParty, {}, new Metadata(), ctx.deadline());
          await showParty(ctx, p.party);
        });
      }
    });
  },
};
