import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flag, parseArgs, portFlag } from '../../helper/core/args.js';
import { bearerToken, loadOrCreateToken, tokenMatches } from '../../helper/core/token.js';

test('flags: values, =values, repeats, booleans, errors', () => {
  const a = parseArgs(['settings', 'set', '--grpc', '127.0.0.1:1', '--allow-host=a', '--allow-host', 'b', '--json']);
  assert.deepEqual(a.positional, ['settings', 'set']);
  assert.equal(flag(a, 'grpc'), '127.0.0.1:1');
  assert.deepEqual(a.flags.get('allow-host'), ['a', 'b']);
  assert.equal(flag(a, 'json'), 'true');
  assert.throws(() => parseArgs(['--grpc']), /needs a value/);
  assert.throws(() => portFlag(parseArgs(['--http-port', '70000']), 'http-port', 1), /port number/);
  assert.throws(() => portFlag(parseArgs(['--http-port', '1e3']), 'http-port', 1), /port number/);
  assert.equal(portFlag(parseArgs([]), 'http-port', 8666), 8666);
});

test('the install token is created once, 0600, and reused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lanrage-token-'));
  try {
    const t1 = loadOrCreateToken(dir);
    assert.match(t1, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(statSync(join(dir, 'api-token')).mode & 0o777, 0o600);
    assert.equal(loadOrCreateToken(dir), t1);
    writeFileSync(join(dir, 'api-token'), 'short\n');
    assert.notEqual(loadOrCreateToken(dir), 'short');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bearer parsing and constant-time comparison', () => {
  assert.equal(bearerToken('Bearer abc'), 'abc');
  assert.equal(bearerToken('bearer   abc  '), 'abc');
  assert.equal(bearerToken('Basic abc'), undefined);
  assert.equal(bearerToken(undefined), undefined);
  assert.equal(tokenMatches('abc', 'abc'), true);
  assert.equal(tokenMatches('abc', 'abd'), false);
  assert.equal(tokenMatches('abc', 'abcd'), false);
  assert.equal(tokenMatches('abc', undefined), false);
});
