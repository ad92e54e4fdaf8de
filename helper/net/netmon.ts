// Notices that this machine's network changed (a new Wi-Fi, a cable, a VPN, a new DHCP lease):
// the set of its IPv4 addresses changes. Then the NAT report is redone and the public socket's
// candidates refreshed at once instead of at the next periodic run.
//
// Polling os.networkInterfaces() every few seconds: it is a cheap getifaddrs() call, the same on
// every OS the helper may run on, and needs no privileges; a netlink listener would be Linux-only
// and systeminformation's interface list spawns processes, too heavy to poll. Our own WireGuard
// interface, loopback, link-local addresses and the virtual LAN are left out, so joining a party
// (which adds 10.66.x.y) is not a network change.

import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';

export const NETMON_POLL_MS = 10_000;

export interface AddressFilter {
  /** Interfaces to ignore (our WireGuard interface). */
  excludeInterfaces: readonly string[];
  /** Address prefix of the virtual LAN, ignored (default '10.66.'). */
  virtualPrefix?: string;
}

/** The machine's network as a comparable key: sorted "interface=address" of usable IPv4 addresses. */
export function networkKey(ifaces: NodeJS.Dict<NetworkInterfaceInfo[]>, f: AddressFilter): string {
  const vp = f.virtualPrefix ?? '10.66.';
  const out: string[] = [];
  for (const [name, list] of Object.entries(ifaces)) {
    if (f.excludeInterfaces.includes(name)) continue;
    for (const a of list ?? []) {
      if (a.family !== 'IPv4' || a.internal || a.address.startsWith('169.254.') || a.address.startsWith(vp)) continue;
      out.push(`${name}=${a.address}/${a.netmask}`);
    }
  }
  return out.sort().join(',');
}

export interface NetMonOptions extends AddressFilter {
  onChange(before: string, after: string): void;
  pollMs?: number;
  clock?: Clock;
  /** Tests: replaces os.networkInterfaces(). */
  read?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
}

export class NetMon {
  private readonly clock: Clock;
  private readonly read: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  private key: string | null = null;
  private cancel: () => void = () => {};
  private stopped = false;

  constructor(private readonly o: NetMonOptions) {
    this.clock = o.clock ?? systemClock;
    this.read = o.read ?? networkInterfaces;
  }

  start(): void {
    this.key = this.current();
    this.schedule();
  }

  /** Looks now; returns whether the network changed since the last look. */
  check(): boolean {
    const now = this.current();
    const before = this.key;
    this.key = now;
    if (before === null || before === now) return false;
    this.o.onChange(before, now);
    return true;
  }

  stop(): void {
    this.stopped = true;
    this.cancel();
  }

  private current(): string {
    return networkKey(this.read(), this.o);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.cancel = this.clock.setTimeout(() => {
      try {
        this.check();
      } finally {
        this.schedule();
      }
    }, this.o.pollMs ?? NETMON_POLL_MS);
  }
}
