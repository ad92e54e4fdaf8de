// miniupnpd (Debian's miniupnpd-nftables) on a lab 'upnp' router: UPnP IGD, NAT-PMP and PCP on the
// router's LAN side, mapping ports with DNAT rules in the nft table topology.ts prepared.
//
// Its whole configuration lives in a private temp dir (config, lease file, pid file), it runs in
// the foreground (-d) as a lab process (ended by PID, and by lab.destroy()), and it never reads
// /etc. The lab's "internet" is TEST-NET-3, which miniupnpd counts as reserved: given an address
// from there on its WAN interface it refuses every mapping ("port forwarding is impossible"). So
// it learns its public address by STUN from the control server (ext_perform_stun), which answers
// CHANGE-REQUEST from its two addresses; miniupnpd thereby also checks that nothing in front of
// the router filters, as it does on real networks with a private WAN address.

import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Lab, LabSite } from './lab.js';
import { isPortMapKind, UPNP_CHAINS, UPNP_TABLE } from './topology.js';

export const MINIUPNPD = '/usr/sbin/miniupnpd';

export interface MiniupnpdOptions {
  /** The control server's STUN address (must answer CHANGE-REQUEST). */
  stunHost: string;
  stunPort: number;
  /** PCP lifetimes are clamped to [min, max] seconds (tests use a short max to see renewals). */
  minLifetime?: number;
  maxLifetime?: number;
  /** Enable UPnP IGD (default true) and NAT-PMP/PCP (default true). */
  upnp?: boolean;
  natpmp?: boolean;
}

export interface LeaseEntry {
  protocol: string;
  externalPort: number;
  internalClient: string;
  internalPort: number;
  /** Unix time the lease ends (0: permanent). */
  expires: number;
  description: string;
}

export interface Miniupnpd {
  proc: ChildProcess;
  dir: string;
  leaseFile: string;
  logs: string[];
  /** The lease file, parsed (miniupnpd rewrites it on every change). */
  leases(): LeaseEntry[];
  /** The DNAT rules in miniupnpd's prerouting chain, as `nft list` prints them. */
  dnatRules(): Promise<string[]>;
  /** Resolves when a log line matches. */
  waitLog(re: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

export function miniupnpdAvailable(): boolean {
  return existsSync(MINIUPNPD);
}

/** Lease file lines: PROTO:EXTPORT:IADDR:IPORT:TIMESTAMP:DESC. */
export function parseLeaseFile(text: string): LeaseEntry[] {
  const out: LeaseEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^(TCP|UDP):(\d+):([\d.]+):(\d+):(\d+):(.*)$/.exec(line.trim());
    if (m) out.push({ protocol: m[1]!, externalPort: Number(m[2]), internalClient: m[3]!, internalPort: Number(m[4]), expires: Number(m[5]), description: m[6]! });
  }
  return out;
}

export async function startMiniupnpd(lab: Lab, site: LabSite, o: MiniupnpdOptions): Promise<Miniupnpd> {
  if (!isPortMapKind(site.kind) || !site.router) throw new Error(`site ${site.name} is not a 'upnp' or 'upnp-symmetric' site`);
  const routerNs = site.router.ns;
  // The router's interfaces, found by address in its namespace: WAN has the public IP, LAN the gateway IP.
  const { stdout } = await lab.exec(routerNs, 'ip', ['-j', '-4', 'addr', 'show']);
  const ifs = JSON.parse(stdout) as Array<{ ifname: string; addr_info: Array<{ local: string; prefixlen: number }> }>;
  const byIp = (ip: string) => ifs.find((i) => i.addr_info.some((a) => a.local === ip));
  const wan = byIp(site.router.ip);
  const gwIp = site.lanIp.replace(/\.\d+$/, (last) => `.${Number(last.slice(1)) - 1}`);
  const lan = ifs.find((i) => i.addr_info.some((a) => a.local !== site.router!.ip && a.local !== '127.0.0.1'));
  if (!wan || !lan) throw new Error(`router ${routerNs}: cannot tell its WAN and LAN interfaces apart`);
  const lanAddr = lan.addr_info[0]!;
  if (lanAddr.local !== gwIp) throw new Error(`router ${routerNs}: LAN address ${lanAddr.local}, expected ${gwIp}`);

  const dir = mkdtempSync(join(tmpdir(), 'lanrage-miniupnpd-'));
  const leaseFile = join(dir, 'leases');
  const conf = [
    `ext_ifname=${wan.ifname}`,
    `listening_ip=${lan.ifname}`,
    `ext_perform_stun=yes`,
    `ext_stun_host=${o.stunHost}`,
    `ext_stun_port=${o.stunPort}`,
    `enable_upnp=${o.upnp === false ? 'no' : 'yes'}`,
    `enable_natpmp=${o.natpmp === false ? 'no' : 'yes'}`,
    'secure_mode=yes',
    `min_lifetime=${o.minLifetime ?? 120}`,
    `max_lifetime=${o.maxLifetime ?? 86400}`,
    `uuid=${randomUUID()}`,
    `lease_file=${leaseFile}`,
    'system_uptime=no',
    `upnp_table_name=${UPNP_TABLE}`,
    `upnp_nat_table_name=${UPNP_TABLE}`,
    `upnp_forward_chain=${UPNP_CHAINS.forward}`,
    `upnp_nat_chain=${UPNP_CHAINS.prerouting}`,
    `upnp_nat_postrouting_chain=${UPNP_CHAINS.postrouting}`,
    // Only the site's LAN, only unprivileged ports on both sides.
    `allow 1024-65535 ${lanAddr.local}/${lanAddr.prefixlen} 1024-65535`,
    'deny 0-65535 0.0.0.0/0 0-65535',
    '',
  ].join('\n');
  const confFile = join(dir, 'miniupnpd.conf');
  writeFileSync(confFile, conf, { mode: 0o600 });
  const proc = lab.spawn(routerNs, MINIUPNPD, ['-f', confFile, '-d', '-P', join(dir, 'miniupnpd.pid')]);
  const logs: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  const onLine = (line: string): void => {
    logs.push(line);
    if (process.env.LANRAGE_LAB_VERBOSE) process.stderr.write(`  miniupnpd| ${line}\n`);
    for (const w of [...waiters]) if (w.re.test(line)) w.resolve(line);
  };
  createInterface({ input: proc.stderr! }).on('line', onLine);
  createInterface({ input: proc.stdout! }).on('line', onLine);

  const m: Miniupnpd = {
    proc,
    dir,
    leaseFile,
    logs,
    leases: () => (existsSync(leaseFile) ? parseLeaseFile(readFileSync(leaseFile, 'utf8')) : []),
    async dnatRules() {
      const { stdout: out } = await lab.exec(routerNs, 'nft', ['list', 'chain', 'inet', UPNP_TABLE, UPNP_CHAINS.prerouting]);
      return out.split('\n').map((l) => l.trim()).filter((l) => l.includes('dnat'));
    },
    waitLog(re, timeoutMs = 15_000) {
      const seen = logs.find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`miniupnpd: no log matching ${re} within ${timeoutMs} ms:\n${logs.slice(-20).join('\n')}`)), timeoutMs);
        waiters.push({ re, resolve: (l) => (clearTimeout(t), resolve(l)) });
      });
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null && proc.pid) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  proc.once('exit', (code, sig) => onLine(`[exited ${code ?? sig}]`));
  // Ready (and allowed to map) only once STUN said nothing filters in front of the router.
  await m.waitLog(/Port forwarding is now enabled|STUN: \.\.\. done/, 15_000).catch(async (err: unknown) => {
    await m.stop();
    throw err;
  });
  if (m.logs.some((l) => /Port forwarding is now disabled/.test(l))) {
    await m.stop();
    throw new Error(`miniupnpd: STUN says the router cannot forward:\n${logs.join('\n')}`);
  }
  return m;
}
