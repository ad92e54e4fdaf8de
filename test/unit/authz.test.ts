import assert from 'node:assert/strict';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { authorize, decodeForwarded, encodeForwarded, type Identity, type Policy } from '../../helper/authz/authz.js';
import { canonicalIp, findOwner, parseProcNetTcp, socketOwnerUid, splitPeer } from '../../helper/authz/socket-owner.js';
import { parseOperatorFlag } from '../../helper/authz/operator.js';

// Lines as Linux prints them on x86 (little-endian words).
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:20C3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:D431 0100007F:20C3 01 00000000:00000000 00:00000000 00000000  1001        0 2 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:20C3 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
   garbage line
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:D432 00000000000000000000000001000000:20C3 01 00000000:00000000 00:00000000 00000000  1002        0 4 1
   1: 0000000000000000FFFF00000100007F:D433 0000000000000000FFFF00000100007F:20C3 01 00000000:00000000 00:00000000 00000000  1003        0 5 1
`;

describe('socket owner (/proc/net/tcp)', () => {
  it('parses v4 and v6 tables and finds the client end of a connection, not the server end', () => {
    const v4 = parseProcNetTcp(TCP);
    assert.equal(v4.length, 3);
    assert.equal(findOwner(v4, { clientAddr: '127.0.0.1', clientPort: 0xd431, serverAddr: '127.0.0.1', serverPort: 0x20c3 }), 1001);
    // The server's accepted socket (local 8387, remote 54321) is root's: never mistaken for the client.
    assert.equal(findOwner(v4, { clientAddr: '127.0.0.1', clientPort: 0x20c3, serverAddr: '127.0.0.1', serverPort: 0xd431 }), 0);
    assert.equal(findOwner(v4, { clientAddr: '127.0.0.1', clientPort: 0xd431, serverAddr: '127.0.0.1', serverPort: 1 }), null);
    assert.equal(findOwner(v4, { clientAddr: '127.0.0.2', clientPort: 0xd431, serverAddr: null, serverPort: 0x20c3 }), null);
    const v6 = parseProcNetTcp(TCP6);
    assert.equal(findOwner(v6, { clientAddr: '::1', clientPort: 0xd432, serverAddr: '::1', serverPort: 0x20c3 }), 1002);
    assert.equal(findOwner(v6, { clientAddr: '::ffff:127.0.0.1', clientPort: 0xd433, serverAddr: '127.0.0.1', serverPort: 0x20c3 }), 1003);
  });

  it('canonicalises addresses and splits grpc-js peers', () => {
    assert.equal(canonicalIp('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(canonicalIp('[::1]'), '0000:0000:0000:0000:0000:0000:0000:0001');
    assert.equal(canonicalIp('0:0::1'), canonicalIp('::1'));
    assert.equal(canonicalIp('not-an-ip'), null);
    assert.deepEqual(splitPeer('127.0.0.1:5000'), { addr: '127.0.0.1', port: 5000 });
    assert.deepEqual(splitPeer('::1:5000'), { addr: '::1', port: 5000 });
    assert.deepEqual(splitPeer('[::1]:5000'), { addr: '[::1]', port: 5000 });
    assert.equal(splitPeer('unknown'), null);
    assert.equal(splitPeer('127.0.0.1:99999'), null);
  });

  it('names this process as the owner of a real loopback connection (Linux)', async (t) => {
    if (process.platform !== 'linux') return t.skip('needs /proc/net/tcp');
    const server = createServer(() => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const sock = createConnection(port, '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', r));
    const uid = await socketOwnerUid({ clientAddr: '127.0.0.1', clientPort: sock.localPort!, serverAddr: '127.0.0.1', serverPort: port });
    sock.destroy();
    server.close();
    assert.equal(uid, process.getuid!());
  });
});

describe('authorize', () => {
  const policy: Policy = { selfUid: 0, operatorUid: 1000, ownersKnowable: true };
  const local = (uid: number | null, via: 'grpc' | 'web', tokenOk: boolean): Identity => ({ kind: 'local', uid, via, tokenOk });

  it('gives other local users nothing, token or not', () => {
    for (const via of ['grpc', 'web'] as const) {
      for (const tok of [true, false]) {
        for (const need of ['read', 'control'] as const) {
          const d = authorize(local(1001, via, tok), need, policy);
          assert.equal(d.ok, false);
          assert.equal(!d.ok && d.reason, 'denied');
          assert.equal(authorize(local(null, via, tok), need, policy).ok, false);
        }
      }
    }
  });

  it('lets root read, and control with the token; the operator controls natively without it', () => {
    assert.equal(authorize(local(0, 'grpc', false), 'read', policy).ok, true);
    assert.equal(authorize(local(0, 'grpc', false), 'control', policy).ok, false);
    assert.equal(authorize(local(0, 'grpc', true), 'control', policy).ok, true);
    assert.equal(authorize(local(1000, 'grpc', false), 'control', policy).ok, true);
    // A browser tab needs the session token whoever runs it: any page can post to localhost.
    assert.equal(authorize(local(1000, 'web', false), 'control', policy).ok, false);
    assert.equal(authorize(local(1000, 'web', true), 'control', policy).ok, true);
    assert.equal(authorize(local(1000, 'web', false), 'read', policy).ok, true);
  });

  it('scoped remote tokens: view reads, control changes', () => {
    assert.equal(authorize({ kind: 'remote', scope: 'view', deviceId: 'a' }, 'read', policy).ok, true);
    assert.equal(authorize({ kind: 'remote', scope: 'view', deviceId: 'a' }, 'control', policy).ok, false);
    assert.equal(authorize({ kind: 'remote', scope: 'control', deviceId: 'a' }, 'control', policy).ok, true);
  });

  it('without /proc the token decides (documented fallback)', () => {
    const blind: Policy = { ...policy, ownersKnowable: false };
    assert.equal(authorize(local(null, 'grpc', false), 'control', blind).ok, false);
    assert.equal(authorize(local(null, 'grpc', true), 'control', blind).ok, true);
  });

  it('forwarded identities round-trip; malformed ones are refused', () => {
    const ids: Identity[] = [local(1000, 'web', true), local(null, 'web', false), { kind: 'remote', scope: 'view', deviceId: 'dev_1' }];
    for (const id of ids) assert.deepEqual(decodeForwarded(encodeForwarded(id)), id);
    for (const bad of ['', 'local', 'local;uid=x;via=web', 'local;uid=1;via=ssh', 'remote;scope=admin;device=a', 'remote;scope=view;device=a b', 'root']) {
      assert.equal(decodeForwarded(bad), null, bad);
    }
  });

  it('--operator takes a uid or a name from /etc/passwd', () => {
    const passwd = 'root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n';
    assert.equal(parseOperatorFlag('1000', passwd), 1000);
    assert.equal(parseOperatorFlag('alice', passwd), 1000);
    assert.throws(() => parseOperatorFlag('bob', passwd), /no such user/);
  });
});
