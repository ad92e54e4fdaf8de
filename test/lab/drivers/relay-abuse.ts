// Runs inside a lab namespace: a party member that takes the relay credentials the control server
// hands it and tries to use the relay for an address outside the party. Prints one JSON line:
// { relayed, outsideRefused, error? }. Usage: node relay-abuse.js CONTROL_URL INVITE_LINK OUTSIDE_IP:PORT

import { generateKeyPairSync } from 'node:crypto';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../../helper/core/log.js';
import { ControlClient } from '../../../helper/controlclient/client.js';
import { parseInviteLink } from '../../../helper/controlclient/invite.js';
import { generateDiscoKey } from '../../../helper/net/disco.js';
import { TurnClient, TurnError } from '../../../helper/net/turn/index.js';
import { generateKeyPair } from '../../../helper/wg/keys.js';

export const RELAY_ABUSE_SCRIPT = fileURLToPath(import.meta.url);

async function main(controlUrl: string, invite: string, outside: string): Promise<void> {
  const log = createLogger({ part: 'relay-abuse' });
  const link = parseInviteLink(invite);
  const c = await ControlClient.connect({
    url: controlUrl,
    identity: generateKeyPairSync('ed25519').privateKey,
    name: 'Mallory',
    wgPublicKey: generateKeyPair().publicKey,
    discoPublicKey: generateDiscoKey().publicKey,
    log,
  });
  const out: { relayed: string | null; outsideRefused: boolean; error?: string } = { relayed: null, outsideRefused: false };
  let turn: TurnClient | undefined;
  try {
    await c.joinParty(link.partyId, link.secret);
    const [offer] = await c.getRelays();
    if (!offer) throw new Error('no relay offered');
    turn = new TurnClient({
      server: { host: offer.host, port: offer.port, transport: 'udp' },
      getCredentials: async () => ({ username: offer.username, password: offer.password }),
      log,
    });
    out.relayed = await turn.start();
    try {
      await turn.permit([outside]);
    } catch (err) {
      out.outsideRefused = err instanceof TurnError && err.code === 403;
      if (!out.outsideRefused) out.error = String(err);
    }
  } catch (err) {
    out.error = String(err);
  } finally {
    await turn?.close().catch(() => undefined);
    await c.leaveParty().catch(() => undefined);
    await c.close().catch(() => undefined);
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === RELAY_ABUSE_SCRIPT) {
  const [url, invite, outside] = process.argv.slice(2);
  if (!url || !invite || !outside) {
    process.stderr.write('usage: relay-abuse CONTROL_URL INVITE_LINK OUTSIDE_IP:PORT\n');
    process.exit(2);
  }
  main(url, invite, outside).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stdout.write(`${JSON.stringify({ relayed: null, outsideRefused: false, error: String(err) })}\n`);
      process.exit(1);
    },
  );
}
