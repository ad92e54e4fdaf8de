import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redactEventForViewer, redactForViewer, redactsSecrets } from '../../helper/api/redact.js';
import { InviteReach, type Party } from '../../helper/gen/lanrage/v1/party.js';
import { decodeForwarded, encodeForwarded } from '../../helper/authz/authz.js';

const party: Party = {
  id: 'p1',
  name: 'LAN night',
  inviteLink: 'lanrage://join?c=http%3A%2F%2F192.0.2.1%3A8667&p=p1&s=SECRET',
  members: [],
  networkCidr: '10.66.0.0/16',
  createdAt: new Date(0),
  inviteReach: InviteReach.INVITE_REACH_UNSPECIFIED,
  inviteNote: 'friends on other networks cannot reach this',
};

test('a view-only viewer gets the party without its invite link, everything else intact', () => {
  const shown = redactForViewer(party);
  assert.equal(shown.inviteLink, '');
  assert.deepEqual({ ...shown, inviteLink: party.inviteLink }, party);
  assert.match(party.inviteLink, /SECRET/, 'the original is not changed');
});

test('watch events: party events lose the link; other events and "no party" pass as they are', () => {
  assert.equal(redactEventForViewer({ party: { party } }).party?.party?.inviteLink, '');
  const none = { party: {} };
  assert.equal(redactEventForViewer(none), none);
  const rotation = { rotation: { reason: 'x' } };
  assert.equal(redactEventForViewer(rotation), rotation);
});

test('only a paired device with a view token is redacted (as the bridge forwards it)', () => {
  const who = (s: string) => redactsSecrets(decodeForwarded(s) ?? undefined);
  assert.equal(who(encodeForwarded({ kind: 'remote', scope: 'view', deviceId: 'd1' })), true);
  assert.equal(who(encodeForwarded({ kind: 'remote', scope: 'control', deviceId: 'd1' })), false);
  assert.equal(who(encodeForwarded({ kind: 'local', uid: 0, via: 'web', tokenOk: true })), false);
  assert.equal(redactsSecrets({ kind: 'local', uid: 1000, via: 'grpc', tokenOk: false }), false);
  assert.equal(redactsSecrets(undefined), false);
});
