#!/usr/bin/env node
// The installed packages the built helper needs at run time (package-lock.json entries that are
// not dev-only), one "node_modules/NAME" per line: what installers copy next to dist/ instead of
// the whole node_modules (vite, TypeScript, playwright and the rest stay behind).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = process.argv[2] ?? process.cwd();
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
for (const [path, meta] of Object.entries(lock.packages ?? {})) {
  // Top-level entries only: nested node_modules travel inside their parent's directory.
  if (!/^node_modules\/(@[^/]+\/)?[^/]+$/.test(path) || meta.dev || meta.link) continue;
  if (existsSync(join(root, path, 'package.json'))) console.log(path);
}
