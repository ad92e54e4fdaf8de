import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Code,
  classifyContentType,
  decodeBase64Chunks,
  decodeFrames,
  encodeDataFrame,
  encodeForWire,
  encodeTrailerFrame,
  isGrpcWebPath,
  maxRequestBodyBytes,
  parseGrpcTimeout,
  parseRequestBody,
  parseTrailerBlock,
  percentDecodeGrpcMessage,
  percentEncodeGrpcMessage,
  safeTrailerMetadata,
} from '../../helper/web/grpc-web-frames.js';

const MAX = 1024;

function framed(flag: number, payload: Buffer, declared = payload.length): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flag;
  head.writeUInt32BE(declared, 1);
  return Buffer.concat([head, payload]);
}

describe('request parsing', () => {
  it('binary: returns exactly the message bytes', () => {
    const msg = Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63]);
    const r = parseRequestBody(framed(0, msg), 'binary', MAX);
    assert.ok(r.ok);
    assert.deepEqual([...r.message], [...msg]);
  });

  it('binary: an empty message is valid', () => {
    const r = parseRequestBody(framed(0, Buffer.alloc(0)), 'binary', MAX);
    assert.ok(r.ok);
    assert.equal(r.message.length, 0);
  });

  it('text: decodes base64, including separately padded chunks', () => {
    const msg = Buffer.from('hello');
    const whole = Buffer.from(framed(0, msg).toString('base64'));
    const r1 = parseRequestBody(whole, 'text', MAX);
    assert.ok(r1.ok);
    assert.equal(r1.message.toString(), 'hello');
    // Header and message encoded as two padded chunks: 5 bytes → "AAAAAAU=", then "aGVsbG8=".
    const chunked = Buffer.from(Buffer.from([0, 0, 0, 0, 5]).toString('base64') + msg.toString('base64'));
    assert.match(chunked.toString(), /=.+=$/);
    const r2 = parseRequestBody(chunked, 'text', MAX);
    assert.ok(r2.ok);
    assert.equal(r2.message.toString(), 'hello');
  });

  const rejects: Array<[string, Buffer, 'binary' | 'text', number, RegExp]> = [
    ['empty body', Buffer.alloc(0), 'binary', Code.INVALID_ARGUMENT, /0 bytes/],
    ['short header', Buffer.from([0, 0, 0]), 'binary', Code.INVALID_ARGUMENT, /3 bytes.*5-byte frame header/],
    ['compressed flag', framed(1, Buffer.from('x')), 'binary', Code.UNIMPLEMENTED, /compressed/],
    ['trailer flag', framed(0x80, Buffer.from('x')), 'binary', Code.INVALID_ARGUMENT, /flag is 0x80/],
    ['unknown flag', framed(0x02, Buffer.from('x')), 'binary', Code.INVALID_ARGUMENT, /flag is 0x02/],
    ['truncated', framed(0, Buffer.from('abc'), 10), 'binary', Code.INVALID_ARGUMENT, /declares 10 .* only 3 arrived/],
    ['trailing bytes', framed(0, Buffer.from('abcdef'), 2), 'binary', Code.INVALID_ARGUMENT, /4 bytes after the first message/],
    ['two messages', Buffer.concat([framed(0, Buffer.from('a')), framed(0, Buffer.from('b'))]), 'binary', Code.INVALID_ARGUMENT, /exactly one message/],
    ['declared too large', framed(0, Buffer.from('a'), MAX + 1), 'binary', Code.RESOURCE_EXHAUSTED, /exceeds the limit of 1024/],
    ['bad base64 char', Buffer.from('AAAA*AAA'), 'text', Code.INVALID_ARGUMENT, /not valid base64/],
    ['url-safe base64', Buffer.from('AAAAAAF_'), 'text', Code.INVALID_ARGUMENT, /not valid base64/],
    ['whitespace in base64', Buffer.from('AAAA AAA='), 'text', Code.INVALID_ARGUMENT, /not valid base64/],
    ['lone base64 char', Buffer.from('AAAAB'), 'text', Code.INVALID_ARGUMENT, /not valid base64/],
    ['misplaced padding', Buffer.from('A=AA'), 'text', Code.INVALID_ARGUMENT, /not valid base64/],
    ['valid base64 bad frame', Buffer.from(framed(0, Buffer.from('ab'), 9).toString('base64')), 'text', Code.INVALID_ARGUMENT, /only 2 arrived/],
  ];
  for (const [name, body, format, code, re] of rejects) {
    it(`rejects: ${name}`, () => {
      const r = parseRequestBody(body, format, MAX);
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(r.code, code);
      assert.match(r.message, re);
    });
  }
});

describe('base64 chunks', () => {
  it('decodes concatenated padded chunks and an unpadded tail', () => {
    const parts = ['a', 'bc', 'def', 'ghij'].map((s) => Buffer.from(s).toString('base64'));
    assert.equal(decodeBase64Chunks(parts.join(''))?.toString(), 'abcdefghij');
    assert.equal(decodeBase64Chunks('YWI')?.toString(), 'ab');
    assert.equal(decodeBase64Chunks('')?.length, 0);
    assert.equal(decodeBase64Chunks('YQ==YQ')?.toString(), 'aa');
    assert.equal(decodeBase64Chunks('Y==='), null);
    assert.equal(decodeBase64Chunks('YQ=='.repeat(2) + 'Y'), null);
  });
});

describe('response frames', () => {
  it('data frame round trip', () => {
    const msg = Buffer.from([1, 2, 3, 255]);
    const f = encodeDataFrame(msg);
    assert.deepEqual([...f.subarray(0, 5)], [0, 0, 0, 0, 4]);
    const { frames, rest } = decodeFrames(f);
    assert.equal(frames.length, 1);
    assert.equal(frames[0]?.flag, 0);
    assert.deepEqual([...(frames[0]?.payload ?? [])], [...msg]);
    assert.equal(rest.length, 0);
  });

  it('trailer frame carries status, percent-encoded message and metadata', () => {
    const f = encodeTrailerFrame(9, 'party is full — 8/8 (100%)', [['x-reason', 'full']]);
    assert.equal(f[0], 0x80);
    const { frames } = decodeFrames(f);
    const payload = frames[0]?.payload ?? Buffer.alloc(0);
    assert.equal(payload.toString('latin1'), 'grpc-status:9\r\ngrpc-message:party is full %E2%80%94 8/8 (100%25)\r\nx-reason:full\r\n');
    const t = parseTrailerBlock(payload);
    assert.equal(t.get('grpc-status'), '9');
    assert.equal(percentDecodeGrpcMessage(t.get('grpc-message') ?? ''), 'party is full — 8/8 (100%)');
    assert.equal(t.get('x-reason'), 'full');
  });

  it('decodeFrames keeps an incomplete frame as rest', () => {
    const all = Buffer.concat([encodeDataFrame(Buffer.from('one')), encodeDataFrame(Buffer.from('two'))]);
    const { frames, rest } = decodeFrames(all.subarray(0, all.length - 1));
    assert.equal(frames.length, 1);
    assert.equal(frames[0]?.payload.toString(), 'one');
    assert.equal(rest.length, 7);
  });

  it('text mode base64-encodes each frame on its own', () => {
    const a = encodeForWire(encodeDataFrame(Buffer.from('x')), 'text');
    const b = encodeForWire(encodeTrailerFrame(0, ''), 'text');
    assert.equal(a.toString(), Buffer.from([0, 0, 0, 0, 1, 0x78]).toString('base64'));
    const { frames } = decodeFrames(decodeBase64Chunks(Buffer.concat([a, b]).toString()) ?? Buffer.alloc(0));
    assert.deepEqual(frames.map((f) => f.flag), [0, 0x80]);
    assert.equal(encodeForWire(Buffer.from([1, 2]), 'binary').length, 2);
  });
});

describe('percent-encoding', () => {
  it('encodes only what the gRPC spec requires', () => {
    assert.equal(percentEncodeGrpcMessage('plain text: ok!'), 'plain text: ok!');
    assert.equal(percentEncodeGrpcMessage('100%'), '100%25');
    assert.equal(percentEncodeGrpcMessage('a\r\nb'), 'a%0D%0Ab');
    assert.equal(percentEncodeGrpcMessage('é'), '%C3%A9');
    assert.equal(percentEncodeGrpcMessage('\x7f'), '%7F');
  });
  it('decodes and tolerates malformed escapes', () => {
    assert.equal(percentDecodeGrpcMessage('%C3%A9t%C3%A9'), 'été');
    assert.equal(percentDecodeGrpcMessage('50%'), '50%');
    assert.equal(percentDecodeGrpcMessage('%zz'), '%zz');
    const s = 'mixed ✓ 100% \n done';
    assert.equal(percentDecodeGrpcMessage(percentEncodeGrpcMessage(s)), s);
  });
});

describe('grpc-timeout', () => {
  it('parses every unit', () => {
    assert.equal(parseGrpcTimeout('2H'), 7_200_000);
    assert.equal(parseGrpcTimeout('3M'), 180_000);
    assert.equal(parseGrpcTimeout('5S'), 5_000);
    assert.equal(parseGrpcTimeout('250m'), 250);
    assert.equal(parseGrpcTimeout('1500u'), 1.5);
    assert.equal(parseGrpcTimeout('2000000n'), 2);
    assert.equal(parseGrpcTimeout('99999999m'), 99_999_999);
  });
  it('rejects malformed values', () => {
    for (const v of ['', 'm', '10', '10s', '10ms', '-1m', '1.5S', '123456789m', '10 m x', '0x10m']) {
      assert.equal(parseGrpcTimeout(v), null, v);
    }
  });
});

describe('content types and paths', () => {
  it('classifies the four accepted content types', () => {
    assert.equal(classifyContentType('application/grpc-web')?.format, 'binary');
    assert.equal(classifyContentType('application/grpc-web+proto')?.responseContentType, 'application/grpc-web+proto');
    assert.equal(classifyContentType('Application/GRPC-Web-Text; charset=utf-8')?.format, 'text');
    assert.equal(classifyContentType('application/grpc-web-text+proto')?.responseContentType, 'application/grpc-web-text+proto');
    for (const bad of [undefined, '', 'application/grpc', 'application/json', 'text/plain', 'application/grpc-web+json', 'application/grpc-webx']) {
      assert.equal(classifyContentType(bad), null, String(bad));
    }
  });
  it('recognises gRPC method paths', () => {
    assert.ok(isGrpcWebPath('/lanrage.v1.PartyService/Join'));
    assert.ok(isGrpcWebPath('/test.Echo/Unary'));
    for (const bad of ['/', '/a/b/c', '/x.Y/', '/.x/Y', '/x.Y/1a', '/x.Y/M?x=1', '/x-y.Z/M']) {
      assert.equal(isGrpcWebPath(bad), false, bad);
    }
  });
  it('body caps include framing and base64 growth', () => {
    assert.equal(maxRequestBodyBytes(1024, 'binary'), 1029);
    assert.equal(maxRequestBodyBytes(1024, 'text'), 4 * 343 + 4);
    const body = Buffer.from(framed(0, Buffer.alloc(1024)).toString('base64'));
    assert.ok(body.length <= maxRequestBodyBytes(1024, 'text'));
  });
});

describe('trailer metadata filter', () => {
  it('keeps safe ascii and base64s -bin values, drops the rest', () => {
    const out = safeTrailerMetadata({
      'x-reason': ['full'],
      'x-bad': ['line\r\ninjected: yes'],
      'x-utf8': ['é'],
      'grpc-status': ['0'],
      'content-type': ['text/html'],
      'Upper': ['x'],
      'x-detail-bin': [Buffer.from([0, 1, 2])],
      'x-wrong-bin': ['not a buffer'],
    });
    assert.deepEqual(out, [
      ['x-reason', 'full'],
      ['x-detail-bin', 'AAEC'],
    ]);
  });
});
