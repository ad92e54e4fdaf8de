// A minimal STUN Binding answerer for tests: every Binding request gets a success response with
// XOR-MAPPED-ADDRESS = the request's source. Several ports on one address let a client tell
// endpoint-independent from endpoint-dependent NAT mapping.
//   node dist/test/lab/drivers/stun-answerer.js --host 0.0.0.0 --port 3478 --port 3479
// prints {"type":"ready","ports":[3478,3479]} and exits when stdin closes.

import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { BINDING_REQUEST, decodeStun, encodeBindingResponse } from '../../../helper/net/stun.js';

export const STUN_ANSWERER_SCRIPT = fileURLToPath(import.meta.url);

export interface StunAnswerer {
  ports: number[];
  answered: number;
  close(): Promise<void>;
}

export async function startStunAnswerer(host: string, ports: number[]): Promise<StunAnswerer> {
  const socks: dgram.Socket[] = [];
  const st: StunAnswerer = {
    ports: [],
    answered: 0,
    close: async () => {
      await Promise.all(socks.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
  for (const port of ports) {
    const s = dgram.createSocket('udp4');
    s.on('message', (msg, r) => {
      const d = decodeStun(msg);
      if (!d || d.type !== BINDING_REQUEST || r.family !== 'IPv4') return;
      st.answered++;
      s.send(encodeBindingResponse(d.txid, { ip: r.address, port: r.port }), r.port, r.address);
    });
    s.on('error', () => {});
    await new Promise<void>((res, rej) => {
      s.once('error', rej);
      s.bind(port, host, () => res());
    });
    socks.push(s);
    st.ports.push(s.address().port);
  }
  return st;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let host = '0.0.0.0';
  const ports: number[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--host') host = args[++i] ?? host;
    else if (args[i] === '--port') ports.push(Number(args[++i]));
  }
  const st = await startStunAnswerer(host, ports.length ? ports : [3478, 3479]);
  process.stdout.write(JSON.stringify({ type: 'ready', ports: st.ports }) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => void st.close().then(() => process.exit(0)));
}

if (process.argv[1] && resolve(process.argv[1]) === STUN_ANSWERER_SCRIPT) void main();
