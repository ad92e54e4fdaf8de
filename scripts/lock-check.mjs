#!/usr/bin/env node
// Is node_modules what package-lock.json pins? Exit 0 when every package the lock installs on this
// platform is present at its pinned version, 1 (with the first differences) otherwise. Shared by
// `npm start` (scripts/start.sh) and `npm test` (test/run.sh) to decide whether `npm ci` must run.
//
// Reads the installed package.json files rather than trusting a stamp: a stamp says when npm ci
// last ran here, not what node_modules holds now (a shared or hand-edited install has none, or a
// stale one). ~600 small reads: well under a second. No dependencies: it runs before any install.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = process.argv[2] ?? process.cwd();
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
if (lock.lockfileVersion < 2 || typeof lock.packages !== 'object') {
  console.error('package-lock.json has no "packages" map (lockfileVersion 2 or 3 needed)');
  process.exit(2);
}

const problems = [];
for (const [path, meta] of Object.entries(lock.packages)) {
  if (path === '' || !path.startsWith('node_modules/') || meta.link) continue;
  const manifest = join(root, path, 'package.json');
  if (!existsSync(manifest)) {
    // Optional packages for other platforms (buf's and rollup's native binaries) are never installed.
    if (!meta.optional) problems.push(`missing ${path.slice('node_modules/'.length)}@${meta.version}`);
    continue;
  }
  const version = JSON.parse(readFileSync(manifest, 'utf8')).version;
  if (version !== meta.version) problems.push(`${path.slice('node_modules/'.length)} is ${version}, the lock pins ${meta.version}`);
}
// A native module whose build never ran (interrupted install) has its package.json but no binary.
const sqlite = join(root, 'node_modules/better-sqlite3');
if (existsSync(sqlite) && !existsSync(join(sqlite, 'build/Release/better_sqlite3.node'))) problems.push('better-sqlite3 is not built');

if (problems.length) {
  console.log(`node_modules differs from package-lock.json (${problems.length}): ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? '; ...' : ''}`);
  process.exit(1);
}
