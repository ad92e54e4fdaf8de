// Settings: the RPCs, the form's model, and validation that mirrors settings.proto's comments and
// the helper's own checks (helper/core/settings.ts), which stay the authority: this only spares
// the user a round trip.
import {
  GetSettingsRequest,
  SettingsServiceDefinition,
  UpdateSettingsRequest,
  type Settings,
} from '../gen/lanrage/v1/settings.js';
import { unary } from '../api/transport.js';
// Shared with the helper (pure, no Node or gRPC imports): both refuse the same URLs and lists.
import { checkControlUrl, controlListProblem, MAX_CONTROL_URL_LENGTH, MAX_CONTROL_URLS, splitControlUrls } from '../../../helper/controlclient/control-url-shape.js';

export type { Settings };

export async function getSettings(): Promise<Settings> {
  const res = await unary(SettingsServiceDefinition, SettingsServiceDefinition.methods.getSettings, GetSettingsRequest.fromPartial({}));
  if (!res.settings) throw new Error('The helper answered without settings.');
  return res.settings;
}

/** Sends only the fields named in `paths` (snake_case proto names); needs the install token. */
export async function updateSettings(settings: Settings, paths: readonly SettingsPath[]): Promise<Settings> {
  const res = await unary(
    SettingsServiceDefinition,
    SettingsServiceDefinition.methods.updateSettings,
    UpdateSettingsRequest.fromPartial({ settings, updateMask: [...paths] }),
    { auth: true },
  );
  if (!res.settings) throw new Error('The helper answered without settings.');
  return res.settings;
}

/** Proto field names, which is what a FieldMask carries. */
export const SETTINGS_PATHS = {
  deviceName: 'device_name',
  controlServerUrl: 'control_server_url',
  interfaceName: 'interface_name',
  listenPort: 'listen_port',
  mtu: 'mtu',
  broadcastEnabled: 'broadcast_enabled',
  broadcastPorts: 'broadcast_ports',
  metricsRetentionHours: 'metrics_retention_hours',
} as const satisfies Record<keyof Settings, string>;

export type SettingsField = keyof Settings;
export type SettingsPath = (typeof SETTINGS_PATHS)[SettingsField];

/** The form edits text; numbers and the port list are parsed on validation. */
export interface SettingsDraft {
  deviceName: string;
  controlServerUrl: string;
  interfaceName: string;
  listenPort: string;
  mtu: string;
  broadcastEnabled: boolean;
  broadcastPorts: string;
  metricsRetentionHours: string;
}

export type FieldErrors = Partial<Record<SettingsField, string>>;

export function draftFrom(s: Settings): SettingsDraft {
  return {
    deviceName: s.deviceName,
    // The helper stores the list comma-separated; a space after each comma reads better.
    controlServerUrl: s.controlServerUrl.split(',').join(', '),
    interfaceName: s.interfaceName,
    listenPort: String(s.listenPort),
    mtu: String(s.mtu),
    broadcastEnabled: s.broadcastEnabled,
    broadcastPorts: s.broadcastPorts.join(', '),
    metricsRetentionHours: String(s.metricsRetentionHours),
  };
}

const DEVICE_NAME = /^[\p{L}\p{N} ._'-]+$/u;
const STARTS_WITH_LETTER_OR_DIGIT = /^[\p{L}\p{N}]/u;
/** The helper refuses fixed ports below this (0 still means automatic). */
const MIN_FIXED_PORT = 1024;
const INTERFACE_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,14}$/;
const MAX_BROADCAST_PORTS = 64;

function parseInteger(text: string): number | undefined {
  const t = text.trim();
  return /^\d+$/.test(t) ? Number(t) : undefined;
}

function intInRange(text: string, min: number, max: number, what: string): number | string {
  const n = parseInteger(text);
  if (n === undefined) return `${what} must be a whole number.`;
  if (n < min || n > max) return `${what} must be between ${min} and ${max}.`;
  return n;
}

function validateUrl(text: string): string | undefined {
  if (text === '') return undefined;
  const r = checkControlUrl(text);
  if (r.ok) return undefined;
  switch (r.problem) {
    case 'too-long':
      return `At most ${MAX_CONTROL_URL_LENGTH} characters.`;
    case 'not-a-url':
      return 'Enter a URL like https://host:port, or leave it empty for the embedded server.';
    case 'scheme':
      return 'The URL must start with https:// or http://.';
    case 'no-host':
      return 'The URL needs a host name.';
    case 'credentials':
      return 'Do not put a user name or password in the URL.';
    case 'not-an-origin':
      return 'Only scheme, host and port: https://host:port.';
  }
}

/** The entries of a comma-separated control server list, trimmed; [] when the text is empty. */
const controlUrlList = (text: string): string[] => (text.trim() === '' ? [] : splitControlUrls(text));

// Shape and count only: the helper (helper/core/settings.ts) also normalises each URL and refuses
// one named twice, and its INVALID_ARGUMENT message shows on the field.
function validateControlUrls(text: string): string | undefined {
  const urls = controlUrlList(text);
  const problem = controlListProblem(urls);
  if (problem === 'empty-entry') return 'An entry of the list is empty: separate the URLs with single commas.';
  if (problem === 'too-many') return `At most ${MAX_CONTROL_URLS} URLs (instances of one control service).`;
  for (const [i, u] of urls.entries()) {
    const err = validateUrl(u);
    if (err) return urls.length > 1 ? `URL ${i + 1}: ${err}` : err;
  }
  return undefined;
}

function parsePorts(text: string): number[] | string {
  const parts = text.split(/[\s,]+/).filter((p) => p !== '');
  if (parts.length > MAX_BROADCAST_PORTS) return `At most ${MAX_BROADCAST_PORTS} ports.`;
  const ports: number[] = [];
  for (const p of parts) {
    const n = parseInteger(p);
    if (n === undefined || n < 1 || n > 65535) return `"${p}" is not a UDP port (1-65535).`;
    if (ports.includes(n)) return `Port ${n} is listed twice.`;
    ports.push(n);
  }
  return ports;
}

export interface Validated {
  readonly settings: Settings | undefined;
  readonly errors: FieldErrors;
}

/** Parses and checks the draft; `settings` is set only when there are no errors. */
export function validateDraft(d: SettingsDraft): Validated {
  const errors: FieldErrors = {};
  const nameLength = [...d.deviceName].length;
  if (nameLength < 1 || nameLength > 32) errors.deviceName = 'The device name needs 1 to 32 characters.';
  else if (!DEVICE_NAME.test(d.deviceName)) {
    errors.deviceName = "Use letters, digits, spaces and . _ - ' only.";
  } else if (!STARTS_WITH_LETTER_OR_DIGIT.test(d.deviceName)) {
    errors.deviceName = 'Start with a letter or a digit.';
  }
  const urlError = validateControlUrls(d.controlServerUrl);
  if (urlError) errors.controlServerUrl = urlError;
  if (!INTERFACE_NAME.test(d.interfaceName)) {
    errors.interfaceName = '1 to 15 characters from A-Z a-z 0-9 _ . -, starting with a letter.';
  }
  let listenPort = intInRange(d.listenPort, 0, 65535, 'The port');
  if (typeof listenPort === 'number' && listenPort !== 0 && listenPort < MIN_FIXED_PORT) {
    listenPort = `Use 0 (automatic) or a port from ${MIN_FIXED_PORT} to 65535.`;
  }
  if (typeof listenPort === 'string') errors.listenPort = listenPort;
  const mtu = intInRange(d.mtu, 1280, 1420, 'The MTU');
  if (typeof mtu === 'string') errors.mtu = mtu;
  const ports = parsePorts(d.broadcastPorts);
  if (typeof ports === 'string') errors.broadcastPorts = ports;
  const retention = intInRange(d.metricsRetentionHours, 1, 720, 'Retention');
  if (typeof retention === 'string') errors.metricsRetentionHours = retention;

  if (
    Object.keys(errors).length > 0 ||
    typeof listenPort !== 'number' ||
    typeof mtu !== 'number' ||
    typeof ports === 'string' ||
    typeof retention !== 'number'
  ) {
    return { settings: undefined, errors };
  }
  return {
    errors,
    settings: {
      deviceName: d.deviceName,
      controlServerUrl: controlUrlList(d.controlServerUrl).join(','),
      interfaceName: d.interfaceName,
      listenPort,
      mtu,
      broadcastEnabled: d.broadcastEnabled,
      broadcastPorts: ports,
      metricsRetentionHours: retention,
    },
  };
}

function sameValue(a: Settings[SettingsField], b: Settings[SettingsField]): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => v === b[i]);
  return a === b;
}

/** Mask paths of the fields that differ, in declaration order. */
export function changedPaths(saved: Settings, next: Settings): SettingsPath[] {
  return (Object.keys(SETTINGS_PATHS) as SettingsField[])
    .filter((f) => !sameValue(saved[f], next[f]))
    .map((f) => SETTINGS_PATHS[f]);
}

/** Which form field a server message is about, when it names a proto field. */
export function fieldOfMessage(message: string): SettingsField | undefined {
  for (const [field, path] of Object.entries(SETTINGS_PATHS) as [SettingsField, SettingsPath][]) {
    if (message.includes(path)) return field;
  }
  return undefined;
}
