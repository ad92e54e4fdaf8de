import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { PartyServiceClient } from '../../helper/gen/lanrage/v1/party.js';
import { PeerServiceClient } from '../../helper/gen/lanrage/v1/peer.js';
import { startHelper, removeStateDir, type HelperProcess } from '../lib/helper-process.js';

// The party API's answers that need no network: validation, not-in-a-party, unknown peers.
// (Parties themselves are tested across real NATs in test/lab/party.test.ts.)
let h: HelperProcess;
let party: PartyServiceClient;
let peers: PeerServiceClient;
const md = new Metadata();

before(async () => {
  h = await startHelper({ pwaDir: null });
  md.set('authorization', `Bearer ${h.token}`);
  party = new PartyServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
  peers = new PeerServiceClient(`127.0.0.1:${h.grpcPort}`, credentials.createInsecure());
});
after(async () => {
  party.close();
  peers.close();
  await h.stop();
  removeStateDir(h.stateDir);
});

const call = <T>(fn: (cb: (e: ServiceError | null, r: T) => void) => unknown): Promise<T> =>
  new Promise((resolve, reject) => fn((e, r) => (e ? reject(e) : resolve(r))));
const refused = (p: Promise<unknown>, code: Status, msg: RegExp) =>
  assert.rejects(p, (e: ServiceError) => {
    assert.equal(e.code, code, `${Status[e.code]}: ${e.details}`);
    assert.match(e.details, msg);
    return true;
  });

test('not in a party: GetParty is empty, ListPeers is empty, leave and ping say why', async () => {
  const g = await call<{ party?: unknown }>((cb) => party.getParty({}, cb));
  assert.equal(g.party, undefined);
  const l = await call<{ peers: unknown[] }>((cb) => peers.listPeers({}, cb));
  assert.deepEqual(l.peers, []);
  await refused(call((cb) => party.leaveParty({}, md, cb)), Status.FAILED_PRECONDITION, /not in a party/);
  await refused(call((cb) => peers.pingPeer({ peer: 'bob', count: 1 }, md, cb)), Status.NOT_FOUND, /no peer called "bob"/);
});

test('hostile names and links are refused before anything happens', async () => {
  for (const name of ['', '<script>alert(1)</script>', 'a'.repeat(49), '$(reboot)', ' leading space']) {
    await refused(call((cb) => party.createParty({ name }, md, cb)), Status.INVALID_ARGUMENT, /name must be/);
  }
  for (const inviteLink of ['', 'https://evil.example/join', 'lanrage://join?c=file%3A%2F%2F%2Fetc%2Fpasswd&p=x&s=y', 'x'.repeat(2000)]) {
    await refused(call((cb) => party.joinParty({ inviteLink }, md, cb)), Status.INVALID_ARGUMENT, /invite/);
  }
  await refused(call((cb) => peers.pingPeer({ peer: 'x', count: 50 }, md, cb)), Status.INVALID_ARGUMENT, /count/);
  await refused(call((cb) => party.kickPartyMember({ deviceId: '../../etc' }, md, cb)), Status.INVALID_ARGUMENT, /device_id/);
  // Still not in a party: nothing changed.
  assert.equal((await call<{ party?: unknown }>((cb) => party.getParty({}, cb))).party, undefined);
});

test('party changes need the install token', async () => {
  await refused(call((cb) => party.createParty({ name: 'No token' }, cb)), Status.UNAUTHENTICATED, /install token/);
  await refused(call((cb) => party.joinParty({ inviteLink: 'lanrage://join?c=x&p=y&s=z' }, cb)), Status.UNAUTHENTICATED, /install token/);
});
