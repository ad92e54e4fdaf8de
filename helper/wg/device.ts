import type { Logger } from '../core/log.js';
import { readProcText } from '../core/proc-text.js';
import { publicKeyOf } from './keys.js';
import { kernelWireguardPossible, linkAddKernelWireguard, linkConfigure, linkDelete, linkExists, linkKind, linkPresent } from './iproute.js';
import { uapiGet, uapiSet, uapiSocketPath, type UapiTiming } from './uapi-socket.js';
import type { DeviceSet, DeviceState } from './uapi.js';
import { checkAllowedIps, checkCidr, checkEndpoint, checkIntRange, checkInterfaceName, checkKey, MTU_MAX, MTU_MIN } from './validate.js';
import { wgToolGet, wgToolSet } from './wgtool.js';
import { netDevCounters, StatsGate } from './stats-gate.js';
import { clearStaleSocket, endOrphan, findWireguardGoPids, startWireguardGo, type WireguardGoProcess } from './wggo.js';

// One WireGuard interface: the kernel's where the module exists, else a wireguard-go child.
// Both are driven through the same two calls (set a DeviceSet, get a DeviceState), so everything
// above this file is backend-blind. Switching a peer's path is one setEndpoint.

export interface WgPeer {
  publicKey: string;
  /** "ip:port" or "[v6]:port"; left as it is (or as WireGuard roamed it) when absent. */
  endpoint?: string;
  allowedIps: string[];
  persistentKeepaliveSeconds?: number;
}

export interface WgPeerStats {
  publicKey: string;
  endpoint: string | null;
  /** Unix epoch milliseconds of the last completed handshake; null if none yet. */
  lastHandshakeMs: number | null;
  rxBytes: number;
  txBytes: number;
}

export interface WgDevice {
  readonly name: string;
  readonly backend: 'kernel' | 'wireguard-go';
  /** The port WireGuard's own UDP socket actually bound (read back, also when 0 was asked). */
  readonly listenPort: number;
  /** wireguard-go's PID (for CPU metrics); null with the kernel backend. */
  readonly pid: number | null;
  /** Adds the peer or replaces its settings (allowed IPs replaced, keepalive 0 when absent). */
  setPeer(p: WgPeer): Promise<void>;
  /** setPeer for several peers in one configuration change (one UAPI round trip or `wg` run); `timing` is filled in with wireguard-go. */
  setPeers(ps: readonly WgPeer[], timing?: UapiTiming): Promise<void>;
  /** The path switch: points an existing peer at another endpoint. */
  setEndpoint(publicKey: string, endpoint: string): Promise<void>;
  /** Removes the peer; removing an unknown peer is not an error. */
  removePeer(publicKey: string): Promise<void>;
  /** The same array (do not modify it) while WireGuard was not read again (stats-gate.ts). */
  stats(): Promise<readonly WgPeerStats[]>;
  /** Removes the interface, ends wireguard-go (by PID) and deletes its UAPI socket. Idempotent. */
  close(): Promise<void>;
}

export interface WgDeviceOptions {
  name: string;
  privateKey: string;
  /** The device's virtual address with the party's prefix, e.g. "10.66.0.2/16": the prefix makes the route. */
  address: string;
  mtu: number;
  /** 0 or absent: a random free port. */
  listenPort?: number;
  log: Logger;
}

interface Control {
  set(s: DeviceSet, timing?: UapiTiming): Promise<void>;
  get(): Promise<DeviceState>;
}

/**
 * The interface's /proc/net/dev counters, read synchronously into a kept buffer (proc-text.ts):
 * a procfs read takes microseconds, while the promise API's open/stat/read/close round trips
 * through the thread pool, and their objects, were a visible share of an idle helper's
 * per-second metrics round (and of its GC).
 */
function netDevText(name: string): string | null {
  try {
    return netDevCounters(readProcText('/proc/net/dev'), name);
  } catch {
    return null;
  }
}

export async function createWgDevice(opts: WgDeviceOptions): Promise<WgDevice> {
  const name = checkInterfaceName(opts.name);
  const privateKey = checkKey('private key', opts.privateKey);
  const address = checkCidr(opts.address, 'interface address');
  const mtu = checkIntRange('mtu', opts.mtu, MTU_MIN, MTU_MAX);
  const wantPort = checkIntRange('listen port', opts.listenPort ?? 0, 0, 65535);
  const log = opts.log.child({ wg: name });
  if (await linkPresent(name)) throw new Error(`interface ${name} already exists: a leftover is removed by removeStaleInterface, anything else needs another name`);

  let backend: WgDevice['backend'];
  let proc: WireguardGoProcess | null = null;
  let control: Control;
  const kernel = (await kernelWireguardPossible()) ? await linkAddKernelWireguard(name) : { ok: false as const, reason: 'this kernel has no WireGuard module' };
  if (kernel.ok) {
    backend = 'kernel';
    control = { set: (s) => wgToolSet(name, s), get: () => wgToolGet(name) };
  } else {
    log.info('no kernel WireGuard; using wireguard-go', { reason: kernel.reason });
    backend = 'wireguard-go';
    proc = await startWireguardGo(name, log);
    const sock = uapiSocketPath(name);
    const p = proc;
    // Said plainly instead of "connection refused" on a socket file the dead process left behind.
    const alive = (): void => {
      if (!p.running()) throw new Error(`wireguard-go for ${name} has exited: the tunnel is down`);
    };
    control = {
      async set(s, timing) {
        alive();
        await uapiSet(sock, s, timing);
      },
      async get() {
        alive();
        return uapiGet(sock);
      },
    };
  }

  const teardown = async (): Promise<void> => {
    if (proc) await proc.stop();
    if (await linkExists(name)) await linkDelete(name);
    if (proc) await clearStaleSocket(name);
  };

  let listenPort: number;
  try {
    await control.set({ privateKey, listenPort: wantPort });
    await linkConfigure(name, address, mtu);
    // Read after link up: that is when the socket is (re)bound, and a requested 0 becomes a port.
    const state = await control.get();
    if (state.publicKey !== publicKeyOf(privateKey)) throw new Error(`${name} did not take the private key`);
    if (state.listenPort === 0) throw new Error(`${name} has no listening port`);
    listenPort = state.listenPort;
  } catch (err) {
    await teardown().catch((e: unknown) => log.error('cleanup after a failed start failed', { err: e as Error }));
    throw err;
  }
  log.info('WireGuard device up', { backend, listenPort, address, mtu, pid: proc?.pid });

  let closed: Promise<void> | null = null;
  const open = (): void => {
    if (closed) throw new Error(`WireGuard device ${name} is closed`);
  };
  // Skip WireGuard reads while the interface is idle (stats-gate.ts): with the kernel backend each
  // is a `wg` process; with wireguard-go a UAPI connection, a full dump and its parse, which were
  // the largest item in an idle helper's profile (metrics and the traffic watch each read).
  const gate: StatsGate | null = new StatsGate();
  let lastStats: readonly WgPeerStats[] = [];
  const setPeers = async (ps: readonly WgPeer[], timing?: UapiTiming): Promise<void> => {
    open();
    if (ps.length === 0) return;
    await control.set({
      peers: ps.map((p) => ({
        publicKey: checkKey('peer public key', p.publicKey),
        ...(p.endpoint !== undefined ? { endpoint: checkEndpoint(p.endpoint) } : {}),
        allowedIps: checkAllowedIps(p.allowedIps),
        persistentKeepaliveSeconds: checkIntRange('persistent keepalive', p.persistentKeepaliveSeconds ?? 0, 0, 65535),
      })),
    }, timing);
    gate?.invalidate();
  };
  return {
    name,
    backend,
    listenPort,
    pid: proc?.pid ?? null,
    setPeer: (p) => setPeers([p]),
    setPeers,
    async setEndpoint(publicKey, endpoint) {
      open();
      checkKey('peer public key', publicKey);
      checkEndpoint(endpoint);
      const known = (await control.get()).peers.some((p) => p.publicKey === publicKey);
      if (!known) throw new Error(`${name} has no peer ${publicKey}`);
      // update_only: if the peer was removed meanwhile, it must not come back as a side effect.
      await control.set({ peers: [{ publicKey, updateOnly: true, endpoint }] });
      gate?.invalidate();
    },
    async removePeer(publicKey) {
      open();
      await control.set({ peers: [{ publicKey: checkKey('peer public key', publicKey), updateOnly: true, remove: true }] });
      gate?.invalidate();
    },
    async stats() {
      open();
      let counters: string | null = null;
      if (gate) {
        counters = netDevText(name);
        // The same array again: callers (metrics round, traffic watch) skip their work on identity.
        if (!gate.mustRead(counters, Date.now())) return lastStats;
      }
      const at = Date.now();
      lastStats = (await control.get()).peers.map((p) => ({
        publicKey: p.publicKey,
        endpoint: p.endpoint,
        lastHandshakeMs: p.lastHandshakeMs,
        rxBytes: p.rxBytes,
        txBytes: p.txBytes,
      }));
      gate?.read(counters, at);
      return lastStats;
    },
    close() {
      closed ??= teardown().then(() => log.info('WireGuard device removed'));
      return closed;
    },
  };
}

/**
 * Cleans what a crashed helper left under this name: its orphaned wireguard-go (recognised by the
 * exact argv we start it with, ended by PID), a kernel WireGuard link, a socket file nobody serves.
 * Leaves alone any interface of another kind. Returns whether anything was cleaned.
 */
export async function removeStaleInterface(name: string, log: Logger): Promise<boolean> {
  checkInterfaceName(name);
  const l = log.child({ wg: name });
  let cleaned = false;
  for (const pid of findWireguardGoPids(name)) {
    l.warn('ending a leftover wireguard-go', { pid });
    await endOrphan(pid, l);
    cleaned = true;
  }
  const kind = await linkKind(name);
  if (kind === 'wireguard') {
    l.warn('removing a leftover WireGuard interface');
    await linkDelete(name);
    cleaned = true;
  } else if (kind !== null) {
    l.warn('an interface with this name exists and is not a leftover of ours; leaving it', { kind });
  }
  try {
    if ((await clearStaleSocket(name)) === 'removed') {
      l.warn('removed a stale UAPI socket', { socket: uapiSocketPath(name) });
      cleaned = true;
    }
  } catch (err) {
    l.warn('the UAPI socket is in use; leaving it', { err: err as Error });
  }
  return cleaned;
}
