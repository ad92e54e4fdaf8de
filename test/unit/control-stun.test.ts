import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { bindingResponse } from '../../helper/control/stun-responder.js';
import { authorityHost, stunHost, stunServersFor } from '../../helper/control/service.js';

// A Binding request built by hand (RFC 5389 §6), so the test does not trust the codec it checks.
function bindingRequest(tid = randomBytes(12), attrs = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(0x0001, 0);
  h.writeUInt16BE(attrs.length, 2);
  h.writeUInt32BE(0x2112a442, 4);
  tid.copy(h, 8);
  return Buffer.concat([h, attrs]);
}

/** Reads XOR-MAPPED-ADDRESS from a response by hand. */
function xorMapped(res: Buffer): { address: string; port: number } {
  assert.equal(res.readUInt16BE(0), 0x0101, 'Binding success response');
  assert.equal(res.readUInt16BE(2), res.length - 20);
  let off = 20;
  while (off + 4 <= res.length) {
    const type = res.readUInt16BE(off);
    const len = res.readUInt16BE(off + 2);
    const v = res.subarray(off + 4, off + 4 + len);
    if (type === 0x0020) {
      const port = v.readUInt16BE(2) ^ 0x2112;
      if (v[1] === 1) {
        const a = [0, 1, 2, 3].map((i) => v[4 + i]! ^ res[4 + i]!);
        return { address: a.join('.'), port };
      }
      const key = res.subarray(4, 20);
      const bytes = [...v.subarray(4, 20)].map((b, i) => b ^ key[i]!);
      const groups = [];
      for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
      return { address: groups.join(':'), port };
    }
    off += 4 + Math.ceil(len / 4) * 4;
  }
  throw new Error('no XOR-MAPPED-ADDRESS');
}

test('a Binding request gets XOR-MAPPED-ADDRESS = the sender, same transaction id', () => {
  const tid = randomBytes(12);
  const res = bindingResponse(bindingRequest(tid), { address: '203.0.113.7', port: 41641 })!;
  assert.ok(res);
  assert.ok(res.subarray(8, 20).equals(tid));
  assert.deepEqual(xorMapped(res), { address: '203.0.113.7', port: 41641 });
  // IPv4 clients of a dual-stack socket are answered as IPv4.
  assert.deepEqual(xorMapped(bindingResponse(bindingRequest(), { address: '::ffff:198.51.100.4', port: 9 })!), { address: '198.51.100.4', port: 9 });
  assert.deepEqual(xorMapped(bindingResponse(bindingRequest(), { address: '2001:db8::7', port: 5000 })!), { address: '2001:db8:0:0:0:0:0:7', port: 5000 });
});

test('a request with attributes (SOFTWARE) is answered; anything that is not a Binding request is not', () => {
  const software = Buffer.concat([Buffer.from([0x80, 0x22, 0x00, 0x04]), Buffer.from('test')]);
  assert.ok(bindingResponse(bindingRequest(undefined, software), { address: '192.0.2.1', port: 1 }));
  const from = { address: '192.0.2.1', port: 1 };
  assert.equal(bindingResponse(Buffer.alloc(0), from), null);
  assert.equal(bindingResponse(Buffer.alloc(20), from), null, 'no magic cookie');
  assert.equal(bindingResponse(Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), from), null, 'WireGuard initiation');
  const resp = bindingRequest();
  resp.writeUInt16BE(0x0101, 0);
  assert.equal(bindingResponse(resp, from), null, 'a response is not answered');
  const lying = bindingRequest(undefined, software);
  lying.writeUInt16BE(64, 2);
  assert.equal(bindingResponse(lying, from), null, 'length field disagrees with the datagram');
  const broken = bindingRequest(undefined, Buffer.from([0x80, 0x22, 0x00, 0x40, 1, 2, 3, 4]));
  assert.equal(bindingResponse(broken, from), null, 'attribute longer than the message');
  assert.equal(bindingResponse(Buffer.concat([bindingRequest(), Buffer.alloc(600)]), from), null, 'oversized');
});

test('stun_servers name the address the client can reach: configured, else the IP it used, else the listening IP', () => {
  assert.equal(authorityHost('192.0.2.1:8668'), '192.0.2.1');
  assert.equal(authorityHost('[2001:db8::1]:8668'), '2001:db8::1');
  assert.equal(authorityHost('control.example.net'), 'control.example.net');
  assert.equal(authorityHost('[bad'), undefined);
  assert.equal(stunHost('192.0.2.1:8668', '0.0.0.0', '203.0.113.50'), '203.0.113.50');
  assert.equal(stunHost('192.0.2.1:8668', '0.0.0.0'), '192.0.2.1');
  assert.equal(stunHost('localhost:8668', '127.0.0.1'), '127.0.0.1');
  assert.equal(stunHost('control.example.net:443', '::'), 'control.example.net');
  assert.deepEqual(stunServersFor('2001:db8::1', [3478, 3479]), ['[2001:db8::1]:3478', '[2001:db8::1]:3479']);
  assert.deepEqual(stunServersFor('192.0.2.1', [3478, 3479]), ['192.0.2.1:3478', '192.0.2.1:3479']);
});
