import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { acceptedHosts, admit, checkFetchSite, checkHost, checkOrigin, guardRequest, isSensitive } from '../../helper/web/guard.js';

const PORT = 8666;
const accepted = acceptedHosts(PORT, ['lanrage.lan:8666']);

describe('host guard', () => {
  it('accepts loopback names with the bound port and the configured extras', () => {
    for (const h of ['localhost:8666', '127.0.0.1:8666', '[::1]:8666', 'LOCALHOST:8666', 'lanrage.lan:8666', 'LanRage.LAN:8666']) {
      assert.deepEqual(checkHost(h, accepted), { ok: true }, h);
    }
  });

  it('refuses hostile and wrong values with 421 naming the accepted hosts', () => {
    const hostile = [
      undefined, '', 'evil.com', 'evil.com:8666', 'localhost:8666.evil.com', 'localhost.evil.com:8666',
      '127.0.0.1:1', 'localhost', '127.0.0.1', '[::1]', '::1:8666', 'localhost.:8666', '127.0.0.2:8666',
      '0.0.0.0:8666', 'localhost:08666', 'localhost :8666', 'lanrage.lan', 'lanrage.lan:1',
    ];
    for (const h of hostile) {
      const d = checkHost(h, accepted);
      assert.equal(d.ok, false, String(h));
      if (d.ok) continue;
      assert.equal(d.status, 421);
      assert.match(d.reason, /localhost:8666, 127\.0\.0\.1:8666, \[::1\]:8666, lanrage\.lan:8666/);
    }
  });

  it('accepts a portless host only on port 80', () => {
    assert.equal(checkHost('localhost', acceptedHosts(80, [])).ok, true);
    assert.equal(checkHost('localhost', acceptedHosts(8080, [])).ok, false);
  });

  it('uses the actual bound port', () => {
    const a = acceptedHosts(41234, []);
    assert.equal(checkHost('127.0.0.1:41234', a).ok, true);
    assert.equal(checkHost('127.0.0.1:8666', a).ok, false);
  });
});

describe('origin guard', () => {
  it('allows no Origin and our own origin', () => {
    assert.equal(checkOrigin(undefined, 'localhost:8666').ok, true);
    assert.equal(checkOrigin('http://localhost:8666', 'localhost:8666').ok, true);
    assert.equal(checkOrigin('http://[::1]:8666', '[::1]:8666').ok, true);
    assert.equal(checkOrigin('http://localhost:8666', 'LocalHost:8666').ok, true);
  });

  it('refuses foreign, null and near-miss origins with 403', () => {
    const bad = [
      'null', 'http://evil.com', 'http://localhost:3000', 'https://localhost:8666', 'http://127.0.0.1:8666',
      'http://localhost:8666/', 'http://localhost:8666.evil.com', 'http://localhost', '',
    ];
    for (const o of bad) {
      const d = checkOrigin(o, 'localhost:8666');
      assert.equal(d.ok, false, o);
      if (!d.ok) assert.equal(d.status, 403);
    }
  });
});

describe('sec-fetch-site guard', () => {
  it('refuses same-site and cross-site on sensitive requests only', () => {
    assert.equal(checkFetchSite('cross-site', true).ok, false);
    assert.equal(checkFetchSite('same-site', true).ok, false);
    assert.equal(checkFetchSite('something-new', true).ok, false);
    assert.equal(checkFetchSite('same-origin', true).ok, true);
    assert.equal(checkFetchSite('none', true).ok, true);
    assert.equal(checkFetchSite(undefined, true).ok, true);
    assert.equal(checkFetchSite('cross-site', false).ok, true);
  });

  it('classifies sensitive requests', () => {
    assert.equal(isSensitive('GET', '/api/session'), true);
    assert.equal(isSensitive('POST', '/lanrage.v1.PartyService/Join'), true);
    assert.equal(isSensitive('OPTIONS', '/'), true);
    assert.equal(isSensitive('GET', '/party/join'), false);
    assert.equal(isSensitive('GET', '/apiary'), false);
  });
});

describe('combined guard', () => {
  it('checks host before origin', () => {
    const d = guardRequest({ host: 'evil.com', origin: 'http://evil.com', secFetchSite: 'same-origin', sensitive: true }, accepted);
    assert.equal(d.ok ? 0 : d.status, 421);
  });
  it('refuses a rebinding page that matches its own origin', () => {
    // The page at http://attacker.example:8666 rebinds to 127.0.0.1: Origin matches Host, Host does not.
    const d = guardRequest({ host: 'attacker.example:8666', origin: 'http://attacker.example:8666', secFetchSite: 'same-origin', sensitive: true }, accepted);
    assert.equal(d.ok ? 0 : d.status, 421);
  });
  it('refuses a foreign origin and a same-site fetch, accepts our own app', () => {
    const foreign = guardRequest({ host: 'localhost:8666', origin: 'http://localhost:3000', secFetchSite: 'same-site', sensitive: true }, accepted);
    assert.equal(foreign.ok ? 0 : foreign.status, 403);
    const sameSite = guardRequest({ host: 'localhost:8666', origin: undefined, secFetchSite: 'same-site', sensitive: true }, accepted);
    assert.equal(sameSite.ok ? 0 : sameSite.status, 403);
    const own = guardRequest({ host: 'localhost:8666', origin: 'http://localhost:8666', secFetchSite: 'same-origin', sensitive: true }, accepted);
    assert.deepEqual(own, { ok: true });
  });
});

describe('admit (the prologue of both HTTP doors)', () => {
  it('refuses a request target that is not a path (400) and what the guard refuses; lets the rest in with method and path', async () => {
    const admitted: Array<{ method: string; pathname: string }> = [];
    let hosts: string[] = [];
    const server = createServer((req, res) => {
      const a = admit(req, res, hosts);
      if (!a) return;
      admitted.push(a);
      res.end('in');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    hosts = acceptedHosts(port, []);
    // Raw requests: fetch() would neither send an absolute-form target nor a foreign Host.
    const raw = (head: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const sock = connect(port, '127.0.0.1');
        let got = '';
        sock.on('data', (d) => (got += d.toString()));
        sock.on('end', () => resolve(got.split('\r\n', 1)[0] ?? ''));
        sock.on('error', reject);
        sock.end(`${head}\r\nConnection: close\r\n\r\n`);
      });
    try {
      assert.equal(await raw(`GET http://127.0.0.1:${port}/ HTTP/1.1\r\nHost: 127.0.0.1:${port}`), 'HTTP/1.1 400 Bad Request');
      assert.equal(await raw('GET / HTTP/1.1\r\nHost: evil.example'), 'HTTP/1.1 421 Misdirected Request');
      assert.equal(await raw(`POST /api/x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: http://evil.example\r\nContent-Length: 0`), 'HTTP/1.1 403 Forbidden');
      assert.deepEqual(admitted, []);
      assert.equal(await raw(`GET /app/page?x=1 HTTP/1.1\r\nHost: localhost:${port}`), 'HTTP/1.1 200 OK');
      assert.deepEqual(admitted, [{ method: 'GET', pathname: '/app/page' }]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
