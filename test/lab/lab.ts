// A network-namespace "internet" for end-to-end tests: one router namespace as the internet
// (a real IP hop, so TTLs behave as on real paths), a control-server namespace on it, and sites
// that are either public hosts or a host behind a Linux NAT router (port-restricted, symmetric,
// full-cone, address-restricted, or port-restricted behind a carrier's symmetric NAT: cgnat). Everything the lab makes is recorded (registry.ts) and removed by destroy(), by a
// process exit/signal handler, or later by removeStaleLabs() if the creating process was killed.

import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { deleteNamespaces, deleteNamespacesSync, listNamespaces, pidsInNamespaces, run, terminate, terminateSync, type KillTarget } from './netns.js';
import { removeRecord, writeRecord } from './registry.js';
import { removeStaleLabs } from './cleanup-stale.js';
import { INET_TABLE, NS_PREFIX, planLab, type LabPlan, type NatKind } from './topology.js';

export type { NatKind } from './topology.js';
export { CommandError } from './netns.js';

export interface LabHost {
  ns: string;
  ip: string;
}

export interface LabSite {
  name: string;
  kind: NatKind;
  /** The player's machine. */
  host: LabHost;
  /** The site's NAT router (null for 'public'); router.ip is its internet-side address. */
  router: LabHost | null;
  /** 'cgnat' only: the carrier NAT in front of the router; carrier.ip is the public address. */
  carrier: LabHost | null;
  /** The host's address inside the site (equals host.ip). */
  lanIp: string;
  /** The address the internet sees for this site. */
  publicIp: string;
}

export interface LinkCounters {
  rxPackets: number;
  txPackets: number;
  rxBytes: number;
  txBytes: number;
}

export interface Lab {
  id: string;
  /** The internet router namespace. */
  internet: LabHost;
  /** A server namespace on the internet (control server, STUN, coturn). */
  control: LabHost;
  /** A second address of the control namespace (the alternate STUN address, RFC 5780). */
  controlAltIp: string;
  sites: LabSite[];
  site(name: string): LabSite;
  /** Runs `ip netns exec NS cmd args...` in one of this lab's namespaces; rejects with CommandError on a non-zero exit. */
  exec(ns: string, cmd: string, args: string[], opts?: { timeoutMs?: number; input?: string }): Promise<{ stdout: string; stderr: string }>;
  /** Starts a long-running process in a namespace (own process group), ended by destroy(). */
  spawn(ns: string, cmd: string, args: string[], opts?: { env?: NodeJS.ProcessEnv }): ChildProcess;
  /**
   * What the internet router FORWARDED to (rx) and from (tx) the given namespace's internet link,
   * counted from that namespace's point of view. A NATed site's host maps to its router's link.
   * Packets that die at the internet router (TTL expiry) and ARP are not counted.
   */
  linkCounters(ns: string): Promise<LinkCounters>;
  /** Idempotent: ends every process in the lab's namespaces, deletes the namespaces. */
  destroy(): Promise<void>;
}

const live = new Set<LabImpl>();
const STALE_AFTER_MS = 60_000;

// --- process exit / signal cleanup -------------------------------------------------------------

let hooksInstalled = false;

function onExit(): void {
  for (const lab of [...live]) lab.destroySync();
}

function onSignal(sig: NodeJS.Signals): void {
  onExit();
  removeHooks();
  // Re-raise with the default action (exit by that signal) unless someone else handles it.
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', onExit);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

function removeHooks(): void {
  if (!hooksInstalled) return;
  hooksInstalled = false;
  process.off('exit', onExit);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
}

// --- the lab -----------------------------------------------------------------------------------

class LabImpl implements Lab {
  readonly id: string;
  readonly internet: LabHost;
  readonly control: LabHost;
  readonly controlAltIp: string;
  readonly sites: LabSite[];
  private readonly nsNames: string[];
  private readonly linkOf = new Map<string, number>();
  private readonly children = new Set<ChildProcess>();
  private destroying: Promise<void> | null = null;
  private destroyed = false;

  constructor(readonly plan: LabPlan) {
    this.id = plan.id;
    this.nsNames = plan.namespaces.map((n) => n.name);
    this.internet = { ns: plan.inetNs, ip: plan.control.inetIp };
    this.control = { ns: plan.ctlNs, ip: plan.control.peerIp };
    this.controlAltIp = plan.controlAltIp;
    this.linkOf.set(plan.ctlNs, plan.control.k);
    this.sites = plan.sites.map((s) => {
      this.linkOf.set(s.hostNs, s.link.k);
      if (s.routerNs) this.linkOf.set(s.routerNs, s.link.k);
      if (s.carrier) this.linkOf.set(s.carrier.ns, s.link.k);
      return {
        name: s.name,
        kind: s.kind,
        host: { ns: s.hostNs, ip: s.lanIp },
        router: s.routerNs ? { ns: s.routerNs, ip: s.carrier?.homeIp ?? s.publicIp } : null,
        carrier: s.carrier ? { ns: s.carrier.ns, ip: s.publicIp } : null,
        lanIp: s.lanIp,
        publicIp: s.publicIp,
      };
    });
  }

  get namespaces(): readonly string[] {
    return this.nsNames;
  }

  site(name: string): LabSite {
    const s = this.sites.find((x) => x.name === name);
    if (!s) throw new Error(`lab ${this.id}: no site ${JSON.stringify(name)} (have ${this.sites.map((x) => x.name).join(', ')})`);
    return s;
  }

  private own(ns: string): void {
    if (this.destroyed || this.destroying) throw new Error(`lab ${this.id} is destroyed`);
    if (!this.nsNames.includes(ns)) throw new Error(`${JSON.stringify(ns)} is not a namespace of lab ${this.id}`);
  }

  exec(ns: string, cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<{ stdout: string; stderr: string }> {
    this.own(ns);
    return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
  }

  spawn(ns: string, cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    this.own(ns);
    // `ip netns exec` execs the command, so the child's PID is the command's, and detached makes
    // it a process-group leader: destroy() ends it and anything it forked.
    const child = spawnChild('ip', ['netns', 'exec', ns, cmd, ...args], {
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    child.stdin?.on('error', () => {});
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  async linkCounters(ns: string): Promise<LinkCounters> {
    this.own(ns);
    const k = this.linkOf.get(ns);
    if (k === undefined) throw new Error(`${ns} has no internet link (the internet router itself?)`);
    const { stdout } = await this.exec(this.internet.ns, 'nft', ['-j', 'list', 'counters', 'table', 'ip', INET_TABLE]);
    const byName = new Map<string, { packets: number; bytes: number }>();
    const doc = JSON.parse(stdout) as { nftables?: Array<{ counter?: { name?: unknown; packets?: unknown; bytes?: unknown } }> };
    for (const item of doc.nftables ?? []) {
      const c = item.counter;
      if (c && typeof c.name === 'string') byName.set(c.name, { packets: Number(c.packets), bytes: Number(c.bytes) });
    }
    const to = byName.get(`to_${k}`);
    const from = byName.get(`from_${k}`);
    if (!to || !from) throw new Error(`lab ${this.id}: counters for link ${k} missing in the internet router`);
    return { rxPackets: to.packets, rxBytes: to.bytes, txPackets: from.packets, txBytes: from.bytes };
  }

  private killTargets(): KillTarget[] {
    const leaders = [...this.children]
      .filter((c) => c.pid !== undefined && c.exitCode === null && c.signalCode === null)
      .map((c) => ({ pid: c.pid as number, group: true }));
    const seen = new Set(leaders.map((t) => t.pid));
    // Everything else still running inside our namespaces: forks that escaped the group,
    // daemons started through exec() (wireguard-go backgrounds itself).
    const rest = pidsInNamespaces(this.nsNames).filter((p) => !seen.has(p)).map((pid) => ({ pid, group: false }));
    return [...leaders, ...rest];
  }

  destroy(): Promise<void> {
    this.destroying ??= this.doDestroy();
    return this.destroying;
  }

  private async doDestroy(): Promise<void> {
    const problems: string[] = [];
    const stuck = await terminate(this.killTargets());
    if (stuck.length) problems.push(`processes that would not die: ${stuck.join(', ')}`);
    // A second sweep: something may have forked between the scan and the signals.
    const late = await terminate(pidsInNamespaces(this.nsNames).map((pid) => ({ pid, group: false })));
    if (late.length) problems.push(`processes that would not die: ${late.join(', ')}`);
    const left = await deleteNamespaces(this.nsNames);
    if (left.length) problems.push(`namespaces left: ${left.join(', ')}`);
    this.finish(left.length === 0);
    if (problems.length) throw new Error(`lab ${this.id}: destroy incomplete: ${problems.join('; ')}`);
  }

  /** For process 'exit' handlers, where only synchronous work runs. */
  destroySync(): void {
    if (this.destroyed) return;
    terminateSync(this.killTargets());
    const left = deleteNamespacesSync(this.nsNames);
    this.finish(left.length === 0);
  }

  private finish(clean: boolean): void {
    this.destroyed = true;
    for (const c of this.children) {
      c.stdin?.destroy();
      c.stdout?.destroy();
      c.stderr?.destroy();
    }
    this.children.clear();
    // A record is kept when something could not be removed, so removeStaleLabs retries later.
    if (clean) removeRecord(this.id);
    live.delete(this);
    if (live.size === 0) removeHooks();
  }
}

function randomId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(6)].map((b) => alphabet[b % alphabet.length]).join('');
}

export interface CreateLabOptions {
  sites: Array<{ name: string; kind: NatKind }>;
  id?: string;
}

export async function createLab(opts: CreateLabOptions): Promise<Lab> {
  const id = opts.id ?? randomId();
  const plan = planLab(id, opts.sites); // validates names and kinds before anything is made
  if (listNamespaces().some((n) => n.startsWith(`${NS_PREFIX}${id}-`))) throw new Error(`lab id ${id} is already in use`);
  // Leftovers of crashed runs go; live labs of other processes stay. The minute of grace keeps
  // this from racing a test that inspects a lab it has just orphaned on purpose.
  await removeStaleLabs(STALE_AFTER_MS).catch(() => undefined);

  const lab = new LabImpl(plan);
  writeRecord(id, [...lab.namespaces]);
  live.add(lab);
  installHooks();
  try {
    await run('ip', ['-batch', '-'], { input: plan.rootBatch.join('\n') + '\n' });
    await Promise.all(
      plan.namespaces.map(async (n) => {
        await run('ip', ['netns', 'exec', n.name, 'sysctl', '-q', '-w', ...n.sysctls]);
        await run('ip', ['-n', n.name, '-batch', '-'], { input: n.ipBatch.join('\n') + '\n' });
        if (n.nft) await run('ip', ['netns', 'exec', n.name, 'nft', '-f', '-'], { input: n.nft });
      }),
    );
  } catch (err) {
    await lab.destroy().catch(() => undefined);
    throw err;
  }
  return lab;
}

/** Runs `body` with a fresh lab and destroys it afterwards, whatever happens in `body`. */
export async function withLab<T>(opts: CreateLabOptions, body: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await createLab(opts);
  try {
    return await body(lab);
  } finally {
    await lab.destroy();
  }
}

/** Root, ip, nft, and a namespace with a veth pair that can be created and removed. */
export async function labAvailable(): Promise<{ ok: boolean; why?: string }> {
  if (process.platform !== 'linux') return { ok: false, why: 'not Linux' };
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { ok: false, why: 'not root' };
  for (const [cmd, args] of [['ip', ['-V']], ['nft', ['--version']], ['sysctl', ['--version']]] as const) {
    try {
      await run(cmd, [...args], { timeoutMs: 5000 });
    } catch (err) {
      return { ok: false, why: `${cmd} is missing or broken: ${(err as Error).message}` };
    }
  }
  // Probe namespaces get a record like any lab, so that a crash here is cleaned up too.
  const id = randomId();
  const ns = `${NS_PREFIX}${id}-probe`;
  writeRecord(id, [ns]);
  try {
    await run('ip', ['-batch', '-'], { input: `netns add ${ns}\nlink add ${NS_PREFIX}${id}pa netns ${ns} type veth peer name ${NS_PREFIX}${id}pb netns ${ns}\n` });
    await run('ip', ['netns', 'exec', ns, 'nft', 'list', 'tables']);
    await run('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    return { ok: true };
  } catch (err) {
    return { ok: false, why: `network namespaces do not work here: ${(err as Error).message}` };
  } finally {
    const left = await deleteNamespaces([ns]);
    if (left.length === 0) removeRecord(id);
  }
}
