// Runs one LanRelay inside a lab namespace: `node lan-relay.js '<config json>'`.
// stdout: {"ready":true} once running, then one answer per request.
// stdin:  {"id":1,"op":"counters"} → {"id":1,"ok":true,"result":{...LanCounters, cpuUs}}
//         {"id":2,"op":"setPorts","args":{"ports":[...],"groups":[...]}}
//         {"id":3,"op":"setPeers","args":{"peers":["10.66.0.2"]}}
// It closes the relay (removing its nft table) and exits when stdin closes or on SIGTERM.

import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../../helper/core/log.js';
import { LanRelay, type LanLimits } from '../../../helper/lan/relay.js';

export const LAN_RELAY_DRIVER = fileURLToPath(import.meta.url);

export interface LanRelayDriverConfig {
  selfVirtualIp: string;
  peers: string[];
  ports: number[];
  groups: string[];
  relayPort: number;
  tunnelInterface?: string;
  limits?: Partial<LanLimits>;
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as LanRelayDriverConfig;
  const log = createLogger({ driver: 'lan-relay', pid: process.pid });
  let peers = [...cfg.peers];
  const relay = new LanRelay({
    selfVirtualIp: cfg.selfVirtualIp,
    peers: () => peers,
    ports: cfg.ports,
    groups: cfg.groups,
    relayPort: cfg.relayPort,
    log,
    ...(cfg.tunnelInterface ? { tunnelInterface: cfg.tunnelInterface } : {}),
    ...(cfg.limits ? { limits: cfg.limits } : {}),
  });
  let closing: Promise<void> | null = null;
  const shutdown = (code: number): void => {
    closing ??= relay.close().finally(() => process.exit(code));
  };
  process.on('SIGTERM', () => shutdown(0));
  process.stdin.on('end', () => shutdown(0));
  await relay.start();
  const cpu0 = process.cpuUsage();
  const ops: Record<string, (a: Record<string, unknown>) => Promise<unknown>> = {
    counters: async () => {
      const u = process.cpuUsage(cpu0);
      return { ...relay.counters(), cpuUs: u.user + u.system };
    },
    setPorts: (a) => relay.setPorts(a.ports as number[], a.groups as string[] | undefined),
    setPeers: async (a) => void (peers = a.peers as string[]),
  };
  createInterface({ input: process.stdin }).on('line', (line) => {
    const req = JSON.parse(line) as { id: number; op: string; args?: Record<string, unknown> };
    const answer = (body: object): void => void process.stdout.write(JSON.stringify({ id: req.id, ...body }) + '\n');
    const fn = ops[req.op];
    if (!fn) return answer({ ok: false, error: `unknown op ${req.op}` });
    fn(req.args ?? {}).then(
      (result) => answer({ ok: true, result: result ?? null }),
      (err: Error) => answer({ ok: false, error: err.message }),
    );
  });
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
}

if (process.argv[1] === LAN_RELAY_DRIVER) {
  main().catch((err: unknown) => {
    process.stderr.write(`lan-relay driver failed: ${String((err as Error).stack ?? err)}\n`);
    process.exit(70);
  });
}
