import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, posix, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../core/log.js';
import { sendPlain } from './respond.js';

// Serving the built PWA. The pure half maps a URL path to a file name under the static root and
// picks headers; the I/O half checks the file really is inside the root and streams it.

export type StaticTarget =
  | { ok: true; relPath: string; spaFallback: boolean }
  | { ok: false; status: 400; reason: string };

const BAD = (reason: string): StaticTarget => ({ ok: false, status: 400, reason });

// Decoding happens before the checks so that %2e%2e, %2f and %00 cannot smuggle a '..' or NUL
// past them. Backslashes are refused because Windows treats them as separators.
export function staticTarget(pathname: string): StaticTarget {
  if (!pathname.startsWith('/')) return BAD('bad path');
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return BAD('bad percent-encoding in path');
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return BAD('bad character in path');
  const segments = decoded.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) return BAD('path escapes the app directory');
  const relPath = segments.length === 0 ? 'index.html' : segments.join('/');
  const last = relPath.slice(relPath.lastIndexOf('/') + 1);
  // A path without an extension is a client-side route of the single-page app.
  return { ok: true, relPath, spaFallback: !/.\.[^.]+$/.test(last) };
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
};

export function contentTypeFor(relPath: string): string {
  return CONTENT_TYPES[extname(relPath).toLowerCase()] ?? 'application/octet-stream';
}

// Vite puts content-hashed files under assets/, so they never change under the same name. The
// service worker, the HTML and the manifest must be revalidated, or an update never reaches users.
export function cacheControlFor(relPath: string): string {
  if (relPath.startsWith('assets/')) return 'public, max-age=31536000, immutable';
  return 'no-cache';
}

export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

// SVG is a document too (it can carry script), so it gets the same policy as HTML.
export function securityHeadersFor(relPath: string): Record<string, string> {
  const ext = extname(relPath).toLowerCase();
  if (ext !== '.html' && ext !== '.svg') return {};
  return {
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
  };
}

function inside(root: string, file: string): boolean {
  return file === root || file.startsWith(root.endsWith(sep) ? root : root + sep);
}

interface Found {
  file: string;
  relPath: string;
  size: number;
  mtimeMs: number;
}

// Resolves symlinks before the containment check, so a link inside the root cannot reach out.
async function findFile(root: string, relPath: string): Promise<Found | null> {
  try {
    const realRoot = await realpath(root);
    const file = await realpath(join(realRoot, ...relPath.split(posix.sep)));
    if (!inside(realRoot, file)) return null;
    const st = await stat(file);
    return st.isFile() ? { file, relPath, size: st.size, mtimeMs: st.mtimeMs } : null;
  } catch {
    return null;
  }
}

export async function serveStatic(req: IncomingMessage, res: ServerResponse, root: string, pathname: string, log: Logger): Promise<void> {
  const target = staticTarget(pathname);
  if (!target.ok) {
    log.debug('static: refused path', { path: pathname.slice(0, 200), reason: target.reason });
    sendPlain(res, target.status, target.reason);
    return;
  }
  const found = (await findFile(root, target.relPath)) ?? (target.spaFallback ? await findFile(root, 'index.html') : null);
  if (found === null) {
    sendPlain(res, 404, 'Not found.');
    return;
  }
  const etag = `W/"${found.size.toString(16)}-${Math.floor(found.mtimeMs).toString(16)}"`;
  const headers: Record<string, string> = {
    'content-type': contentTypeFor(found.relPath),
    'cache-control': cacheControlFor(found.relPath),
    'x-content-type-options': 'nosniff',
    etag,
    ...securityHeadersFor(found.relPath),
  };
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers).end();
    return;
  }
  res.writeHead(200, { ...headers, 'content-length': String(found.size) });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  try {
    await pipeline(createReadStream(found.file), res);
  } catch (err) {
    // Usually the client went away mid-file; nothing left to answer.
    log.debug('static: stream failed', { file: found.relPath, err: err as Error });
    res.destroy();
  }
}
