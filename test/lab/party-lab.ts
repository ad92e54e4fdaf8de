import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { HELPER_MAIN, PWA_DIST } from '../lib/repo.js';
import type { Lab, LabSite } from './lab.js';

// Real LANrage processes in a lab: `lanrage control` in the control namespace and one
// `lanrage helper` per site host, each with its own state directory and a unique interface name.
// Tests drive the helpers with the real CLI run inside their namespace.

export const CONTROL_PORT = 7650;
export const STUN_PORT = 3478;

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

export class PartyLab {
  readonly dirs: string[] = [];
  control: LabProcess | undefined;
  readonly helpers = new Map<string, LabProcess>();

  constructor(readonly lab: Lab) {}

  get controlUrl(): string {
    return `http://${this.lab.control.ip}:${CONTROL_PORT}`;
  }

  private dir(name: string): string {
    const d = mkdtempSync(join(tmpdir(), `lanrage-lab-${name}-`));
    this.dirs.push(d);
    return d;
  }

  /** Starts (or restarts, keeping its database) the control server. */
  async startControl(): Promise<LabProcess> {
    const stateDir = this.control?.stateDir ?? this.dir('control');
    const proc = this.lab.spawn(this.lab.control.ns, process.execPath, [HELPER_MAIN, 'control', '--state-dir', stateDir, '--grpc-port', String(CONTROL_PORT), '--stun-port', String(STUN_PORT), '--stun-ip', this.lab.control.ip, '--stun-alt-ip', this.lab.controlAltIp], {
      env: { ...process.env, LANRAGE_LOG: 'debug' },
    });
    this.control = track(proc, stateDir);
    await this.control.waitLog('control ready');
    return this.control;
  }

  /** Starts (or restarts, reusing its state directory) the helper of a site. */
  async startHelper(site: LabSite, opts: { extraArgs?: string[]; stateDir?: string } = {}): Promise<LabProcess> {
    const index = this.lab.sites.indexOf(site);
    const stateDir = opts.stateDir ?? this.helpers.get(site.name)?.stateDir ?? this.dir(site.name);
    const args = [
      HELPER_MAIN, 'helper', '--state-dir', stateDir, '--control-url', this.controlUrl,
      '--interface', `lr${this.lab.id}${index}`, '--pwa-dir', PWA_DIST, ...(opts.extraArgs ?? []),
    ];
    const proc = this.lab.spawn(site.host.ns, process.execPath, args, { env: { ...process.env, LANRAGE_LOG: 'debug' } });
    const h = track(proc, stateDir);
    this.helpers.set(site.name, h);
    await h.waitLog('helper ready');
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

  cleanup(): void {
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
  throw new Error(`party state in ${site.name} did not settle within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
}
