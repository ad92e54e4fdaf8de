// Lab plumbing for the LAN-illusion tests: a real party (control server, helpers, wireguard-go,
// real NATs) and, beside each helper in its site namespace, a LanRelay driver talking over the
// party's virtual IPs; stand-in games (lan-game.ts); and avahi (a real mDNS stack nobody on the
// team wrote) run per namespace with a private D-Bus system bus.

import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DEFAULT_LAN_RELAY_PORT, DEFAULT_LIMITS, type LanCounters } from '../../../helper/lan/relay.js';
import type { Lab, LabSite } from '../lab.js';
import { PartyLab, waitParty, type PartyJson } from '../party-lab.js';
import { LAN_GAME } from './lan-game.js';
import { LAN_RELAY_DRIVER, type LanRelayDriverConfig } from './lan-relay.js';

export const RELAY_PORT = DEFAULT_LAN_RELAY_PORT;
const DIRECT = 2;

/** Collects a child's stdout as JSON records and its stderr as text; waits for records. */
export class Lines {
  readonly records: Array<Record<string, unknown>> = [];
  readonly stderr: string[] = [];
  private waiters: Array<{ pred: (r: Record<string, unknown>) => boolean; resolve: (r: Record<string, unknown>) => void }> = [];

  constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(l) as Record<string, unknown>;
      } catch {
        this.stderr.push(`stdout: ${l}`);
        return;
      }
      this.records.push(rec);
      for (const w of [...this.waiters]) if (w.pred(rec)) (this.waiters.splice(this.waiters.indexOf(w), 1), w.resolve(rec));
    });
    createInterface({ input: proc.stderr! }).on('line', (l) => {
      this.stderr.push(l);
      if (process.env.LANRAGE_LAB_VERBOSE) process.stderr.write(`  | ${l}\n`);
    });
  }

  wait(pred: (r: Record<string, unknown>) => boolean, what: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const seen = this.records.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${what}: nothing within ${timeoutMs} ms; stderr: ${this.stderr.slice(-10).join(' | ')}`)), timeoutMs);
      const onExit = (code: number | null): void => reject(new Error(`${what}: process exited (${code}); stderr: ${this.stderr.slice(-10).join(' | ')}`));
      this.proc.once('exit', onExit);
      this.waiters.push({
        pred,
        resolve: (r) => {
          clearTimeout(t);
          this.proc.off('exit', onExit);
          resolve(r);
        },
      });
    });
  }
}

export interface LanParty {
  pl: PartyLab;
  sites: LabSite[];
  /** Virtual IP of each site, in site order. */
  vips: string[];
  /** WireGuard interface of each site. */
  ifaces: string[];
}

/**
 * Control server, one helper per site, everyone in one party with direct paths, tunnels passing
 * pings. `helperLan: false` switches the helpers' own LAN relay off (broadcast_enabled), for tests
 * that run a LanRelay driver on the relay port themselves.
 */
export async function startLanParty(lab: Lab, names: string[], opts: { helperLan: boolean; extraArgs?: (site: LabSite) => string[] } = { helperLan: false }): Promise<LanParty> {
  const pl = new PartyLab(lab);
  const sites = names.map((n) => lab.site(n));
  await pl.startControl();
  await Promise.all(sites.map((s) => pl.startHelper(s, { extraArgs: opts.extraArgs?.(s) ?? [] })));
  if (!opts.helperLan) for (const s of sites) await pl.cli(s, ['settings', 'set', 'broadcast_enabled', 'false']);
  const created = await pl.cli<PartyJson>(sites[0]!, ['create', 'LAN illusion']);
  for (const s of sites.slice(1)) await pl.cli(s, ['join', created.party!.inviteLink]);
  const views = await Promise.all(sites.map((s) => waitParty(pl, s, (p) => p.peers.length === names.length - 1 && p.peers.every((x) => x.path === DIRECT), 30_000)));
  const vips = views.map((v) => v.party!.members.find((m) => m.isSelf)!.virtualIp);
  const ifaces = sites.map((s) => `lr${lab.id}${lab.sites.indexOf(s)}`);
  // The tunnels carry traffic before anything is measured over them.
  for (let i = 1; i < sites.length; i++) await waitPing(lab, sites[0]!, vips[i]!);
  return { pl, sites, vips, ifaces };
}

export async function waitPing(lab: Lab, from: LabSite, ip: string, timeoutMs = 20_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const ok = await lab.exec(from.host.ns, 'ping', ['-c', '1', '-W', '1', ip], { timeoutMs: 5000 }).then(() => true, () => false);
    if (ok) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`${ip} did not answer through the tunnel within ${timeoutMs} ms`);
  }
}

export interface RelayHandle {
  counters(): Promise<LanCounters & { cpuUs: number }>;
  call<T = unknown>(op: string, args?: Record<string, unknown>): Promise<T>;
  stderr: string[];
}

export async function startRelay(lab: Lab, site: LabSite, cfg: LanRelayDriverConfig): Promise<RelayHandle> {
  const proc = lab.spawn(site.host.ns, process.execPath, [LAN_RELAY_DRIVER, JSON.stringify(cfg)], { env: { ...process.env, LANRAGE_LOG: 'debug' } });
  const lines = new Lines(proc);
  await lines.wait((r) => r.ready === true, `LAN relay in ${site.name}`);
  let next = 1;
  const call = async <T>(op: string, args: Record<string, unknown> = {}): Promise<T> => {
    const id = next++;
    proc.stdin!.write(JSON.stringify({ id, op, args }) + '\n');
    const a = await lines.wait((r) => r.id === id, `${op} in ${site.name}'s relay`);
    if (a.ok !== true) throw new Error(`${op} in ${site.name}'s relay: ${String(a.error)}`);
    return a.result as T;
  };
  return { call, counters: () => call('counters'), stderr: lines.stderr };
}

export interface GameServer {
  lines: Lines;
  stats(): Promise<{ flood: number; discover: Record<string, number> }>;
}

/** Our stand-in game server: binds PORT without SO_REUSEADDR (fails if anything holds the port). */
export async function startGameServer(lab: Lab, site: LabSite, port: number, name: string): Promise<GameServer> {
  const proc = lab.spawn(site.host.ns, process.execPath, [LAN_GAME, 'server', String(port), name]);
  const lines = new Lines(proc);
  await lines.wait((r) => r.ev === 'listening', `game server in ${site.name}`, 5000);
  return {
    lines,
    async stats() {
      const before = lines.records.filter((r) => r.ev === 'stats').length;
      proc.stdin!.write('stats\n');
      await lines.wait(() => lines.records.filter((r) => r.ev === 'stats').length > before, 'game stats', 5000);
      return lines.records.filter((r) => r.ev === 'stats').pop() as unknown as { flood: number; discover: Record<string, number> };
    },
  };
}

/**
 * Runs one lan-game command to its end in a site; returns its last JSON line. `mayFail`: a client
 * that found nothing (exit 1 with {"ok":false}) is an answer, not an error.
 */
/**
 * The most flood datagrams one sending socket gets through the default per-source limit while
 * the flood was captured for at most `ms`: the burst, then the rate for that long (a one-second
 * flood takes longer on a loaded machine, and the bucket refills meanwhile).
 */
export function floodLimit(ms: number): number {
  const { burst, ratePerSec } = DEFAULT_LIMITS.perSource;
  return burst + Math.ceil((ratePerSec * ms) / 1000);
}

export async function runGame<T = Record<string, unknown>>(lab: Lab, site: LabSite, args: string[], timeoutMs = 70_000, mayFail = false): Promise<T> {
  try {
    const { stdout } = await lab.exec(site.host.ns, process.execPath, [LAN_GAME, ...args], { timeoutMs });
    return JSON.parse(stdout.trim().split('\n').pop() ?? 'null') as T;
  } catch (err) {
    const out = (err as { stdout?: string }).stdout;
    if (mayFail && out?.trim().startsWith('{"ok":false')) return JSON.parse(out.trim().split('\n').pop()!) as T;
    throw new Error(`lan-game ${args.join(' ')} in ${site.name}: ${(err as Error).message}${out ? `; stdout: ${out}` : ''}`);
  }
}

/**
 * Watches a site's NAT router for packets with a source in `cidr` (a leak of the LAN illusion
 * onto a real LAN); the returned function lists what leaked ("saddr > daddr proto dport").
 */
export async function watchLeaks(lab: Lab, site: LabSite, cidr: string): Promise<() => Promise<string[]>> {
  const ns = site.router?.ns ?? site.host.ns;
  await lab.exec(ns, 'nft', ['-f', '-'], {
    input:
      `table ip lanleak {\n  set leaked {\n    type ipv4_addr . ipv4_addr . inet_proto . inet_service\n    size 1024\n  }\n` +
      `  chain pre {\n    type filter hook prerouting priority raw; policy accept;\n` +
      `    ip saddr ${cidr} meta l4proto udp add @leaked { ip saddr . ip daddr . meta l4proto . udp dport }\n` +
      `    ip saddr ${cidr} meta l4proto != udp add @leaked { ip saddr . ip daddr . meta l4proto . 0 }\n  }\n}\n`,
  });
  return async () => {
    const { stdout } = await lab.exec(ns, 'nft', ['-j', 'list', 'set', 'ip', 'lanleak', 'leaked']);
    const doc = JSON.parse(stdout) as { nftables: Array<{ set?: { elem?: Array<{ concat: unknown[] } | { elem: { val: { concat: unknown[] } } }> } }> };
    const elems = doc.nftables.find((x) => x.set)?.set?.elem ?? [];
    return elems.map((e) => JSON.stringify('concat' in e ? e.concat : e.elem.val.concat));
  };
}

/** Packets a site's WireGuard interface sent and received (the tunnel's inner side). */
export async function tunnelPackets(lab: Lab, site: LabSite, iface: string): Promise<{ tx: number; rx: number }> {
  const { stdout } = await lab.exec(site.host.ns, 'ip', ['-j', '-s', 'link', 'show', 'dev', iface]);
  const link = (JSON.parse(stdout) as Array<{ stats64: { tx: { packets: number }; rx: { packets: number } } }>)[0]!;
  return { tx: link.stats64.tx.packets, rx: link.stats64.rx.packets };
}

// --- avahi -----------------------------------------------------------------------------------

export const AVAHI_TOOLS = ['avahi-daemon', 'avahi-publish', 'avahi-browse', 'dbus-daemon'];

export interface Avahi {
  env: string[];
  /** Starts `avahi-publish ARGS` and waits until avahi says the name is established. */
  publish(args: string[]): Promise<void>;
  /** `avahi-browse -rpt TYPE` until a resolved entry appears; returns its fields. */
  resolve(type: string, timeoutMs?: number): Promise<{ name: string; host: string; address: string; port: number }>;
  cleanup(): void;
}

/**
 * avahi-daemon in a site namespace. Its D-Bus system bus is a private dbus-daemon (each namespace
 * needs its own org.freedesktop.Avahi), and its runtime directory a tmpfs in the mount namespace
 * `ip netns exec` makes (avahi refuses to start when another instance's pid file is there).
 */
export async function startAvahi(lab: Lab, site: LabSite, hostName: string): Promise<Avahi> {
  const dir = mkdtempSync(join(tmpdir(), `lanrage-avahi-${site.name}-`));
  const { stdout } = await lab.exec(site.host.ns, 'ip', ['-j', 'route', 'show', 'default']);
  const lanIf = (JSON.parse(stdout) as Array<{ dev: string }>)[0]?.dev;
  if (!lanIf) throw new Error(`no default route in ${site.name}`);
  const bus = join(dir, 'bus');
  writeFileSync(
    join(dir, 'bus.conf'),
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${bus}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/>
  </policy>
</busconfig>
`,
  );
  writeFileSync(
    join(dir, 'avahi.conf'),
    `[server]\nhost-name=${hostName}\nuse-ipv4=yes\nuse-ipv6=no\nallow-interfaces=${lanIf}\nenable-dbus=yes\ndisallow-other-stacks=no\n` +
      `[wide-area]\nenable-wide-area=no\n[publish]\npublish-hinfo=no\npublish-workstation=no\n[reflector]\nenable-reflector=no\n[rlimits]\n`,
  );
  const dbus = lab.spawn(site.host.ns, 'dbus-daemon', [`--config-file=${join(dir, 'bus.conf')}`, '--nofork', '--print-address']);
  const dbusErr: string[] = [];
  createInterface({ input: dbus.stderr! }).on('line', (l) => dbusErr.push(l));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`dbus-daemon in ${site.name} did not start: ${dbusErr.join(' | ')}`)), 5000);
    // It prints its address once it listens.
    createInterface({ input: dbus.stdout! }).once('line', () => (clearTimeout(t), resolve()));
  });
  const env = [`DBUS_SYSTEM_BUS_ADDRESS=unix:path=${bus}`];
  const envObj = { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${bus}` };
  // A constant script; the only argument is our own config path, passed as $1.
  const daemon = lab.spawn(site.host.ns, 'sh', ['-c', 'mount -t tmpfs lanrage-avahi /run && exec avahi-daemon -f "$1" --no-drop-root --no-chroot --no-rlimits --debug', 'sh', join(dir, 'avahi.conf')], { env: envObj });
  const daemonLog: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`avahi-daemon in ${site.name} did not start: ${daemonLog.slice(-10).join(' | ')}`)), 10_000);
    for (const stream of [daemon.stdout!, daemon.stderr!]) {
      createInterface({ input: stream }).on('line', (l) => {
        daemonLog.push(l);
        if (process.env.LANRAGE_LAB_VERBOSE) process.stderr.write(`  avahi ${site.name} | ${l}\n`);
        if (/Server startup complete/.test(l)) (clearTimeout(t), resolve());
      });
    }
    daemon.once('exit', (code) => reject(new Error(`avahi-daemon in ${site.name} exited (${code}): ${daemonLog.slice(-10).join(' | ')}`)));
  });
  return {
    env,
    async publish(args) {
      const p = lab.spawn(site.host.ns, 'avahi-publish', args, { env: envObj });
      const out: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`avahi-publish ${args.join(' ')}: ${out.join(' | ')}`)), 10_000);
        for (const stream of [p.stdout!, p.stderr!]) {
          createInterface({ input: stream }).on('line', (l) => {
            out.push(l);
            if (/Established under name/.test(l)) (clearTimeout(t), resolve());
          });
        }
      });
    },
    async resolve(type, timeoutMs = 15_000) {
      const t0 = Date.now();
      let last = '';
      while (Date.now() - t0 < timeoutMs) {
        const { stdout } = await lab.exec(site.host.ns, 'env', [...env, 'avahi-browse', '-rpt', type], { timeoutMs: 10_000 });
        last = stdout;
        // =;iface;IPv4;name;type;domain;host;address;port;txt
        const line = stdout.split('\n').find((l) => l.startsWith('=;'));
        if (line) {
          const f = line.split(';');
          return { name: f[3] ?? '', host: f[6] ?? '', address: f[7] ?? '', port: Number(f[8]) };
        }
      }
      throw new Error(`avahi-browse in ${site.name} resolved no ${type} within ${timeoutMs} ms; last output: ${last}; avahi said: ${daemonLog.slice(-10).join(' | ')}`);
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * mDNS across the party with real avahi: the service `type` published at `pub` (its host record
 * points at `pubVip`) is resolved at `browse` and then reached by unicast from there. Returns what
 * was resolved, how long it took, and what the game server saw.
 */
export async function mdnsAcross(
  lab: Lab,
  browse: Avahi,
  pub: Avahi,
  o: { browseSite: LabSite; pubVip: string; host: string; name: string; type: string; port: number; tag: string },
): Promise<{ svc: { name: string; address: string; port: number }; ms: number; hello: { ok: boolean; serverSaw: string; clientPort: number } }> {
  await pub.publish(['-a', '-R', o.host, o.pubVip]);
  await pub.publish(['-s', '-H', o.host, o.name, o.type, String(o.port)]);
  const t0 = Date.now();
  const svc = await browse.resolve(o.type);
  const ms = Date.now() - t0;
  const hello = await runGame<{ ok: boolean; serverSaw: string; clientPort: number }>(lab, o.browseSite, ['hello', svc.address, String(svc.port), o.tag]);
  return { svc, ms, hello };
}
