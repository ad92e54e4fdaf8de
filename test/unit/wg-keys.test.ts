import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, isWgKey, keyFromHex, keyToHex, loadOrCreateKeyPair, parseKeyFile, publicKeyOf } from '../../helper/wg/index.js';
import { requireOrSkip } from '../lib/repo.js';

function hasWg(): boolean {
  try {
    execFileSync('wg', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function wgPubkey(priv: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('wg', ['pubkey'], (err, stdout) => (err ? reject(err) : resolve(stdout.trim())));
    child.stdin!.end(priv + '\n');
  });
}

test('RFC 7748 X25519 test vector: our derivation is plain X25519', () => {
  // Alice's key pair from RFC 7748 section 6.1.
  const priv = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex').toString('base64');
  const pub = Buffer.from('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', 'hex').toString('base64');
  assert.equal(publicKeyOf(priv), pub);
});

test('generated keys are what `wg pubkey` derives, and clamped like `wg genkey`', async (t) => {
  if (!requireOrSkip(hasWg(), 'wg (Debian wireguard-tools)', t)) return;
  for (let i = 0; i < 8; i++) {
    const kp = generateKeyPair();
    assert.ok(isWgKey(kp.privateKey) && isWgKey(kp.publicKey));
    assert.equal(kp.publicKey, await wgPubkey(kp.privateKey));
    const raw = Buffer.from(kp.privateKey, 'base64');
    assert.equal(raw[0]! & 7, 0);
    assert.equal(raw[31]! & 0xc0, 0x40);
  }
  // And the other way round: a key made by `wg genkey`.
  const wgPriv = execFileSync('wg', ['genkey'], { encoding: 'utf8' }).trim();
  assert.equal(publicKeyOf(wgPriv), await wgPubkey(wgPriv));
  assert.notEqual(generateKeyPair().privateKey, generateKeyPair().privateKey);
});

test('isWgKey accepts exactly 32 bytes of canonical standard base64', () => {
  const good = generateKeyPair().publicKey;
  assert.equal(isWgKey(good), true);
  const bad: unknown[] = [
    '',
    good.slice(0, 43), // no padding
    good + '=',
    good.slice(0, 42) + '=', // 31 bytes
    Buffer.alloc(33).toString('base64'), // 44 chars, no '=': 33 bytes
    good.slice(0, 42) + 'B=', // non-zero padding bits: a second spelling of some key
    'A'.repeat(41) + '-_=', // base64url alphabet
    good.slice(0, 10) + ' ' + good.slice(11),
    good + '\n',
    '\n' + good.slice(1),
    good.replace(/.$/, '%'),
    keyToHex(good),
    42,
    null,
    undefined,
  ];
  for (const b of bad) assert.equal(isWgKey(b), false, `accepted ${JSON.stringify(b)}`);
  assert.throws(() => publicKeyOf('not a key'), /not a WireGuard key/);
});

test('hex <-> base64 (the UAPI spelling) round-trips and is strict', () => {
  const k = generateKeyPair().privateKey;
  const hex = keyToHex(k);
  assert.match(hex, /^[0-9a-f]{64}$/);
  assert.equal(keyFromHex(hex), k);
  assert.throws(() => keyFromHex(hex.toUpperCase()));
  assert.throws(() => keyFromHex(hex.slice(2)));
  assert.throws(() => keyFromHex(hex + '\nprivate_key=00'));
});

test('loadOrCreateKeyPair: created once, 0600, in wg format; reloads the same key; tightens loose modes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lanrage-wgkey-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'sub', 'wg.key');
  const first = loadOrCreateKeyPair(file);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(readFileSync(file, 'utf8'), first.privateKey + '\n');
  assert.deepEqual(loadOrCreateKeyPair(file), first);
  if (hasWg()) assert.equal(first.publicKey, await wgPubkey(readFileSync(file, 'utf8').trim()));
  chmodSync(file, 0o644);
  loadOrCreateKeyPair(file);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  // No temp files left behind.
  assert.deepEqual(execFileSync('ls', ['-A', join(dir, 'sub')], { encoding: 'utf8' }).trim().split('\n'), ['wg.key']);
});

test('loadOrCreateKeyPair reads JSON and refuses garbage instead of replacing it', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lanrage-wgkey-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kp = generateKeyPair();
  const json = join(dir, 'k.json');
  writeFileSync(json, JSON.stringify({ privateKey: kp.privateKey, publicKey: 'ignored' }), { mode: 0o600 });
  assert.deepEqual(loadOrCreateKeyPair(json), kp);
  const junk = join(dir, 'junk');
  writeFileSync(junk, 'hello\n', { mode: 0o600 });
  assert.throws(() => loadOrCreateKeyPair(junk), /does not hold a WireGuard private key/);
  assert.equal(readFileSync(junk, 'utf8'), 'hello\n');
  assert.throws(() => parseKeyFile('{"privateKey": 5}'), /does not hold/);
  assert.throws(() => parseKeyFile('{broken'), /neither/);
});
