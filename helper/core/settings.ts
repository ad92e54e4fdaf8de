import { hostname } from 'node:os';
import type { Settings } from '../gen/lanrage/v1/settings.js';
import { MAX_CONTROL_URLS, parseControlUrls } from '../controlclient/control-urls.js';

// Pure rules for settings: defaults, validation and field-mask merging. The store and the API
// both go through here so an invalid value can never be persisted by any path.

export type SettingsField = keyof Settings;

const SNAKE_TO_FIELD: Record<string, SettingsField> = {
  device_name: 'deviceName',
  control_server_url: 'controlServerUrl',
  interface_name: 'interfaceName',
  listen_port: 'listenPort',
  mtu: 'mtu',
  broadcast_enabled: 'broadcastEnabled',
  broadcast_ports: 'broadcastPorts',
  metrics_retention_hours: 'metricsRetentionHours',
};
export const SETTINGS_FIELDS = Object.values(SNAKE_TO_FIELD);

export const DEVICE_NAME_RE = /^[\p{L}\p{N}][\p{L}\p{N} ._'-]{0,31}$/u;
// Linux IFNAMSIZ is 16 including the NUL; wireguard-go also uses the name for its UAPI socket path.
export const INTERFACE_NAME_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,14}$/;
const MAX_BROADCAST_PORTS = 64;

export function sanitizeDeviceName(raw: string): string {
  const cleaned = [...raw.normalize('NFC')].filter((c) => /[\p{L}\p{N} ._'-]/u.test(c)).join('').trim().slice(0, 32);
  return DEVICE_NAME_RE.test(cleaned) ? cleaned : 'lanrage-player';
}

export function defaultSettings(host: string = hostname()): Settings {
  return {
    deviceName: sanitizeDeviceName(host),
    controlServerUrl: '',
    interfaceName: 'lanrage0',
    listenPort: 0,
    mtu: 1420,
    broadcastEnabled: true,
    broadcastPorts: [],
    metricsRetentionHours: 24,
  };
}

/** Returns a message per invalid field; empty when the settings are valid. */
export function validateSettings(s: Settings): string[] {
  const errors: string[] = [];
  if (!DEVICE_NAME_RE.test(s.deviceName)) {
    errors.push("device_name must be 1-32 characters: letters, digits, space and . _ ' - (starting with a letter or digit)");
  }
  if (s.controlServerUrl !== '') {
    try {
      parseControlUrls(s.controlServerUrl);
    } catch (err) {
      errors.push(`control_server_url must be empty (embedded control server) or http(s)://host[:port] with no path, user or query, or up to ${MAX_CONTROL_URLS} of them separated by commas (instances of one control service): ${(err as Error).message}`);
    }
  }
  if (!INTERFACE_NAME_RE.test(s.interfaceName)) {
    errors.push('interface_name must be 1-15 characters [A-Za-z0-9_.-] starting with a letter');
  }
  if (!Number.isInteger(s.listenPort) || (s.listenPort !== 0 && (s.listenPort < 1024 || s.listenPort > 65535))) {
    errors.push('listen_port must be 0 (automatic) or 1024-65535');
  }
  if (!Number.isInteger(s.mtu) || s.mtu < 1280 || s.mtu > 1420) errors.push('mtu must be 1280-1420');
  if (s.broadcastPorts.length > MAX_BROADCAST_PORTS) errors.push(`broadcast_ports holds at most ${MAX_BROADCAST_PORTS} ports`);
  if (s.broadcastPorts.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) errors.push('broadcast_ports must be 1-65535');
  if (new Set(s.broadcastPorts).size !== s.broadcastPorts.length) errors.push('broadcast_ports must not repeat a port');
  if (!Number.isInteger(s.metricsRetentionHours) || s.metricsRetentionHours < 1 || s.metricsRetentionHours > 720) {
    errors.push('metrics_retention_hours must be 1-720');
  }
  return errors;
}

/**
 * Applies the fields named in `mask` (snake_case as in the proto, or camelCase as in JSON) from
 * `update` onto `current`. An empty mask means every field. Unknown names are errors.
 */
export function mergeSettings(current: Settings, update: Settings, mask: readonly string[]): { merged: Settings; errors: string[] } {
  const names = mask.length === 0 ? SETTINGS_FIELDS : mask.map((p) => SNAKE_TO_FIELD[p] ?? (SETTINGS_FIELDS.includes(p as SettingsField) ? (p as SettingsField) : undefined));
  const unknown = mask.filter((_, i) => names[i] === undefined);
  if (unknown.length > 0) return { merged: current, errors: [`update_mask names unknown fields: ${unknown.slice(0, 5).join(', ')}`] };
  const merged: Settings = { ...current, broadcastPorts: [...current.broadcastPorts] };
  for (const f of names as SettingsField[]) {
    (merged as unknown as Record<string, unknown>)[f] = f === 'broadcastPorts' ? [...update.broadcastPorts] : update[f];
  }
  return { merged, errors: validateSettings(merged) };
}
