// The shipped Envoy bootstraps validate cleanly, and each kind of mistake the validator exists for
// is caught with its own message. Envoy itself cannot run here, so this is the safety net.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { validateEnvoyConfig, validateEnvoyYaml } from '../../envoy/validate.js';

type Obj = Record<string, unknown>;

// The compiled test may live outside the tree (dist/, or a scratch outDir), so fall back to the
// working directory; the marker file keeps a stray package.json higher up from matching.
function findRoot(): string {
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    let dir = start;
    for (;;) {
      if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'envoy', 'envoy.yaml'))) return dir;
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  throw new Error('repository root (package.json + envoy/envoy.yaml) not found');
}

const ROOT = findRoot();
const PLAIN = join(ROOT, 'envoy', 'envoy.yaml');
const TLS = join(ROOT, 'envoy', 'envoy-tls.yaml');
const VALIDATE_JS = fileURLToPath(new URL('../../envoy/validate.js', import.meta.url));

const load = (file: string): Obj => {
  const doc: unknown = parse(readFileSync(file, 'utf8'));
  assert.ok(isObj(doc), `${file} is not a mapping`);
  return doc;
};

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Walks keys and indexes; fails the test if the shape is not what the shipped files have. */
function at(root: unknown, ...path: (string | number)[]): Obj {
  let cur: unknown = root;
  for (const k of path) {
    if (typeof k === 'number') {
      assert.ok(Array.isArray(cur), `expected a list before [${k}]`);
      cur = cur[k];
    } else {
      assert.ok(isObj(cur), `expected a mapping before .${k}`);
      cur = cur[k];
    }
  }
  assert.ok(isObj(cur), `no mapping at ${path.join('.')}`);
  return cur;
}

function list(root: unknown, ...path: (string | number)[]): unknown[] {
  const key = path.pop();
  assert.ok(typeof key === 'string');
  const v = at(root, ...path)[key];
  assert.ok(Array.isArray(v), `no list at ${[...path, key].join('.')}`);
  return v;
}

const hcm = (doc: Obj, listener = 0): Obj => at(doc, 'static_resources', 'listeners', listener, 'filter_chains', 0, 'filters', 0, 'typed_config');
const vhost = (doc: Obj, listener = 0): Obj => at(hcm(doc, listener), 'route_config', 'virtual_hosts', 0);
const cors = (doc: Obj, listener = 0): Obj => at(vhost(doc, listener), 'typed_per_filter_config', 'envoy.filters.http.cors');
const routeNamed = (doc: Obj, name: string, listener = 0): Obj => {
  const r = list(vhost(doc, listener), 'routes').find((x) => isObj(x) && x['name'] === name);
  assert.ok(isObj(r), `no route named ${name}`);
  return r;
};
const clusterNamed = (doc: Obj, name: string): Obj => {
  const c = list(doc, 'static_resources', 'clusters').find((x) => isObj(x) && x['name'] === name);
  assert.ok(isObj(c), `no cluster named ${name}`);
  return c;
};

function expectProblem(doc: Obj, re: RegExp): void {
  const problems = validateEnvoyConfig(doc);
  assert.ok(problems.some((p) => re.test(p)), `expected a problem matching ${re}, got:\n${problems.join('\n') || '(none)'}`);
}

test('shipped configs validate with zero problems', () => {
  for (const file of [PLAIN, TLS]) {
    assert.deepEqual(validateEnvoyYaml(readFileSync(file, 'utf8')), [], file);
  }
});

test('the TLS config keeps its plain listener on loopback and only TLS elsewhere', () => {
  const doc = load(TLS);
  const listeners = list(doc, 'static_resources', 'listeners');
  assert.equal(listeners.length, 2);
  assert.equal(at(doc, 'static_resources', 'listeners', 0, 'address', 'socket_address')['address'], '127.0.0.1');
  assert.equal(at(doc, 'static_resources', 'listeners', 1, 'filter_chains', 0, 'transport_socket')['name'], 'envoy.transport_sockets.tls');
});

interface Case {
  name: string;
  file?: string;
  mutate(doc: Obj): void;
  expect: RegExp;
}

const cases: Case[] = [
  {
    name: 'router not last',
    mutate: (d) => {
      const f = list(hcm(d), 'http_filters');
      [f[1], f[2]] = [f[2], f[1]];
    },
    expect: /http_filters: envoy\.filters\.http\.router must be the last HTTP filter/,
  },
  {
    name: 'grpc_web missing',
    mutate: (d) => void list(hcm(d), 'http_filters').splice(0, 1),
    expect: /envoy\.filters\.http\.grpc_web is missing/,
  },
  {
    name: 'grpc_web after the router',
    mutate: (d) => {
      const f = list(hcm(d), 'http_filters');
      f.push(...f.splice(0, 1));
    },
    expect: /envoy\.filters\.http\.grpc_web must come before envoy\.filters\.http\.router/,
  },
  {
    name: 'CORS origin *',
    mutate: (d) => void (cors(d)['allow_origin_string_match'] = [{ exact: '*' }]),
    expect: /allow_origin_string_match\[0\]\.exact: origin "\*": a wildcard/,
  },
  {
    name: 'CORS origin regex .*',
    mutate: (d) => void (cors(d)['allow_origin_string_match'] = [{ safe_regex: { regex: '.*' } }]),
    expect: /safe_regex: regex "\.\*" allows every origin/,
  },
  {
    name: 'CORS does not expose grpc-message',
    mutate: (d) => void (cors(d)['expose_headers'] = 'grpc-status'),
    expect: /expose_headers: must expose grpc-message/,
  },
  {
    name: 'gRPC cluster without HTTP/2',
    mutate: (d) => {
      const o = at(clusterNamed(d, 'lanrage_helper'), 'typed_extension_protocol_options', 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions');
      o['explicit_http_config'] = { http_protocol_options: {} };
    },
    expect: /gRPC route to lanrage_helper, which does not speak HTTP\/2/,
  },
  {
    name: 'v2 cluster-level http2_protocol_options',
    mutate: (d) => {
      const c = clusterNamed(d, 'lanrage_helper');
      delete c['typed_extension_protocol_options'];
      c['http2_protocol_options'] = {};
    },
    expect: /clusters\[0\]\.http2_protocol_options: deprecated cluster-level http2_protocol_options/,
  },
  {
    name: 'typo typed_confg',
    mutate: (d) => {
      const f = at(hcm(d), 'http_filters', 0);
      f['typed_confg'] = f['typed_config'];
      delete f['typed_config'];
    },
    expect: /http_filters\[0\]\.typed_confg: unknown or unsupported key in http_filter/,
  },
  {
    name: 'route to a missing cluster',
    mutate: (d) => void (at(routeNamed(d, 'grpc'), 'route')['cluster'] = 'lanrage_helpr'),
    expect: /route\.cluster: no cluster named "lanrage_helpr"/,
  },
  {
    name: 'admin on 0.0.0.0',
    mutate: (d) => void (at(d, 'admin', 'address', 'socket_address')['address'] = '0.0.0.0'),
    expect: /^admin\.address: admin interface on 0\.0\.0\.0/,
  },
  {
    name: 'v2 config: field',
    mutate: (d) => {
      const f = at(hcm(d), 'http_filters', 2);
      delete f['typed_config'];
      f['config'] = {};
    },
    expect: /http_filters\[2\]\.config: v2 field "config": use typed_config/,
  },
  {
    name: 'bad duration',
    mutate: (d) => void (clusterNamed(d, 'lanrage_helper')['connect_timeout'] = '1000ms'),
    expect: /connect_timeout: duration "1000ms" must match/,
  },
  {
    name: 'numeric duration',
    mutate: (d) => void (at(routeNamed(d, 'grpc'), 'route', 'max_stream_duration')['grpc_timeout_header_max'] = 0),
    expect: /grpc_timeout_header_max: duration 0 must match/,
  },
  {
    name: 'gRPC route with a deadline',
    mutate: (d) => void (at(routeNamed(d, 'grpc'), 'route')['timeout'] = '15s'),
    expect: /gRPC routes need timeout: 0s/,
  },
  {
    name: 'gRPC route ignoring grpc-timeout',
    mutate: (d) => void delete at(routeNamed(d, 'grpc'), 'route')['max_stream_duration'],
    expect: /route\.max_stream_duration: missing/,
  },
  {
    name: 'plain listener off loopback',
    mutate: (d) => void (at(d, 'static_resources', 'listeners', 0, 'address', 'socket_address')['address'] = '0.0.0.0'),
    expect: /listeners\[0\]\.address: plain-HTTP listener on 0\.0\.0\.0/,
  },
  {
    name: 'wildcard virtual host domain',
    mutate: (d) => void (vhost(d)['domains'] = ['*']),
    expect: /domains\[0\]: wildcard domain "\*" defeats the DNS-rebinding guard/,
  },
  {
    name: 'v2 type URL',
    mutate: (d) => void (at(hcm(d), 'http_filters', 2, 'typed_config')['@type'] = 'type.googleapis.com/envoy.config.filter.http.router.v2.Router'),
    expect: /\["@type"\]: is "type\.googleapis\.com\/envoy\.config\.filter\.http\.router\.v2\.Router", expected/,
  },
  {
    name: 'port out of range',
    mutate: (d) => void (at(d, 'admin', 'address', 'socket_address')['port_value'] = 70000),
    expect: /port_value: port 70000 is not an integer in 1-65535/,
  },
  {
    name: 'remote listener forwarding /api/session',
    file: TLS,
    mutate: (d) => {
      const routes = list(vhost(d, 1), 'routes');
      routes.splice(routes.findIndex((r) => isObj(r) && r['name'] === 'no_install_token_remotely'), 1);
    },
    expect: /listeners\[1\].*routes\[1\]: forwards \/api\/session from a non-loopback listener/,
  },
  {
    name: 'TLS listener without h2',
    file: TLS,
    mutate: (d) => {
      at(d, 'static_resources', 'listeners', 1, 'filter_chains', 0, 'transport_socket', 'typed_config', 'common_tls_context')['alpn_protocols'] = ['http/1.1'];
    },
    expect: /alpn_protocols: must offer "h2"/,
  },
];

for (const c of cases) {
  test(`rejects: ${c.name}`, () => {
    const doc = load(c.file ?? PLAIN);
    c.mutate(doc);
    expectProblem(doc, c.expect);
  });
}

test('rejects duplicate YAML keys (Envoy does too)', () => {
  const text = readFileSync(PLAIN, 'utf8').replace('admin:\n', 'admin:\n  profile_path: /tmp/x\n  profile_path: /tmp/y\n');
  assert.ok(validateEnvoyYaml(text).some((p) => /^YAML: .*(duplicate|unique)/i.test(p)));
});

test('CLI: exit 0 on the shipped files, 1 with the problem printed on a broken one', () => {
  const ok = spawnSync(process.execPath, [VALIDATE_JS, PLAIN, TLS], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /envoy-tls\.yaml: OK/);

  const dir = mkdtempSync(join(tmpdir(), 'envoy-validate-'));
  try {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, readFileSync(PLAIN, 'utf8').replace('timeout: 0s', 'timeout: 15s'));
    const res = spawnSync(process.execPath, [VALIDATE_JS, bad], { encoding: 'utf8' });
    assert.equal(res.status, 1, res.stdout + res.stderr);
    assert.match(res.stdout, /bad\.yaml: .*gRPC routes need timeout: 0s/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
