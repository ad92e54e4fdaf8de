// The helper's PortMapper on its own, run inside a lab host namespace, so that each protocol is
// tried alone against a real router. Every line on stdout is one JSON object.
//
//   probe                 asks the gateway which protocols answer; prints {"answered":[...],"ms","packets"}
//   map PROTOCOL LEASE    maps a bound UDP port with PROTOCOL only (lease in seconds); prints
//                         {"ev":"mapped","external","protocol","internalPort","ms","packets"}, then on
//                         stdin "stop" deletes it and prints {"ev":"stopped"} and exits

import dgram from 'node:dgram';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../../helper/core/log.js';
import { PortMapper, PORTMAP_PROTOCOLS, type PortMapProtocol } from '../../../helper/net/portmapper/portmapper.js';

export const PORTMAP_DRIVER = fileURLToPath(import.meta.url);

const out = (o: object): void => void process.stdout.write(JSON.stringify(o) + '\n');

async function main(): Promise<void> {
  const [mode, proto, lease] = process.argv.slice(2);
  const log = createLogger({ part: 'portmap-driver' });
  if (mode === 'probe') {
    const pm = new PortMapper({ internalPort: () => 0, onChange: () => undefined, log });
    const t0 = Date.now();
    const answered = await pm.probe();
    out({ answered, ms: Date.now() - t0, packets: pm.packetsSent });
    return;
  }
  if (mode !== 'map' || !PORTMAP_PROTOCOLS.includes(proto as PortMapProtocol)) throw new Error('usage: probe | map pcp|nat-pmp|upnp LEASE');
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '0.0.0.0', r));
  const port = sock.address().port;
  const t0 = Date.now();
  let pm: PortMapper | undefined = undefined;
  pm = new PortMapper({
    internalPort: () => port,
    protocols: [proto as PortMapProtocol],
    leaseSeconds: Number(lease ?? 7200),
    log,
    onChange: (external) => {
      if (external) out({ ev: 'mapped', external, protocol: pm?.mapped()?.protocol, internalPort: port, ms: Date.now() - t0, packets: pm?.packetsSent });
    },
  });
  pm.start();
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() === 'stop') break;
  }
  await pm.stop();
  sock.close();
  out({ ev: 'stopped' });
}

// Imported by the test for its path only.
if (process.argv[1] === PORTMAP_DRIVER) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
