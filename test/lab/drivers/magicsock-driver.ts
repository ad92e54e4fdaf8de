// Runs one MagicSock inside a lab namespace, driven by JSON lines on stdin, reporting on stdout.
// A plain UDP socket stands in for WireGuard (its port is the "WireGuard port"), so the data path
// can be checked without wireguard-go. The test is the control plane: it relays call-me-maybe.
//
// stdin:  {"op":"start","port":41641,"discoPrivateKey":"...","stunServers":["ip:port"],"primingTtl":2,"fastPath":false,"wgInterface":"lrwg1",
//          "realWg":{"address":"10.66.0.1/16"}}   (realWg: wireguard-go via helper/wg instead of the stand-in)
//         {"op":"peers","peers":[MagicPeer & {allowedIps?}...]}      {"op":"cmm","peerId":"b","candidates":[...]}
//         {"op":"wgsend","key":"<peer wg key>","data":"<hex>"}
//         {"op":"ping","id":1,"peerId":"b","count":3}  {"op":"counters","id":2}
// stdout: {"type":"ready","port","wgPort","candidates","nat"}  {"type":"path","peerId","state","t"}
//         {"type":"cmm","peerId","candidates"}  {"type":"wgendpoint","key","endpoint"}
//         {"type":"wgrecv","from","data"}  {"type":"ping","id","results"}  {"type":"counters","id","counters"}
//         {"type":"fatal","message"}
// It exits when stdin closes (closing the MagicSock first, which removes its nft table).

import dgram from 'node:dgram';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { createLogger } from '../../../helper/core/log.js';
import { MagicSock, type MagicPeer, type PathState } from '../../../helper/net/magicsock.js';
import type { WgDevice } from '../../../helper/wg/index.js';

export const MAGICSOCK_DRIVER_SCRIPT = fileURLToPath(import.meta.url);

const out = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');

async function main(): Promise<void> {
  const t0 = Date.now();
  let ms: MagicSock | null = null;
  const wg = dgram.createSocket('udp4');
  const endpoints = new Map<string, string>();
  wg.on('message', (m, r) => out({ type: 'wgrecv', from: `${r.address}:${r.port}`, data: m.toString('hex') }));
  wg.bind(0, '0.0.0.0');
  await once(wg, 'listening');
  let wgPort = wg.address().port;
  let dev: WgDevice | null = null;

  const shutdown = async (): Promise<void> => {
    await ms?.close().catch(() => undefined);
    await dev?.close().catch(() => undefined);
    wg.close();
    process.exit(0);
  };
  process.stdin.on('end', () => void shutdown());

  for await (const line of createInterface({ input: process.stdin })) {
    let cmd: Record<string, unknown>;
    try {
      cmd = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    try {
      switch (cmd.op) {
        case 'start': {
          const log = createLogger({ ns: process.env.LAB_NS ?? '' });
          let wgPublicKey: string | undefined;
          const real = cmd.realWg as { address?: string } | undefined;
          if (real) {
            const wgm = await import('../../../helper/wg/index.js');
            const kp = wgm.generateKeyPair();
            dev = await wgm.createWgDevice({ name: String(cmd.wgInterface), privateKey: kp.privateKey, address: String(real.address), mtu: 1380, log });
            wgPort = dev.listenPort;
            wgPublicKey = kp.publicKey;
          }
          ms = new MagicSock({
            port: Number(cmd.port ?? 0),
            discoPrivateKey: String(cmd.discoPrivateKey),
            log,
            stunServers: () => (cmd.stunServers as string[]) ?? [],
            wgPort: () => wgPort,
            setWgEndpoint: async (key, ep) => {
              if (dev) await dev.setEndpoint(key, ep);
              endpoints.set(key, ep);
              out({ type: 'wgendpoint', key, endpoint: ep });
            },
            sendCallMeMaybe: (peerId, candidates, _spray, primed) => out({ type: 'cmm', peerId, candidates, primed: primed ?? [] }),
            primingTtl: Number(cmd.primingTtl ?? 2),
            fastPath: cmd.fastPath === true,
            wgInterface: typeof cmd.wgInterface === 'string' ? cmd.wgInterface : 'lrlab0',
          });
          ms.on('path', (peerId: string, state: PathState) => out({ type: 'path', peerId, state, t: Date.now() - t0 }));
          const { port } = await ms.start();
          const candidates = await ms.localCandidates();
          out({ type: 'ready', port, wgPort, candidates, nat: ms.natInfo(), ...(wgPublicKey ? { wgPublicKey } : {}) });
          break;
        }
        case 'peers': {
          const peers = cmd.peers as Array<MagicPeer & { allowedIps?: string[] }>;
          // WireGuard must know the peer before the helper points it at an endpoint.
          if (dev) for (const p of peers) if (p.allowedIps) await dev.setPeer({ publicKey: p.wgPublicKey, allowedIps: p.allowedIps });
          ms?.setPeers(peers);
          break;
        }
        case 'cmm':
          ms?.handleCallMeMaybe(String(cmd.peerId), cmd.candidates as string[], 0, (cmd.primed as string[] | undefined) ?? []);
          break;
        case 'wgsend': {
          const ep = endpoints.get(String(cmd.key));
          if (!ep) throw new Error(`no WireGuard endpoint for ${String(cmd.key)}`);
          const i = ep.lastIndexOf(':');
          wg.send(Buffer.from(String(cmd.data), 'hex'), Number(ep.slice(i + 1)), ep.slice(0, i));
          break;
        }
        case 'ping':
          // Not awaited: call-me-maybe relays must not wait behind a ping.
          ms?.ping(String(cmd.peerId), Number(cmd.count ?? 1), Number(cmd.timeoutMs ?? 1000)).then(
            (results) => out({ type: 'ping', id: cmd.id, results }),
            (err: Error) => out({ type: 'ping', id: cmd.id, error: err.message }),
          );
          break;
        case 'counters':
          if (ms) out({ type: 'counters', id: cmd.id, counters: ms.counters() });
          break;
        default:
          throw new Error(`unknown op ${String(cmd.op)}`);
      }
    } catch (err) {
      out({ type: 'fatal', message: (err as Error).message });
    }
  }
}

if (process.argv[1] && resolve(process.argv[1]) === MAGICSOCK_DRIVER_SCRIPT) {
  // helper/wg's run() ends a child's stdin without an 'error' listener; when the child has already
  // exited (`ip link add … type wireguard` without the kernel module), that EPIPE would kill this
  // driver. Reported to the lead; tolerated here only.
  process.on('uncaughtException', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' && err.syscall === 'write') return;
    out({ type: 'fatal', message: err.message });
    process.exit(1);
  });
  main().catch((err: Error) => {
    out({ type: 'fatal', message: err.message });
    process.exit(1);
  });
}
