import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

// A throwaway PostgreSQL cluster for tests: Debian's server binaries, a temp data dir owned by
// the `postgres` user, loopback TCP on a free port, trust authentication. Stopped by PID.

export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] && join(root, versions[0], 'bin');
}

function postgresUser(): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  if (!line) return undefined;
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** Whether tests can start PostgreSQL here (the server package and root to switch to its user). */
export function havePostgres(): boolean {
  return postgresBinDir() !== undefined && postgresUser() !== undefined && process.getuid?.() === 0;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

export class TestPostgres {
  private proc: ChildProcess | undefined;
  private log = '';

  private constructor(
    private readonly bin: string,
    private readonly user: { uid: number; gid: number },
    readonly dir: string,
    readonly port: number,
  ) {}

  static async start(): Promise<TestPostgres> {
    const bin = postgresBinDir();
    const user = postgresUser();
    if (!bin || !user) throw new Error('PostgreSQL is not installed (Debian package postgresql)');
    const dir = mkdtempSync(join(tmpdir(), 'lanrage-pg-'));
    chownSync(dir, user.uid, user.gid);
    execFileSync(join(bin, 'initdb'), ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'], {
      uid: user.uid,
      gid: user.gid,
      stdio: 'ignore',
      cwd: dir,
    });
    const db = new TestPostgres(bin, user, dir, await freePort());
    await db.startServer();
    const c = new pg.Client({ connectionString: db.url('postgres') });
    await c.connect();
    await c.query('CREATE DATABASE lanrage');
    await c.end();
    return db;
  }

  url(db = 'lanrage'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${db}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Starts the server (again) on the same data and port; resolves when it accepts connections. */
  async startServer(): Promise<void> {
    const p = spawn(
      join(this.bin, 'postgres'),
      ['-D', join(this.dir, 'data'), '-p', String(this.port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${this.dir}`, '-c', 'fsync=off', '-c', 'max_connections=50'],
      { uid: this.user.uid, gid: this.user.gid, stdio: ['ignore', 'ignore', 'pipe'], cwd: this.dir },
    );
    p.stderr!.on('data', (d: Buffer) => (this.log = (this.log + d.toString()).slice(-4000)));
    this.proc = p;
    const end = Date.now() + 20_000;
    for (;;) {
      if (p.exitCode !== null) throw new Error(`postgres exited (${p.exitCode}): ${this.log}`);
      const c = new pg.Client({ connectionString: this.url('postgres'), connectionTimeoutMillis: 1000 });
      c.on('error', () => {});
      try {
        await c.connect();
        await c.end();
        return;
      } catch {
        await c.end().catch(() => {});
        if (Date.now() > end) throw new Error(`postgres did not start: ${this.log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Fast shutdown (SIGINT: connections are cut), by PID; resolves when it exited. */
  async stopServer(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGINT');
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }

  async query<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
    const c = new pg.Client({ connectionString: this.url() });
    await c.connect();
    try {
      return (await c.query<T>(sql, params)).rows;
    } finally {
      await c.end();
    }
  }

  async destroy(): Promise<void> {
    await this.stopServer();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
