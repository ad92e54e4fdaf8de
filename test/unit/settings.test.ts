import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultSettings, mergeSettings, sanitizeDeviceName, validateSettings } from '../../helper/core/settings.js';

test('defaults are valid and derive the device name from the host name', () => {
  const d = defaultSettings('Gaming-PC.local');
  assert.deepEqual(validateSettings(d), []);
  assert.equal(d.deviceName, 'Gaming-PC.local');
  assert.equal(d.interfaceName, 'lanrage0');
});

test('hostile host names become safe device names', () => {
  assert.equal(sanitizeDeviceName('$(rm -rf /);`x`'), 'rm -rf x');
  assert.equal(sanitizeDeviceName('***'), 'lanrage-player');
  assert.equal(sanitizeDeviceName('a'.repeat(100)).length, 32);
});

test('each invalid field is named in the errors', () => {
  const bad = { ...defaultSettings('pc'), deviceName: '', interfaceName: 'eth0; reboot', listenPort: 80, mtu: 9000, broadcastPorts: [0, 70000], metricsRetentionHours: 0, controlServerUrl: 'ftp://x' };
  const errors = validateSettings(bad).join('\n');
  for (const f of ['device_name', 'interface_name', 'listen_port', 'mtu', 'broadcast_ports', 'metrics_retention_hours', 'control_server_url']) {
    assert.match(errors, new RegExp(f));
  }
});

test('control server URLs: host and port only', () => {
  const v = (u: string) => validateSettings({ ...defaultSettings('pc'), controlServerUrl: u });
  assert.deepEqual(v('https://control.example.org:8443'), []);
  assert.deepEqual(v('http://10.0.0.5:7000'), []);
  assert.notDeepEqual(v('https://user:pw@control.example.org'), []);
  assert.notDeepEqual(v('https://control.example.org/path'), []);
  assert.notDeepEqual(v('javascript:alert(1)'), []);
});

test('control server URLs: a list of instances of one control service', () => {
  const v = (u: string) => validateSettings({ ...defaultSettings('pc'), controlServerUrl: u });
  assert.deepEqual(v('http://10.0.0.5:7000,http://10.0.0.6:7000'), []);
  assert.deepEqual(v('https://a.example.org, https://b.example.org:8443'), []);
  assert.match(v('http://10.0.0.5:7000,,http://10.0.0.6:7000').join(), /empty entry/);
  assert.match(v('http://10.0.0.5:7000,http://10.0.0.5:7000').join(), /twice/);
  assert.match(v(['1', '2', '3', '4', '5'].map((n) => `http://10.0.0.${n}:7000`).join(',')).join(), /at most 4/);
  assert.match(v('http://10.0.0.5:7000,ftp://x').join(), /control_server_url.*http:\/\/ or https:\/\//);
});

test('merge applies only masked fields, accepts snake and camel case, rejects unknown names', () => {
  const cur = defaultSettings('pc');
  const upd = { ...cur, deviceName: 'New Name', mtu: 1300 };
  const a = mergeSettings(cur, upd, ['device_name']);
  assert.deepEqual(a.errors, []);
  assert.equal(a.merged.deviceName, 'New Name');
  assert.equal(a.merged.mtu, cur.mtu);
  assert.equal(mergeSettings(cur, upd, ['mtu']).merged.mtu, 1300);
  assert.equal(mergeSettings(cur, upd, ['deviceName']).merged.deviceName, 'New Name');
  assert.match(mergeSettings(cur, upd, ['device_name', 'token']).errors.join(), /unknown fields: token/);
  const all = mergeSettings(cur, upd, []);
  assert.equal(all.merged.mtu, 1300);
  assert.equal(all.merged.deviceName, 'New Name');
});

test('merge reports invalid merged values and never mutates its input', () => {
  const cur = defaultSettings('pc');
  const before = structuredClone(cur);
  const r = mergeSettings(cur, { ...cur, broadcastPorts: [27015, 27015] }, ['broadcast_ports']);
  assert.match(r.errors.join(), /repeat/);
  assert.deepEqual(cur, before);
});
