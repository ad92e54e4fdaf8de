// A two-namespace lab for the WireGuard engine, shared by wg-engine.test.ts and the raw
// benchmark: namespaces A and B joined by a veth (192.0.2.1/30 <-> 192.0.2.2/30, and a second
// path 198.51.100.1/24 <-> 198.51.100.2/24), and the engine running inside each through
// wg-driver.js. Everything created here carries a random suffix and is removed by cleanup(),
// also from a process 'exit' handler when a test dies half way.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const DRIVER = join(dirname(fileURLToPath(import.meta.url)), 'wg-driver.js');

export function commandExists(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, cmd)));
}

export const isRoot = (): boolean => process.getuid?.() === 0;

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command inside a namespace; never throws on a non-zero exit. */
export async function nsExec(ns: string, cmd: string, args: string[], timeoutMs = 30_000): Promise<ExecResult> {
  try {
    const { stdout, stderr } = await execFileP('ip', ['netns', 'exec', ns, cmd, ...args], { timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

export interface DriverAnswer {
  ok: boolean;
  result?: unknown;
  error?: string;
}

export interface Driver {
  readonly ns: string;
  readonly pid: number;
  /** Everything the engine logged (JSON lines). */
  readonly stderr: string[];
  call<T = unknown>(op: string, args?: Record<string, unknown>): Promise<T>;
  /** Like call, but returns the error text instead of throwing. */
  try(op: string, args?: Record<string, unknown>): Promise<DriverAnswer>;
  kill9(): Promise<void>;
  end(): Promise<void>;
}

const drivers = new Set<ChildProcess>();
const CALL_TIMEOUT_MS = 20_000;

export async function startDriver(ns: string): Promise<Driver> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, DRIVER], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LANRAGE_LOG: 'debug' } });
  drivers.add(child);
  const stderr: string[] = [];
  const pending = new Map<number, (a: DriverAnswer) => void>();
  const exited = new Promise<void>((r) =>
    child.once('exit', (code, signal) => {
      drivers.delete(child);
      // A driver that dies answers every open call with what it said before dying.
      for (const [id, cb] of pending) (pending.delete(id), cb({ ok: false, error: `driver exited (${code ?? signal}): ${stderr.slice(-5).join(' | ')}` }));
      r();
    }),
  );
  createInterface({ input: child.stderr! }).on('line', (l) => stderr.push(l));
  let ready!: () => void;
  const readyP = new Promise<void>((r) => (ready = r));
  createInterface({ input: child.stdout! }).on('line', (l) => {
    const msg = JSON.parse(l) as DriverAnswer & { id?: number; ready?: boolean };
    if (msg.ready) return ready();
    const cb = msg.id === undefined ? undefined : pending.get(msg.id);
    if (cb) (pending.delete(msg.id!), cb(msg));
  });
  await Promise.race([readyP, exited.then(() => Promise.reject(new Error(`driver in ${ns} exited: ${stderr.join('\n')}`)))]);
  let next = 1;
  const tryCall = (op: string, args: Record<string, unknown> = {}): Promise<DriverAnswer> =>
    new Promise((resolve, reject) => {
      if (child.exitCode !== null || child.signalCode !== null) return reject(new Error(`driver in ${ns} is not running`));
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${op} in ${ns}: no answer within ${CALL_TIMEOUT_MS} ms; driver said: ${stderr.slice(-5).join(' | ')}`));
      }, CALL_TIMEOUT_MS);
      pending.set(id, (a) => (clearTimeout(timer), resolve(a)));
      child.stdin!.write(JSON.stringify({ id, op, args }) + '\n');
    });
  return {
    ns,
    pid: child.pid!,
    stderr,
    try: tryCall,
    async call<T>(op: string, args?: Record<string, unknown>): Promise<T> {
      const a = await tryCall(op, args);
      if (!a.ok) throw new Error(`${op} in ${ns}: ${a.error}`);
      return a.result as T;
    },
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    async end() {
      child.stdin!.end();
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface Lab {
  readonly id: string;
  readonly a: string;
  readonly b: string;
  /** Interface names unique to this run (wireguard-go's socket directory is machine-wide). */
  ifName(tag: string): string;
  cleanup(): Promise<void>;
}

const labs = new Set<Lab>();

function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Ends every process inside the namespace (all of them ours: the namespace is) and deletes it. */
function removeNamespace(ns: string): void {
  let pids: number[] = [];
  try {
    pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter((s) => /^\d+$/.test(s)).map(Number);
  } catch {
    return; // no such namespace
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  try {
    run('ip', ['netns', 'del', ns]);
  } catch {
    /* already gone */
  }
}

function removeSockets(id: string): void {
  const dir = '/var/run/wireguard';
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir)) {
    if (f.startsWith(`lrt${id}`) && f.endsWith('.sock')) rmSync(join(dir, f), { force: true });
  }
}

process.on('exit', () => {
  for (const d of drivers) d.kill('SIGKILL');
  for (const lab of labs) {
    removeNamespace(lab.a);
    removeNamespace(lab.b);
    removeSockets(lab.id);
  }
});

export function createLab(): Lab {
  const id = randomBytes(2).toString('hex');
  const a = `lrt${id}-A`;
  const b = `lrt${id}-B`;
  const lab: Lab = {
    id,
    a,
    b,
    ifName: (tag) => `lrt${id}${tag}`,
    async cleanup() {
      for (const d of [...drivers]) if (d.spawnargs.includes(a) || d.spawnargs.includes(b)) d.kill('SIGKILL');
      removeNamespace(a);
      removeNamespace(b);
      removeSockets(id);
      labs.delete(lab);
    },
  };
  labs.add(lab);
  try {
    run('ip', ['netns', 'add', a]);
    run('ip', ['netns', 'add', b]);
    const va = `lrt${id}va`;
    const vb = `lrt${id}vb`;
    // Created inside A so the host never holds either end, even for a moment.
    run('ip', ['-n', a, 'link', 'add', va, 'type', 'veth', 'peer', 'name', vb, 'netns', b]);
    run('ip', ['-n', a, 'addr', 'add', '192.0.2.1/30', 'dev', va]);
    run('ip', ['-n', b, 'addr', 'add', '192.0.2.2/30', 'dev', vb]);
    run('ip', ['-n', a, 'addr', 'add', '198.51.100.1/24', 'dev', va]);
    run('ip', ['-n', b, 'addr', 'add', '198.51.100.2/24', 'dev', vb]);
    for (const [ns, dev] of [[a, va], [b, vb]] as const) {
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      run('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    }
  } catch (err) {
    void lab.cleanup();
    throw new Error(`lab setup failed: ${(err as { stderr?: Buffer }).stderr?.toString() ?? String(err)}`);
  }
  return lab;
}

/** True while the process exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export interface Tunnel {
  lab: Lab;
  da: Driver;
  db: Driver;
  ifA: string;
  ifB: string;
  pubA: string;
  pubB: string;
  portA: number;
  portB: number;
  pidA: number;
  pidB: number;
}

/** The engine in both namespaces: A = 10.66.0.1, B = 10.66.0.2, each the other's peer over 192.0.2.0/30. */
export async function createTunnel(lab: Lab, keys: { a: { privateKey: string; publicKey: string }; b: { privateKey: string; publicKey: string } }, mtu = 1420): Promise<Tunnel> {
  const ifA = lab.ifName('a');
  const ifB = lab.ifName('b');
  const da = await startDriver(lab.a);
  const db = await startDriver(lab.b);
  type Created = { name: string; backend: string; listenPort: number; pid: number | null };
  const ca = await da.call<Created>('create', { name: ifA, privateKey: keys.a.privateKey, address: '10.66.0.1/16', mtu });
  const cb = await db.call<Created>('create', { name: ifB, privateKey: keys.b.privateKey, address: '10.66.0.2/16', mtu });
  // B learns A first: A's keepalive sends a handshake the moment A learns B, and an initiation
  // from a peer B does not know yet is dropped (WireGuard retries only after 5 s).
  // Keepalive from A only: B then stays silent unless it has something to say (see the test).
  await db.call('setPeer', { publicKey: keys.a.publicKey, endpoint: `192.0.2.1:${ca.listenPort}`, allowedIps: ['10.66.0.1/32'] });
  await da.call('setPeer', { publicKey: keys.b.publicKey, endpoint: `192.0.2.2:${cb.listenPort}`, allowedIps: ['10.66.0.2/32'], persistentKeepaliveSeconds: 25 });
  return { lab, da, db, ifA, ifB, pubA: keys.a.publicKey, pubB: keys.b.publicKey, portA: ca.listenPort, portB: cb.listenPort, pidA: ca.pid ?? -1, pidB: cb.pid ?? -1 };
}
