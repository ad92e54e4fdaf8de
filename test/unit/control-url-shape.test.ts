import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkControlUrl, controlListProblem, MAX_CONTROL_URL_LENGTH, MAX_CONTROL_URLS, splitControlUrls } from '../../helper/controlclient/control-url-shape.js';
import { parseControlUrls } from '../../helper/controlclient/control-urls.js';

test('control URL shape: only http(s)://host[:port], normalised to its origin; each other shape named', () => {
  assert.deepEqual(checkControlUrl('HTTPS://Control.Example:7443/'), { ok: true, origin: 'https://control.example:7443' });
  assert.deepEqual(checkControlUrl('http://10.0.0.2:80'), { ok: true, origin: 'http://10.0.0.2' });
  const refused: Array<[string, string]> = [
    [`https://${'a'.repeat(MAX_CONTROL_URL_LENGTH)}.example`, 'too-long'],
    ['control.example:7443', 'scheme'], // a URL whose scheme is "control.example:"
    ['not a url', 'not-a-url'],
    ['ftp://control.example', 'scheme'],
    ['javascript:alert(1)', 'scheme'],
    ['https://user:pw@control.example', 'credentials'],
    ['https://control.example/path', 'not-an-origin'],
    ['https://control.example/?q=1', 'not-an-origin'],
    ['https://control.example/#x', 'not-an-origin'],
  ];
  for (const [raw, problem] of refused) assert.deepEqual(checkControlUrl(raw), { ok: false, problem }, raw);
});

test('control URL lists: entries trimmed, an empty entry and too many refused; the helper also refuses one URL named twice', () => {
  assert.deepEqual(splitControlUrls(' https://a.example , https://b.example'), ['https://a.example', 'https://b.example']);
  assert.equal(controlListProblem(splitControlUrls('https://a.example,,https://b.example')), 'empty-entry');
  assert.equal(controlListProblem(splitControlUrls('https://a.example,')), 'empty-entry');
  const many = Array.from({ length: MAX_CONTROL_URLS + 1 }, (_, i) => `https://c${i}.example`);
  assert.equal(controlListProblem(many), 'too-many');
  assert.equal(controlListProblem(many.slice(1)), null);
  assert.deepEqual(parseControlUrls('https://A.example:443, http://b.example:8080'), ['https://a.example', 'http://b.example:8080']);
  assert.throws(() => parseControlUrls('https://a.example,'), /empty entry/);
  assert.throws(() => parseControlUrls(many.join(',')), /at most 4/);
  assert.throws(() => parseControlUrls('https://a.example,https://A.example:443'), /names one URL twice/);
  assert.throws(() => parseControlUrls('https://a.example,https://b.example/x'), /no user, path, query or fragment/);
});
