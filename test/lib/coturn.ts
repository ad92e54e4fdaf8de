// A real coturn (Debian's turnserver) for tests: on loopback, or inside a lab namespace through a
// `spawn` override (lab.spawn(ns, cmd, args)). Its whole configuration, the shared secret
// included, goes into a 0600 file in a private temp dir (never on argv, where `ps` shows it);
// `-c FILE` means /etc/turnserver.conf is never read. PID file, log and user db live in the same
// dir, which stop() removes. Processes are ended by PID, and by an exit hook if the test dies.

import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { classify } from '../../helper/net/demux.js';
import { CLASS, encodeMessage, messageType, METHOD } from '../../helper/net/turn/codec.js';

export const DEFAULT_COTURN_REALM = 'lanrage.test';

export interface CoturnOptions {
  /** Address coturn listens on (UDP and TCP); default 127.0.0.1. */
  listenIp?: string;
  /** Address of its relay sockets; default listenIp. */
  relayIp?: string;
  /** UDP and TCP port; default a free one on listenIp (required with `spawn`: the port is in another namespace). */
  port?: number;
  /** Relay port range; default a random 100-port range in 20000-59999 (concurrent coturns do not collide). */
  relayPorts?: [number, number];
  /** static-auth-secret (use-auth-secret, TURN REST credentials); default random. */
  secret?: string;
  realm?: string;
  /** allowed-peer-ip entries: an address or a range "a.b.c.d-e.f.g.h" (coturn ignores CIDR). */
  allowedPeerIps?: string[];
  /** coturn refuses loopback peers unless told (even when allowed-peer-ip lists them). */
  allowLoopbackPeers?: boolean;
  /** Extra command-line options (write them `--name=value`: coturn ignores some otherwise). */
  extraArgs?: string[];
  /** Extra configuration-file lines. */
  extraConf?: string[];
  /** A coturn config to start from (e.g. installers/server/turnserver.conf): its site lines are replaced. */
  baseConf?: string;
  /** Starts the process (default: child_process.spawn on this machine). */
  spawn?: (cmd: string, args: string[]) => ChildProcess;
  /** Ready check after the listeners are logged; default a STUN Binding over UDP and a TCP connect (loopback only, so not with `spawn`). */
  probe?: (port: number) => Promise<boolean>;
  readyTimeoutMs?: number;
}

export interface Coturn {
  readonly port: number;
  readonly listenIp: string;
  readonly secret: string;
  readonly realm: string;
  /** The temp dir: turnserver.conf, turn.log, turnserver.pid, turndb. */
  readonly dir: string;
  /** PID of the running turnserver (of the last one started). */
  readonly pid: number;
  /** SIGKILL by PID, then the same configuration again on the same port; resolves when it is ready. */
  restart(): Promise<void>;
  /** SIGKILL by PID; removes the temp dir. Idempotent. */
  stop(): Promise<void>;
  logTail(lines?: number): string;
}

export function findTurnserver(): string | null {
  for (const dir of (process.env.PATH ?? '/usr/bin').split(delimiter).concat(['/usr/bin', '/usr/sbin'])) {
    const p = join(dir, 'turnserver');
    if (existsSync(p)) return p;
  }
  return null;
}

const running = new Set<ChildProcess>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const c of running) {
      try {
        if (c.pid) process.kill(c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A port free for both UDP and TCP on `ip` (coturn listens on both). */
export async function freePort(ip = '127.0.0.1'): Promise<number> {
  for (;;) {
    const srv = net.createServer();
    srv.listen(0, ip);
    await once(srv, 'listening');
    const port = (srv.address() as net.AddressInfo).port;
    const u = dgram.createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      u.once('error', () => resolve(false));
      u.bind(port, ip, () => resolve(true));
    });
    await new Promise<void>((r) => u.close(() => r()));
    await new Promise<void>((r) => srv.close(() => r()));
    if (ok) return port;
  }
}

/** Answers a STUN Binding on UDP and accepts a TCP connection, from this process. */
export function loopbackProbe(ip: string): (port: number) => Promise<boolean> {
  return async (port) => {
    const u = dgram.createSocket('udp4');
    try {
      u.bind(0);
      await once(u, 'listening');
      const answered = new Promise<boolean>((resolve) => {
        u.on('message', (m) => classify(m) === 'stun' && resolve(true));
        setTimeout(() => resolve(false), 300);
      });
      u.send(encodeMessage(messageType(METHOD.BINDING, CLASS.REQUEST), randomBytes(12)), port, ip);
      if (!(await answered)) return false;
    } finally {
      u.close();
    }
    return new Promise<boolean>((resolve) => {
      const s = net.connect(port, ip, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  };
}

/** Lines of a base config that depend on the site; replaced by ours. */
const SITE_KEYS = /^(listening-port|listening-ip|external-ip|relay-ip|min-port|max-port|tls-listening-port|static-auth-secret|realm|syslog|log-file|pidfile|userdb)\b/;

function configLines(o: Required<Pick<CoturnOptions, 'listenIp' | 'relayIp' | 'port' | 'relayPorts' | 'secret' | 'realm'>> & CoturnOptions, dir: string): string[] {
  const site = [
    `listening-ip=${o.listenIp}`,
    `relay-ip=${o.relayIp}`,
    `listening-port=${o.port}`,
    `min-port=${o.relayPorts[0]}`,
    `max-port=${o.relayPorts[1]}`,
    `static-auth-secret=${o.secret}`,
    `realm=${o.realm}`,
    `log-file=${join(dir, 'turn.log')}`,
    'simple-log',
    'no-stdout-log',
    `pidfile=${join(dir, 'turnserver.pid')}`,
    `userdb=${join(dir, 'turndb')}`,
    'verbose',
  ];
  const base = o.baseConf
    ? readFileSync(o.baseConf, 'utf8').split('\n').filter((l) => !SITE_KEYS.test(l))
    : ['use-auth-secret', 'fingerprint', 'no-cli', 'no-tls', 'no-dtls', 'no-rfc5780', 'no-multicast-peers'];
  return [
    ...base,
    ...site,
    ...(o.allowLoopbackPeers ? ['allow-loopback-peers'] : []),
    ...(o.allowedPeerIps ?? []).map((r) => `allowed-peer-ip=${r}`),
    ...(o.extraConf ?? []),
  ];
}

export async function startCoturn(opts: CoturnOptions = {}): Promise<Coturn> {
  const bin = findTurnserver();
  if (!bin) throw new Error('turnserver (Debian package coturn) is not installed');
  const listenIp = opts.listenIp ?? '127.0.0.1';
  if (opts.spawn && opts.port === undefined) throw new Error('startCoturn: give a port when coturn runs elsewhere (spawn)');
  const port = opts.port ?? (await freePort(listenIp));
  const lo = 20_000 + Math.floor(Math.random() * 400) * 100;
  const secret = opts.secret ?? randomBytes(18).toString('base64url');
  const realm = opts.realm ?? DEFAULT_COTURN_REALM;
  const dir = mkdtempSync(join(tmpdir(), 'lanrage-coturn-'));
  const conf = join(dir, 'turnserver.conf');
  const logFile = join(dir, 'turn.log');
  writeFileSync(
    conf,
    configLines({ ...opts, listenIp, relayIp: opts.relayIp ?? listenIp, port, relayPorts: opts.relayPorts ?? [lo, lo + 99], secret, realm }, dir).join('\n') + '\n',
    { mode: 0o600 },
  );
  const args = ['-c', conf, ...(opts.extraArgs ?? [])];
  const launchProc = opts.spawn ?? ((cmd: string, a: string[]) => spawnChild(cmd, a, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const probe = opts.probe ?? (opts.spawn ? undefined : loopbackProbe(listenIp));
  const readyMs = opts.readyTimeoutMs ?? 10_000;
  hookExit();

  let child: ChildProcess | null = null;
  const logText = (from = 0): string => {
    try {
      return readFileSync(logFile, 'utf8').slice(from);
    } catch {
      return '';
    }
  };
  const logTail = (lines = 30): string => logText().split('\n').slice(-lines).join('\n') || '(no log)';

  const launch = async (): Promise<void> => {
    const from = existsSync(logFile) ? statSync(logFile).size : 0;
    const c = launchProc(bin, args);
    c.stdout?.resume();
    c.stderr?.resume();
    child = c;
    running.add(c);
    c.once('exit', () => running.delete(c));
    const end = Date.now() + readyMs;
    const failed = (why: string): Error => new Error(`coturn on ${listenIp}:${port} ${why}:\n${logText(from).slice(-2000)}`);
    // The listeners are logged once their sockets are bound...
    for (;;) {
      if (c.exitCode !== null || c.signalCode !== null) throw failed(`exited (${c.exitCode ?? c.signalCode})`);
      const text = logText(from);
      if (text.includes(`UDP listener opened on: ${listenIp}:${port}`) && text.includes(`TCP listener opened on : ${listenIp}:${port}`)) break;
      if (Date.now() > end) throw failed('did not open its listeners');
      await sleep(20);
    }
    // ...and then it must answer (the relay threads start around the same time).
    while (probe && !(await probe(port))) {
      if (c.exitCode !== null || Date.now() > end) throw failed('did not answer');
      await sleep(20);
    }
  };
  const kill = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = once(c, 'exit');
    process.kill(c.pid as number, 'SIGKILL');
    await gone;
  };

  try {
    await launch();
  } catch (err) {
    await kill().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let stopped = false;
  return {
    port,
    listenIp,
    secret,
    realm,
    dir,
    get pid(): number {
      return (child?.pid as number | undefined) ?? -1;
    },
    restart: async () => {
      if (stopped) throw new Error('coturn was stopped');
      await kill();
      await launch();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
    logTail,
  };
}
