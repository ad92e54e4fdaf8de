import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { flag, portFlag, type ParsedArgs } from '../core/args.js';
import type { Logger } from '../core/log.js';
import { defaultStateDir, ensureStateDir } from '../core/state-dir.js';
import { relayConfigFromArgs } from '../control/relay-config.js';
import { startControlServer, type ControlServer } from '../control/server.js';
import { checkPostgresUrl } from '../control/pg-control.js';

export const DEFAULT_STUN_PORT = 3478;

/** The URL friends reach an embedded control server at: this machine's first LAN IPv4 address. */
export function advertisedControlUrl(port: number, ifaces = networkInterfaces()): string {
  for (const list of Object.values(ifaces)) {
    for (const a of list ?? []) {
      // 10.66/16 is the virtual LAN itself: the control server must be reachable without it.
      if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('10.66.') && !a.address.startsWith('169.254.')) return `http://${a.address}:${port}`;
    }
  }
  return `http://127.0.0.1:${port}`;
}

/**
 * `--stun-ip IPv4` (STUN's primary address) and `--stun-alt-ip IPv4` (a second address of this
 * machine: STUN then answers RFC 5780 CHANGE-REQUEST, so helpers can classify their NAT's
 * filtering and tell address- from port-dependent mapping). Shared by `lanrage control` and the
 * helper's embedded control server.
 */
export function stunAddressFlags(args: ParsedArgs): { stunHost?: string; stunAltHost?: string } {
  const ip = flag(args, 'stun-ip');
  const alt = flag(args, 'stun-alt-ip');
  for (const [name, v] of [['stun-ip', ip], ['stun-alt-ip', alt]] as const) {
    if (v !== undefined && !isIPv4(v)) throw new Error(`--${name} must be an IPv4 address of this machine, not "${v.slice(0, 60)}"`);
  }
  if (alt === undefined) return ip !== undefined ? { stunHost: ip } : {};
  const listen = flag(args, 'listen');
  const primary = ip ?? (listen !== undefined && isIPv4(listen) && listen !== '0.0.0.0' ? listen : undefined);
  if (primary === undefined) throw new Error('--stun-alt-ip needs the primary STUN address too: add --stun-ip IPv4 (or --listen IPv4)');
  if (alt === primary) throw new Error('--stun-alt-ip must differ from the primary STUN address');
  return { stunHost: primary, stunAltHost: alt };
}

// `lanrage control`: the coordination server on its own (self-hosted, or the lab's server host).
export async function runControlRole(args: ParsedArgs, log: Logger): Promise<ControlServer> {
  const stateDir = flag(args, 'state-dir') ?? defaultStateDir();
  ensureStateDir(stateDir);
  const cert = flag(args, 'tls-cert');
  const key = flag(args, 'tls-key');
  if ((cert === undefined) !== (key === undefined)) throw new Error('--tls-cert and --tls-key go together');
  const advertiseHost = flag(args, 'advertise-host');
  const relays = relayConfigFromArgs(args);
  const stun = stunAddressFlags(args);
  // --db postgres://… : several instances share one database (SQLite in the state dir otherwise).
  const dbUrl = flag(args, 'db');
  if (dbUrl !== undefined) checkPostgresUrl(dbUrl);
  return startControlServer({
    ...(dbUrl !== undefined && { dbUrl }),
    host: flag(args, 'listen') ?? '0.0.0.0',
    grpcPort: portFlag(args, 'grpc-port', 8670),
    stunPort: portFlag(args, 'stun-port', DEFAULT_STUN_PORT),
    dbFile: join(stateDir, 'control.db'),
    log,
    ...(cert && key ? { tls: { certFile: cert, keyFile: key } } : {}),
    ...(advertiseHost ? { advertiseHost } : {}),
    ...(relays ? { relays } : {}),
    ...stun,
  });
}
