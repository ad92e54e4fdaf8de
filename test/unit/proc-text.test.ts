import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readProcText } from '../../helper/core/proc-text.js';

test('readProcText gives what readFileSync gives, for procfs files and files larger than its buffer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'proc-text-'));
  try {
    // Bigger than the kept buffer (16 KiB), with every byte value: latin1 keeps bytes 1:1.
    const big = Buffer.alloc(40_000);
    for (let i = 0; i < big.length; i++) big[i] = i % 256;
    const file = join(dir, 'big');
    writeFileSync(file, big);
    assert.equal(readProcText(file), big.toString('latin1'));
    // A shorter file after the buffer grew: no bytes of the previous read leak into it.
    writeFileSync(join(dir, 'small'), 'cpu  1 2 3\n');
    assert.equal(readProcText(join(dir, 'small')), 'cpu  1 2 3\n');
    writeFileSync(join(dir, 'empty'), '');
    assert.equal(readProcText(join(dir, 'empty')), '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // procfs reports size 0; the text must still be complete (files that do not change while read).
  assert.equal(readProcText('/proc/self/cmdline'), readFileSync('/proc/self/cmdline', 'latin1'));
  assert.match(readProcText('/proc/meminfo'), /^MemTotal:\s+\d+ kB/);
  assert.throws(() => readProcText(join(dir, 'gone')), { code: 'ENOENT' });
});
