import { networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import type { Policy } from '../authz/authz.js';
import { ApiError, invalidArgument, Status } from '../core/api-error.js';
import type { Logger } from '../core/log.js';
import type { MetricsEndpoint } from '../web/metrics-endpoint.js';
import type { PairedDeviceRow, PairedDevicesRepo, RemoteScopeName } from '../store/paired-devices-repo.js';
import type { StateRepo } from '../store/state-repo.js';
import { fingerprintOf, loadOrMakeCert } from './cert.js';
import { hostPort, startRemoteListener, type RemoteListener } from './listener.js';
import { PairingCodes } from './pairing-codes.js';
import { AttemptLimiter } from './rate-limit.js';
import { hashSecret, isSecretShaped, newDeviceId, newSecret } from './secrets.js';

// Phone access (issue 11): off by default; when on, an HTTPS listener on a LAN address, one-time
// pairing codes traded for scoped device tokens, and revocation that ends open streams at once.
// The configuration lives in the state table, so it survives restarts.

export const DEFAULT_REMOTE_PORT = 8668;
const CONFIG_KEY = 'remote_access';
// Pairing attempts (right or wrong): 5 at once and 5 a minute per address, 20 / 20 for everybody.
const PER_SOURCE = { burst: 5, perMinute: 5 };
const ALL_SOURCES = { burst: 20, perMinute: 20 };
const SEEN_EVERY_MS = 60_000;
const NAME_RE = /^[\p{L}\p{N} ._'()-]{1,40}$/u;

export interface RemoteConfig {
  enabled: boolean;
  address: string;
  port: number;
}

const isConfig = (v: unknown): v is RemoteConfig => {
  const c = v as Partial<RemoteConfig> | null;
  return typeof c === 'object' && c !== null && typeof c.enabled === 'boolean' && typeof c.address === 'string' && typeof c.port === 'number';
};

export interface RemoteView {
  enabled: boolean;
  address: string;
  port: number;
  url: string;
  fingerprint: string;
}

export interface RemoteAccessDeps {
  stateDir: string;
  store: StateRepo;
  devices: PairedDevicesRepo;
  grpcTarget: () => string;
  staticDir: string | null;
  policy: Policy;
  metrics?: MetricsEndpoint | undefined;
  log: Logger;
  /** Interfaces the listener must never use: the WireGuard one (party members would reach it). */
  excludeInterfaces?: () => string[];
  /** Injected in tests; os.networkInterfaces by default. */
  localAddresses?: () => string[];
  now?: () => number;
}

/** This machine's non-loopback addresses, IPv4 first, leaving out `exclude`d interfaces. */
export function lanAddresses(exclude: readonly string[] = []): string[] {
  const all = Object.entries(networkInterfaces()).flatMap(([name, l]) => (exclude.includes(name) ? [] : l ?? []));
  const usable = all.filter((a) => !a.internal && !(a.family === 'IPv6' && a.address.startsWith('fe80')));
  return [...usable.filter((a) => a.family === 'IPv4'), ...usable.filter((a) => a.family === 'IPv6')].map((a) => a.address);
}

export class RemoteAccess {
  private config: RemoteConfig;
  private listener: RemoteListener | undefined;
  private fingerprint = '';
  private readonly codes: PairingCodes;
  private readonly limiter: AttemptLimiter;
  private readonly lastSeen = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly deps: RemoteAccessDeps) {
    this.now = deps.now ?? Date.now;
    this.codes = new PairingCodes(this.now);
    this.limiter = new AttemptLimiter(PER_SOURCE, ALL_SOURCES, this.now);
    this.config = deps.store.get(CONFIG_KEY, isConfig) ?? { enabled: false, address: '', port: DEFAULT_REMOTE_PORT };
  }

  /** Resumes the listener when it was on; a vanished address leaves it off with a warning. */
  async start(): Promise<void> {
    if (!this.config.enabled) return;
    try {
      await this.open(this.config);
    } catch (err) {
      this.deps.log.warn('remote access stays off: could not listen; turn it on again in Settings, Phone', { address: this.config.address, port: this.config.port, err: err instanceof Error ? err.message : String(err) });
    }
  }

  view(): RemoteView {
    const on = this.listener !== undefined;
    return {
      enabled: on,
      address: this.config.address,
      port: this.config.port,
      url: on ? `https://${hostPort(this.config.address, this.config.port)}` : '',
      fingerprint: on ? this.fingerprint : '',
    };
  }

  async set(enabled: boolean, address: string, port: number): Promise<RemoteView> {
    if (!enabled) {
      await this.closeListener();
      this.codes.clear();
      this.saveConfig({ ...this.config, enabled: false });
      return this.view();
    }
    const next = this.validate(address, port);
    await this.closeListener();
    try {
      await this.open(next);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new ApiError(Status.FAILED_PRECONDITION, `could not listen on ${hostPort(next.address, next.port)} (${code ?? 'error'}): choose another port or address`);
    }
    this.saveConfig(next);
    return this.view();
  }

  createPairing(scope: RemoteScopeName): { link: string; expiresMs: number; fingerprint: string } {
    const v = this.view();
    if (!v.enabled) throw new ApiError(Status.FAILED_PRECONDITION, 'remote access is off: turn it on first (Settings, Phone)');
    const { code, expiresMs } = this.codes.create(scope);
    return { link: `${v.url}/#pair=${code}`, expiresMs, fingerprint: v.fingerprint };
  }

  pair(code: string, deviceName: string): { token: string; device: PairedDeviceRow } {
    const name = deviceName.trim();
    if (!NAME_RE.test(name)) throw invalidArgument('device_name must be 1-40 letters, digits, spaces or ._\'()-');
    if (!isSecretShaped(code)) throw invalidArgument('code must be the 43-character code from the pairing link');
    const scope = this.codes.consume(code);
    if (scope === null) throw new ApiError(Status.PERMISSION_DENIED, 'this pairing code is wrong, expired or already used: make a new QR code on the desktop');
    const token = newSecret();
    const t = this.now();
    const device: PairedDeviceRow = { deviceId: newDeviceId(), name, scope, createdMs: t, lastSeenMs: t };
    this.deps.devices.add(device, hashSecret(token));
    this.deps.log.info('device paired', { deviceId: device.deviceId, name, scope });
    return { token, device };
  }

  list(): PairedDeviceRow[] {
    return this.deps.devices.list();
  }

  revoke(deviceId: string): void {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(deviceId)) throw invalidArgument('device_id must be an id from ListPairedDevices');
    if (!this.deps.devices.remove(deviceId)) throw new ApiError(Status.NOT_FOUND, `no paired device ${deviceId}`);
    const ended = this.listener?.endDevice(deviceId) ?? 0;
    this.lastSeen.delete(deviceId);
    this.deps.log.info('device revoked', { deviceId, endedCalls: ended });
  }

  /** For the listener: the device a token belongs to (and a throttled "last seen"). */
  deviceFor(token: string): { deviceId: string; scope: RemoteScopeName } | undefined {
    if (!isSecretShaped(token)) return undefined;
    const d = this.deps.devices.byTokenHash(hashSecret(token));
    if (!d) return undefined;
    const t = this.now();
    if (t - (this.lastSeen.get(d.deviceId) ?? d.lastSeenMs) >= SEEN_EVERY_MS) {
      this.lastSeen.set(d.deviceId, t);
      this.deps.devices.seen(d.deviceId, t);
    }
    return { deviceId: d.deviceId, scope: d.scope };
  }

  async close(): Promise<void> {
    await this.closeListener();
  }

  private validate(address: string, port: number): RemoteConfig {
    const local = this.deps.localAddresses?.() ?? lanAddresses(this.deps.excludeInterfaces?.() ?? []);
    const addr = address.trim() === '' ? local.find((a) => isIP(a) === 4) ?? '' : address.trim();
    if (addr === '') throw new ApiError(Status.FAILED_PRECONDITION, 'this machine has no LAN address to listen on: connect it to a network first');
    if (isIP(addr) === 0) throw invalidArgument('listen_address must be an IPv4 or IPv6 address');
    if (!local.includes(addr)) throw invalidArgument(`listen_address ${addr} is not an address of this machine (it has: ${local.join(', ') || 'none'})`);
    if (port !== 0 && (port < 1024 || port > 65535)) throw invalidArgument('port must be 0 (8668) or 1024-65535');
    return { enabled: true, address: addr, port: port || DEFAULT_REMOTE_PORT };
  }

  private async open(c: RemoteConfig): Promise<void> {
    const cert = await loadOrMakeCert(this.deps.stateDir, c.address);
    this.listener = await startRemoteListener({
      address: c.address,
      port: c.port,
      cert: cert.cert,
      key: cert.key,
      grpcTarget: this.deps.grpcTarget(),
      staticDir: this.deps.staticDir,
      policy: this.deps.policy,
      deviceFor: (t) => this.deviceFor(t),
      limiter: this.limiter,
      metrics: this.deps.metrics,
      log: this.deps.log,
    });
    this.config = c;
    this.fingerprint = fingerprintOf(cert.cert);
  }

  private async closeListener(): Promise<void> {
    const l = this.listener;
    this.listener = undefined;
    await l?.close();
  }

  private saveConfig(c: RemoteConfig): void {
    this.config = c;
    this.deps.store.put(CONFIG_KEY, c);
  }
}
