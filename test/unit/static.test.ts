import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cacheControlFor, contentTypeFor, securityHeadersFor, staticTarget } from '../../helper/web/static.js';

describe('static path mapping', () => {
  it('maps paths to files under the root', () => {
    assert.deepEqual(staticTarget('/'), { ok: true, relPath: 'index.html', spaFallback: false });
    assert.deepEqual(staticTarget('/assets/index-3f2a.js'), { ok: true, relPath: 'assets/index-3f2a.js', spaFallback: false });
    assert.deepEqual(staticTarget('/icons/app%20icon.png'), { ok: true, relPath: 'icons/app icon.png', spaFallback: false });
    assert.deepEqual(staticTarget('/./sw.js'), { ok: true, relPath: 'sw.js', spaFallback: false });
  });

  it('marks extensionless paths as SPA routes', () => {
    assert.deepEqual(staticTarget('/party/join'), { ok: true, relPath: 'party/join', spaFallback: true });
    assert.deepEqual(staticTarget('/settings/'), { ok: true, relPath: 'settings', spaFallback: true });
    assert.deepEqual(staticTarget('/.well-known'), { ok: true, relPath: '.well-known', spaFallback: true });
  });

  it('refuses traversal, NUL, backslashes and bad escapes', () => {
    for (const p of ['/../package.json', '/%2e%2e/package.json', '/assets/%2E%2E/%2e%2e/x', '/a/..%2f..%2fetc/passwd', '/x%00.js', '/..\\x', '/%5c..%5cx', '/%E0%A4%A', 'relative']) {
      const t = staticTarget(p);
      assert.equal(t.ok, false, p);
      if (!t.ok) assert.equal(t.status, 400);
    }
  });
});

describe('static headers', () => {
  it('content types', () => {
    assert.equal(contentTypeFor('index.html'), 'text/html; charset=utf-8');
    assert.equal(contentTypeFor('assets/a.JS'), 'text/javascript; charset=utf-8');
    assert.equal(contentTypeFor('manifest.webmanifest'), 'application/manifest+json; charset=utf-8');
    assert.equal(contentTypeFor('f.woff2'), 'font/woff2');
    assert.equal(contentTypeFor('a.map'), 'application/json; charset=utf-8');
    assert.equal(contentTypeFor('noext'), 'application/octet-stream');
  });
  it('caching: hashed assets immutable, app shell revalidated', () => {
    assert.match(cacheControlFor('assets/index-3f2a.js'), /immutable/);
    for (const f of ['sw.js', 'index.html', 'manifest.webmanifest', 'workbox-1234.js']) assert.equal(cacheControlFor(f), 'no-cache', f);
  });
  it('security headers on documents only', () => {
    const h = securityHeadersFor('index.html');
    assert.match(h['content-security-policy'] ?? '', /frame-ancestors 'none'/);
    assert.equal(h['x-frame-options'], 'DENY');
    assert.equal(h['referrer-policy'], 'no-referrer');
    assert.deepEqual(securityHeadersFor('assets/a.js'), {});
  });
});
