import { connect, createServer, type Server } from 'node:net';
import { mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { Lab } from './lab.js';

const FORWARD = fileURLToPath(new URL('./ns-forward.js', import.meta.url));

/**
 * Makes a namespace's 127.0.0.1:nsPort reachable at this machine's 127.0.0.1:hostPort, through a
 * unix socket (a file path is reachable from every network namespace). The helper inside must
 * accept the Host header: start it with `--allow-host localhost:<hostPort>`.
 */
export async function exposeNamespacePort(lab: Lab, ns: string, hostPort: number, nsPort = 8666): Promise<Server> {
  mkdirSync('/run/lanrage-lab', { recursive: true });
  const path = `/run/lanrage-lab/${lab.id}-${hostPort}.sock`;
  const fwd = lab.spawn(ns, process.execPath, [FORWARD, path, `127.0.0.1:${nsPort}`]);
  await new Promise<void>((resolve) => createInterface({ input: fwd.stdout! }).once('line', () => resolve()));
  const server = createServer((c) => {
    const up = connect(path);
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  server.on('close', () => rmSync(path, { force: true }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(hostPort, '127.0.0.1', resolve);
  });
  return server;
}
