// Debian's real `prometheus`, started by a test in a temp dir on loopback with a scrape config
// pointing at a helper's /metrics (bearer token from a file). Ended by PID.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PROMETHEUS = process.env.PROMETHEUS_PATH ?? '/usr/bin/prometheus';

export interface Prometheus {
  url: string;
  /** An instant query's result vector. */
  query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  targets(): Promise<Array<{ health: string; lastError: string; scrapeUrl: string }>>;
  stop(): Promise<void>;
  log(): string;
}

export async function startPrometheus(o: { port: number; target: string; token: string; intervalSeconds?: number }): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'lanrage-prom-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, o.token, { mode: 0o600 });
  const every = `${o.intervalSeconds ?? 1}s`;
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global:',
      `  scrape_interval: ${every}`,
      `  evaluation_interval: ${every}`,
      'scrape_configs:',
      '  - job_name: lanrage',
      `    scrape_timeout: ${every}`,
      '    authorization:',
      `      credentials_file: ${tokenFile}`,
      '    static_configs:',
      `      - targets: ['${o.target}']`,
      '',
    ].join('\n'),
  );
  let log = '';
  const proc: ChildProcess = spawn(PROMETHEUS, [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${o.port}`,
    '--log.level=warn',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr!.on('data', (d: Buffer) => {
    if (log.length < 100_000) log += d.toString();
  });
  const url = `http://127.0.0.1:${o.port}`;
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.pid) {
      const gone = new Promise((r) => proc.once('exit', r));
      process.kill(proc.pid, 'SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
      if (proc.exitCode === null) process.kill(proc.pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const until = Date.now() + 30_000;
  for (;;) {
    const ok = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ok) break;
    if (proc.exitCode !== null || Date.now() > until) {
      await stop();
      throw new Error(`prometheus did not start: ${log.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    async query(expr) {
      const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
      const j = (await r.json()) as { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
      if (j.status !== 'success') throw new Error(`query ${expr}: ${JSON.stringify(j)}`);
      return j.data.result;
    },
    async targets() {
      const r = await fetch(`${url}/api/v1/targets`);
      const j = (await r.json()) as { data: { activeTargets: Array<{ health: string; lastError: string; scrapeUrl: string }> } };
      return j.data.activeTargets;
    },
    stop,
    log: () => log,
  };
}
