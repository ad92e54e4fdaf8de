import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DEFAULT_TURN_REALM } from '../../helper/control/relay-config.js';
import { startCoturn, type Coturn } from '../lib/coturn.js';
import { HELPER_MAIN, PWA_DIST, REPO_ROOT } from '../lib/repo.js';
import type { Lab, LabSite } from './lab.js';

// Real LANrage processes in a lab: `lanrage control` in the control namespace and one
// `lanrage helper` per site host, each with its own state directory and a unique interface name.
// Tests drive the helpers with the real CLI run inside their namespace. With a relay, coturn runs
// beside the control server (same namespace and address) and the control server hands out
// credentials for it.

export const CONTROL_PORT = 7650;
export const STUN_PORT = 3478;
/** coturn's port (UDP and TCP) when startControl({ relay: true }); 3478/3479 are the control server's STUN. */
export const RELAY_PORT = 3480;

export interface StartControlOptions {
  /** Start coturn on the control address, port RELAY_PORT, and pass --relay to the control server. */
  relay?: boolean;
  /** --turn-ttl for the control server (default: its own default). */
  turnTtlSeconds?: number;
  /**
   * 'shipped' (default): installers/server/turnserver.conf as production runs it, 10 Mbit/s per
   * session included. 'uncapped': the same peer rules without bandwidth caps (benchmarks).
   */
  relayConf?: 'shipped' | 'uncapped';
}

export interface LabProcess {
  proc: ChildProcess;
  logs: string[];
  stateDir: string;
  /** Resolves with the first log record whose msg is `msg`. */
  waitLog(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

function track(proc: ChildProcess, stateDir: string): LabProcess {
  const logs: string[] = [];
  const waiters: Array<{ msg: string; resolve: (r: Record<string, unknown>) => void }> = [];
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    logs.push(line);
    if (process.env.LANRAGE_LAB_VERBOSE) process.stderr.write(`  | ${line}\n`);
    try {
      const rec = JSON.parse(line) as Record<string, unknown>;
      for (const w of [...waiters]) if (rec.msg === w.msg) w.resolve(rec);
    } catch {
      // not a log record
    }
  });
  return {
    proc,
    logs,
    stateDir,
    waitLog(msg, timeoutMs = 20_000) {
      const seen = logs.map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      }).find((r) => r.msg === msg);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no "${msg}" log within ${timeoutMs} ms:\n${logs.slice(-30).join('\n')}`)), timeoutMs);
        const onExit = (code: number | null) => reject(new Error(`process exited (${code}) before "${msg}":\n${logs.slice(-30).join('\n')}`));
        proc.once('exit', onExit);
        waiters.push({
          msg,
          resolve: (r) => {
            clearTimeout(t);
            proc.off('exit', onExit);
            resolve(r);
          },
        });
      });
    },
  };
}

/** The helpers' and control server's log level: debug (LANRAGE_LAB_LOG changes it, e.g. to info as players run it, for a benchmark's CPU figures). */
function labLogLevel(): string {
  return process.env.LANRAGE_LAB_LOG ?? 'debug';
}

export class PartyLab {
  readonly dirs: string[] = [];
  control: LabProcess | undefined;
  readonly helpers = new Map<string, LabProcess>();
  /** The relay, once startControl({ relay: true }) started it. */
  coturn: Coturn | undefined;
  /** The relay's shared secret (also in a 0600 file handed to the control server). */
  turnSecret: string | undefined;
  private turnSecretFile: string | undefined;
  private turnTtlSeconds: number | undefined;

  constructor(readonly lab: Lab) {}

  /** "ip:port" of the relay (undefined until startControl({ relay: true })). */
  get relay(): string | undefined {
    return this.coturn ? `${this.lab.control.ip}:${this.coturn.port}` : undefined;
  }

  get controlUrl(): string {
    return `http://${this.lab.control.ip}:${CONTROL_PORT}`;
  }

  private dir(name: string): string {
    const d = mkdtempSync(join(tmpdir(), `lanrage-lab-${name}-`));
    this.dirs.push(d);
    return d;
  }

  /**
   * Starts (or restarts, keeping its database) the control server. With `relay`, coturn is
   * started first (once: a control restart keeps it and its secret) and the control server
   * hands out credentials for it; a restart without options keeps the relay configuration.
   */
  async startControl(opts: StartControlOptions = {}): Promise<LabProcess> {
    const stateDir = this.control?.stateDir ?? this.dir('control');
    if (opts.turnTtlSeconds !== undefined) this.turnTtlSeconds = opts.turnTtlSeconds;
    if (opts.relay && !this.coturn) await this.startRelay(opts.relayConf ?? 'shipped');
    const relayArgs =
      this.coturn && opts.relay !== false && this.turnSecretFile
        ? [
            '--relay', this.relay as string, '--turn-secret-file', this.turnSecretFile,
            ...(this.turnTtlSeconds !== undefined ? ['--turn-ttl', String(this.turnTtlSeconds)] : []),
          ]
        : [];
    // LANRAGE_LAB_CONTROL_NODE_ARGS: flags for the control server's node (e.g. to profile it in a benchmark).
    const nodeArgs = (process.env.LANRAGE_LAB_CONTROL_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const proc = this.lab.spawn(
      this.lab.control.ns,
      process.execPath,
      [...nodeArgs, HELPER_MAIN, 'control', '--state-dir', stateDir, '--grpc-port', String(CONTROL_PORT), '--stun-port', String(STUN_PORT), '--stun-ip', this.lab.control.ip, '--stun-alt-ip', this.lab.controlAltIp, ...relayArgs],
      { env: { ...process.env, LANRAGE_LOG: labLogLevel() } },
    );
    this.control = track(proc, stateDir);
    await this.control.waitLog('control ready');
    return this.control;
  }

  /**
   * coturn in the control namespace: control IP, RELAY_PORT (UDP+TCP). As in production, the only
   * peers it relays to are its own address (helpers talk relayed→relayed).
   */
  private async startRelay(conf: 'shipped' | 'uncapped'): Promise<void> {
    const dir = this.dir('relay');
    const secret = randomBytes(24).toString('base64url');
    const file = join(dir, 'turn-secret');
    writeFileSync(file, secret + '\n', { mode: 0o600 });
    const ns = this.lab.control.ns;
    this.coturn = await startCoturn({
      listenIp: this.lab.control.ip,
      port: RELAY_PORT,
      secret,
      realm: DEFAULT_TURN_REALM,
      allowedPeerIps: [this.lab.control.ip],
      ...(conf === 'shipped' ? { baseConf: join(REPO_ROOT, 'installers', 'server', 'turnserver.conf') } : { extraConf: ['denied-peer-ip=0.0.0.0-255.255.255.255'] }),
      spawn: (cmd, args) => this.lab.spawn(ns, cmd, args),
    });
    this.turnSecret = secret;
    this.turnSecretFile = file;
  }

  /** Kills coturn by PID and starts it again on the same address and port (for relay-restart tests). */
  async restartRelay(): Promise<void> {
    if (!this.coturn) throw new Error('no relay: startControl({ relay: true }) first');
    await this.coturn.restart();
  }

  /** Starts (or restarts, reusing its state directory) the helper of a site; embeddedControl: its own control server, as players run it. */
  async startHelper(site: LabSite, opts: { extraArgs?: string[]; stateDir?: string; embeddedControl?: boolean; controlUrl?: string; readyTimeoutMs?: number } = {}): Promise<LabProcess> {
    const index = this.lab.sites.indexOf(site);
    const stateDir = opts.stateDir ?? this.helpers.get(site.name)?.stateDir ?? this.dir(site.name);
    // LANRAGE_LAB_NODE_ARGS: flags for the helpers' node (e.g. "--cpu-prof --cpu-prof-dir=DIR" to profile a benchmark).
    const nodeArgs = (process.env.LANRAGE_LAB_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const args = [
      ...nodeArgs, HELPER_MAIN, 'helper', '--state-dir', stateDir, ...(opts.embeddedControl ? [] : ['--control-url', opts.controlUrl ?? this.controlUrl]),
      '--interface', `lr${this.lab.id}${index}`, '--pwa-dir', PWA_DIST, ...(opts.extraArgs ?? []),
    ];
    const firstStart = !this.helpers.has(site.name) && opts.stateDir === undefined;
    const proc = this.lab.spawn(site.host.ns, process.execPath, args, { env: { ...process.env, LANRAGE_LOG: labLogLevel() } });
    const h = track(proc, stateDir);
    this.helpers.set(site.name, h);
    await h.waitLog('helper ready', opts.readyTimeoutMs);
    // Every namespace shares this machine's hostname, the default device name: name each player
    // after its site, as a player would in the settings, so peers are told apart.
    if (firstStart) await this.cliText(site, ['settings', 'set', 'device_name', site.name]);
    return h;
  }

  async stopHelper(site: LabSite, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const h = this.helpers.get(site.name);
    if (!h || h.proc.exitCode !== null) return;
    const exited = new Promise((r) => h.proc.once('exit', r));
    h.proc.kill(signal);
    await exited;
  }

  /** Runs the real CLI inside the site's namespace; parses --json output. */
  async cli<T = unknown>(site: LabSite, args: string[]): Promise<T> {
    const h = this.helpers.get(site.name)!;
    const { stdout } = await this.lab.exec(site.host.ns, process.execPath, [HELPER_MAIN, ...args, '--json', '--state-dir', h.stateDir], { timeoutMs: 60_000 });
    return JSON.parse(stdout.trim().split('\n').pop() ?? 'null') as T;
  }

  async cliText(site: LabSite, args: string[]): Promise<string> {
    const h = this.helpers.get(site.name)!;
    const { stdout } = await this.lab.exec(site.host.ns, process.execPath, [HELPER_MAIN, ...args, '--state-dir', h.stateDir], { timeoutMs: 60_000 });
    return stdout;
  }

  /** Removes the state directories; coturn is killed by PID (lab.destroy() would end it too). */
  cleanup(): void {
    const c = this.coturn;
    this.coturn = undefined;
    if (c) {
      try {
        if (c.pid > 0) process.kill(c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      void c.stop().catch(() => undefined);
    }
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
  }
}

export interface PeerJson {
  deviceId: string;
  name: string;
  virtualIp: string;
  path: number;
  pathReason: string;
  endpoint: string;
  rttMs: number;
  fastPath?: boolean;
}
export interface PartyJson {
  party: { id: string; name: string; inviteLink: string; members: Array<{ deviceId: string; name: string; virtualIp: string; isSelf: boolean; isHost: boolean }> } | null;
  peers: PeerJson[];
}

/** Polls `lanrage party --json` in the site until `done` holds. */
export async function waitParty(pl: PartyLab, site: LabSite, done: (p: PartyJson) => boolean, timeoutMs = 20_000): Promise<PartyJson> {
  const until = Date.now() + timeoutMs;
  let last: PartyJson | undefined;
  while (Date.now() < until) {
    last = await pl.cli<PartyJson>(site, ['party']);
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  const seen = JSON.stringify(last);
  throw new Error(
    `party state in ${site.name} did not settle within ${timeoutMs} ms; last: ${seen.length > 1500 ? `${seen.slice(0, 1500)}…` : seen}\n` +
      `${site.name}'s helper, last path/peer/control log lines:\n${helperLogTail(pl.helpers.get(site.name)?.logs ?? [])}`,
  );
}

/**
 * What CI's tail needs to tell why a wait failed: the helper's last info-or-louder records and
 * the debug ones about paths, peers, relays and the control server; at most `lines` lines of
 * 200 characters (≤ 4 KB).
 */
export function helperLogTail(logs: readonly string[], lines = 20): string {
  const relevant = logs.filter((l) => !l.includes('"level":"debug"') || /path|peer|relay|control|probe|handshake|wireguard/i.test(l));
  const tail = relevant.slice(-lines).map((l) => (l.length > 200 ? `${l.slice(0, 200)}…` : l));
  return tail.length ? tail.join('\n') : '(no log lines)';
}
