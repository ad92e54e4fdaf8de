// A player that relays through TURN, run inside a lab site: a real ControlClient (registration,
// party, GetRelays, UpdateEndpoints) and a real TurnClient whose credentials come from GetRelays
// each time it allocates. It does what the party engine will do with relayed addresses: publish
// its own (again after a re-allocation) and permit the other members' as they arrive.
//   node turn-player.js '<config json>'      config: { controlUrl, name, timing? }
// stdin:  {"id":1,"op":"create","name":"LAN"}   {"id":2,"op":"join","partyId","inviteSecret"}
//         {"id":3,"op":"relays"}   {"id":4,"op":"start","transport":"udp"|"tcp"}   (allocates, publishes)
//         {"op":"send","to":"ip:port","data":"..."}
// stdout: {"ev":"ready","deviceId"}  {"id":N,"ok":true,"result":...} | {"id":N,"ok":false,"error","code","timeout"}
//         {"ev":"data","from","data"}  {"ev":"allocated"|"reallocated"|"lost",...}
//         {"ev":"peers","relayed":[...]}  (the other members' relayed addresses, whenever they change)
// It closes both clients and exits when stdin closes.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { createLogger } from '../../../helper/core/log.js';
import { ControlClient, type RelayOffer } from '../../../helper/controlclient/client.js';
import { TransactionTimeout, TurnClient, TurnError, type TurnTiming } from '../../../helper/net/turn/index.js';

export const TURN_PLAYER_SCRIPT = fileURLToPath(import.meta.url);

export interface TurnPlayerConfig {
  controlUrl: string;
  name: string;
  timing?: Partial<TurnTiming>;
}

const out = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as TurnPlayerConfig;
  const log = createLogger({ driver: 'turn-player', name: cfg.name });
  const control = await ControlClient.connect({
    url: cfg.controlUrl,
    identity: generateKeyPairSync('ed25519').privateKey,
    name: cfg.name,
    wgPublicKey: randomBytes(32).toString('base64'),
    discoPublicKey: randomBytes(32).toString('base64'),
    log,
  });
  let turn: TurnClient | null = null;
  let credentialsFetched = 0;

  const otherRelayed = (): string[] => (control.party()?.members ?? []).filter((m) => !m.isSelf).flatMap((m) => m.relayed);
  let lastPeers = '';
  const syncPeers = (): void => {
    const peers = otherRelayed();
    if (JSON.stringify(peers) === lastPeers) return;
    lastPeers = JSON.stringify(peers);
    out({ ev: 'peers', relayed: peers });
    if (turn) turn.permit(peers).catch((err: unknown) => out({ ev: 'permit-failed', error: (err as Error).message }));
  };
  control.on('snapshot', syncPeers);
  control.on('member', syncPeers);
  control.on('memberLeft', syncPeers);
  const publish = (relayed: string): void => {
    control.updateEndpoints([], undefined, [relayed]).catch((err: unknown) => out({ ev: 'publish-failed', error: (err as Error).message }));
  };

  const pickRelay = (offers: RelayOffer[], transport: 'udp' | 'tcp'): RelayOffer => {
    const r = offers.find((o) => o.transports.includes(transport));
    if (!r) throw new Error(`no relay offers ${transport}`);
    return r;
  };

  const ops: Record<string, (a: Record<string, unknown>) => Promise<unknown>> = {
    create: async (a) => {
      const { party, inviteSecret } = await control.createParty(String(a.name));
      return { partyId: party.id, inviteSecret };
    },
    join: async (a) => {
      const p = await control.joinParty(String(a.partyId), String(a.inviteSecret));
      return { partyId: p.id };
    },
    relays: async () => control.getRelays(),
    start: async (a) => {
      const transport = a.transport === 'tcp' ? 'tcp' : 'udp';
      const offer = pickRelay(await control.getRelays(), transport);
      await turn?.close();
      const c = new TurnClient({
        server: { host: offer.host, port: offer.port, transport },
        // Fresh credentials from the control server for every allocation, the first included.
        getCredentials: async () => {
          const o = pickRelay(await control.getRelays(), transport);
          credentialsFetched++;
          return { username: o.username, password: o.password, realm: o.realm };
        },
        log,
        ...(cfg.timing ? { timing: cfg.timing } : {}),
      });
      c.on('data', (from, d) => out({ ev: 'data', from, data: d.toString() }));
      c.on('allocated', (r) => out({ ev: 'allocated', relayed: r }));
      c.on('reallocated', (r, prev) => {
        out({ ev: 'reallocated', relayed: r, previous: prev, credentialsFetched });
        publish(r);
        c.permit(otherRelayed()).catch(() => undefined);
      });
      c.on('lost', (why) => out({ ev: 'lost', reason: why }));
      try {
        const relayed = await c.start();
        turn = c;
        await control.updateEndpoints([], undefined, [relayed]);
        await c.permit(otherRelayed());
        return { relayed, via: c.stats().via, credentialsFetched };
      } catch (err) {
        await c.close();
        throw err;
      }
    },
    send: async (a) => turn?.send(String(a.to), Buffer.from(String(a.data))) ?? false,
  };

  const shutdown = async (): Promise<void> => {
    await turn?.close().catch(() => undefined);
    await control.close().catch(() => undefined);
    process.exit(0);
  };
  process.stdin.on('end', () => void shutdown());
  out({ ev: 'ready', deviceId: control.deviceId });
  createInterface({ input: process.stdin }).on('line', (line) => {
    let req: { id?: number; op: string } & Record<string, unknown>;
    try {
      req = JSON.parse(line) as typeof req;
    } catch {
      return;
    }
    const fn = ops[req.op];
    if (!fn) return out({ id: req.id, ok: false, error: `unknown op ${req.op}` });
    fn(req).then(
      (result) => req.id !== undefined && out({ id: req.id, ok: true, result }),
      (err: unknown) =>
        out({
          id: req.id,
          ok: false,
          error: err instanceof Error ? err.message : String(err),
          code: (err as { code?: unknown }).code ?? null,
          timeout: err instanceof TransactionTimeout,
          turn: err instanceof TurnError,
        }),
    );
  });
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === TURN_PLAYER_SCRIPT) {
  main().catch((err: unknown) => {
    out({ ev: 'fatal', message: (err as Error).message });
    process.exit(2);
  });
}
