// Runs the WireGuard engine inside a network namespace for the tests and the benchmark:
// `ip netns exec NS node dist/test/integration/wg-driver.js`. One JSON request per stdin line
// ({id, op, args}), one JSON answer per stdout line ({id, ok, result | error}). Logs on stderr.
import { createInterface } from 'node:readline';
import { createLogger } from '../../helper/core/log.js';
import { createWgDevice, removeStaleInterface, type WgDevice, type WgPeer } from '../../helper/wg/index.js';

const log = createLogger({ driver: process.pid });
process.on('uncaughtException', (err) => {
  log.error('driver crashed', { err: err.stack ?? err.message });
  process.exit(70);
});
let dev: WgDevice | null = null;

function device(): WgDevice {
  if (!dev) throw new Error('no device: call create first');
  return dev;
}

type Args = Record<string, unknown>;
const ops: Record<string, (a: Args) => Promise<unknown>> = {
  async create(a) {
    dev = await createWgDevice({ name: a.name as string, privateKey: a.privateKey as string, address: a.address as string, mtu: a.mtu as number, listenPort: a.listenPort as number | undefined, log });
    return { name: dev.name, backend: dev.backend, listenPort: dev.listenPort, pid: dev.pid };
  },
  setPeer: (a) => device().setPeer(a as unknown as WgPeer),
  setEndpoint: (a) => device().setEndpoint(a.publicKey as string, a.endpoint as string),
  removePeer: (a) => device().removePeer(a.publicKey as string),
  stats: () => device().stats(),
  close: () => device().close(),
  removeStale: (a) => removeStaleInterface(a.name as string, log),
};

createInterface({ input: process.stdin }).on('line', (line) => {
  const req = JSON.parse(line) as { id: number; op: string; args?: Args };
  const fn = ops[req.op];
  const answer = (body: object): void => void process.stdout.write(JSON.stringify({ id: req.id, ...body }) + '\n');
  if (!fn) return answer({ ok: false, error: `unknown op ${req.op}` });
  fn(req.args ?? {}).then(
    (result) => answer({ ok: true, result: result ?? null }),
    (err: Error) => answer({ ok: false, error: `${err.name}: ${err.message}` }),
  );
});
process.stdout.write(JSON.stringify({ ready: true }) + '\n');
