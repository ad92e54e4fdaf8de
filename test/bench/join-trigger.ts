// A join that is ready before the storm: run inside a site's namespace, it loads the gRPC client
// and connects to the helper, prints "ready", waits for one line on stdin and only then sends
// JoinParty. So a join storm measures the helpers and the control server, not 16 Node start-ups
// on 2 cores. Prints one JSON line: {"ok":true,"ms":...} (the RPC's own duration) or the error.
// Usage: node join-trigger.js --state-dir DIR [--grpc HOST:PORT] LINK
import { createInterface } from 'node:readline';
import { credentials, Metadata } from '@grpc/grpc-js';
import { PartyServiceClient, type JoinPartyRequest, type JoinPartyResponse } from '../../helper/gen/lanrage/v1/party.js';
import { readToken } from '../../helper/core/token.js';
import { unary } from '../../helper/cli/call.js';

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const stateDir = opt('state-dir');
const link = argv.filter((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--')).pop();
if (!stateDir || !link) {
  process.stderr.write('usage: join-trigger --state-dir DIR [--grpc HOST:PORT] LINK\n');
  process.exit(2);
}
const token = readToken(stateDir);
if (!token) {
  process.stderr.write(`no install token in ${stateDir}\n`);
  process.exit(2);
}
const client = new PartyServiceClient(opt('grpc') ?? '127.0.0.1:8667' /* the helper's default (roles/helper.ts); importing it loads the whole helper */, credentials.createInsecure());
client.waitForReady(new Date(Date.now() + 20_000), (err) => {
  if (err) {
    process.stdout.write(JSON.stringify({ ok: false, error: `helper not ready: ${err.message}` }) + '\n');
    process.exit(1);
  }
  process.stdout.write('ready\n');
  const rl = createInterface({ input: process.stdin });
  rl.once('line', () => {
    rl.close();
    const md = new Metadata();
    md.set('authorization', `Bearer ${token}`);
    const t0 = performance.now();
    unary<JoinPartyRequest, JoinPartyResponse>(client, client.joinParty, { inviteLink: link }, md, new Date(Date.now() + 30_000)).then(
      () => {
        process.stdout.write(JSON.stringify({ ok: true, ms: performance.now() - t0 }) + '\n');
        client.close();
      },
      (e: Error) => {
        process.stdout.write(JSON.stringify({ ok: false, error: e.message }) + '\n');
        client.close();
        process.exitCode = 1;
      },
    );
  });
});
