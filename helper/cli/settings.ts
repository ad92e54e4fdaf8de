import { Metadata } from '@grpc/grpc-js';
import { Settings, SettingsServiceClient, type GetSettingsResponse, type UpdateSettingsResponse } from '../gen/lanrage/v1/settings.js';
import { unary, withClient } from './call.js';
import { CliError } from './context.js';
import type { Command } from './commands.js';

const FIELDS: Record<string, { key: keyof Settings; parse(v: string): Settings[keyof Settings] }> = {
  device_name: { key: 'deviceName', parse: (v) => v },
  control_server_url: { key: 'controlServerUrl', parse: (v) => v },
  interface_name: { key: 'interfaceName', parse: (v) => v },
  listen_port: { key: 'listenPort', parse: Number },
  mtu: { key: 'mtu', parse: Number },
  broadcast_enabled: { key: 'broadcastEnabled', parse: (v) => ['true', 'on', 'yes', '1'].includes(v.toLowerCase()) },
  broadcast_ports: { key: 'broadcastPorts', parse: (v) => (v.trim() === '' ? [] : v.split(',').map((p) => Number(p.trim()))) },
  metrics_retention_hours: { key: 'metricsRetentionHours', parse: Number },
};

function print(s: Settings, out: (l: string) => void, json: boolean): void {
  if (json) return out(JSON.stringify(s));
  for (const [name, f] of Object.entries(FIELDS)) {
    const v = s[f.key];
    out(`${name.padEnd(24)} ${Array.isArray(v) ? v.join(',') : String(v)}`);
  }
}

export const settingsCommand: Command = {
  name: 'settings',
  usage: 'settings [set NAME VALUE]',
  summary: 'show the settings, or change one (needs the install token)',
  async run(args, ctx) {
    await withClient(SettingsServiceClient, ctx, async (client) => {
      const [, verb, name, value] = args.positional;
      if (verb === undefined) {
        const res = await unary<object, GetSettingsResponse>(client, client.getSettings, {}, new Metadata(), ctx.deadline());
        if (res.settings) print(res.settings, ctx.out, ctx.json);
        return;
      }
      const field = name === undefined ? undefined : FIELDS[name];
      if (verb !== 'set' || field === undefined || value === undefined) {
        throw new CliError(`usage: lanrage settings set NAME VALUE, where NAME is one of ${Object.keys(FIELDS).join(', ')}`);
      }
      const update = Settings.fromPartial({ [field.key]: field.parse(value) } as Partial<Settings>);
      const res = await unary<object, UpdateSettingsResponse>(
        client,
        client.updateSettings,
        { settings: update, updateMask: [name!] },
        ctx.authMetadata(),
        ctx.deadline(),
      );
      if (res.settings) print(res.settings, ctx.out, ctx.json);
    });
  },
};
