// Structural validation of the Envoy bootstraps in envoy/. Envoy cannot be installed on the
// development machines, so `envoy --mode validate` is not available; this catches what would make
// Envoy refuse the file (typos, v2 leftovers, dangling cluster names, bad durations) and what
// Envoy would accept but would break LANrage or open it up (router not last, no grpc_web, a
// deadline on Watch, "*" origins, a plain listener or the admin API off loopback).
//
// It is deliberately strict: at every level it models, keys outside a known subset of Envoy v3
// fields are errors, and only the type URLs LANrage uses are accepted. A new, legitimate field
// therefore needs adding here first, which is the point: every field in the shipped files was
// checked against Envoy's API protos when it went into the allowlist.
//
// CLI: node dist/envoy/validate.js FILE... (prints problems, exits 1 if there are any).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';

type Obj = Record<string, unknown>;

const TYPE = {
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  grpcWeb: 'type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb',
  cors: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors',
  corsPolicy: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  downstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  upstreamHttp: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
} as const;

/** The only `@type` URLs accepted anywhere in the file. */
export const KNOWN_TYPE_URLS: ReadonlySet<string> = new Set(Object.values(TYPE));

const HCM_NAME = 'envoy.filters.network.http_connection_manager';
const TLS_SOCKET_NAME = 'envoy.transport_sockets.tls';
const UPSTREAM_HTTP_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const F_GRPC_WEB = 'envoy.filters.http.grpc_web';
const F_CORS = 'envoy.filters.http.cors';
const F_ROUTER = 'envoy.filters.http.router';
const HTTP_FILTER_TYPES: ReadonlyMap<string, string> = new Map([
  [F_GRPC_WEB, TYPE.grpcWeb],
  [F_CORS, TYPE.cors],
  [F_ROUTER, TYPE.router],
]);
/** Per-route/virtual-host config type for each filter that takes one. */
const PER_FILTER_TYPES: ReadonlyMap<string, string> = new Map([[F_CORS, TYPE.corsPolicy]]);

/** Filter names removed from Envoy (v2 era); Envoy refuses them today. */
const LEGACY_FILTER_NAMES: ReadonlyMap<string, string> = new Map([
  ['envoy.http_connection_manager', HCM_NAME],
  ['envoy.grpc_web', F_GRPC_WEB],
  ['envoy.cors', F_CORS],
  ['envoy.router', F_ROUTER],
  ['tls', TLS_SOCKET_NAME],
  ['envoy.transport_sockets.tls.v2', TLS_SOCKET_NAME],
]);

/** The path prefix of every LANrage gRPC method (`/lanrage.v1.Service/Method`). */
const GRPC_PREFIX = '/lanrage.';
/** What the helper serves only to its own origin; remote listeners must not forward it. */
const SESSION_PATH = '/api/session';

const DURATION_RE = /^\d+(\.\d+)?s$/;
const DURATION_KEYS: ReadonlySet<string> = new Set([
  'connect_timeout', 'timeout', 'idle_timeout', 'stream_idle_timeout', 'request_timeout',
  'request_headers_timeout', 'drain_timeout', 'delayed_close_timeout', 'grpc_timeout_header_max',
  'grpc_timeout_header_offset', 'max_connection_duration', 'max_stream_duration',
  'listener_filters_timeout', 'transport_socket_connect_timeout', 'dns_refresh_rate', 'interval',
  'session_timeout', 'per_try_timeout', 'per_try_idle_timeout', 'base_interval', 'max_interval',
]);

const CORS_REQUIRED_EXPOSE = ['grpc-status', 'grpc-message'];
// What grpc-web clients send: without these in the preflight answer the browser never sends the call.
const CORS_REQUIRED_ALLOW_HEADERS = ['content-type', 'x-grpc-web', 'x-user-agent', 'grpc-timeout', 'authorization'];

// Keys accepted per object kind: subsets of the Envoy v3 messages, checked against the protos.
const KEYS = {
  bootstrap: ['node', 'admin', 'static_resources', 'layered_runtime', 'overload_manager', 'stats_config', 'cluster_manager'],
  admin: ['address', 'access_log', 'profile_path', 'socket_options'],
  address: ['socket_address'],
  socket_address: ['address', 'port_value', 'protocol', 'ipv4_compat'],
  static_resources: ['listeners', 'clusters'],
  listener: [
    'name', 'address', 'stat_prefix', 'filter_chains', 'per_connection_buffer_limit_bytes', 'metadata',
    'drain_type', 'listener_filters_timeout', 'traffic_direction', 'access_log',
  ],
  filter_chain: ['name', 'filters', 'transport_socket', 'transport_socket_connect_timeout', 'metadata'],
  network_filter: ['name', 'typed_config'],
  transport_socket: ['name', 'typed_config'],
  http_connection_manager: [
    '@type', 'codec_type', 'stat_prefix', 'route_config', 'http_filters', 'add_user_agent',
    'common_http_protocol_options', 'http_protocol_options', 'http2_protocol_options', 'server_name',
    'server_header_transformation', 'max_request_headers_kb', 'stream_idle_timeout', 'request_timeout',
    'request_headers_timeout', 'drain_timeout', 'delayed_close_timeout', 'access_log', 'use_remote_address',
    'xff_num_trusted_hops', 'skip_xff_append', 'via', 'generate_request_id', 'preserve_external_request_id',
    'always_set_request_id_in_response', 'forward_client_cert_details', 'proxy_100_continue', 'normalize_path',
    'merge_slashes', 'path_with_escaped_slashes_action', 'local_reply_config', 'strip_matching_host_port',
    'strip_any_host_port', 'stream_error_on_invalid_http_message', 'strip_trailing_host_dot',
  ],
  common_http_protocol_options: [
    'idle_timeout', 'max_connection_duration', 'max_headers_count', 'max_stream_duration',
    'headers_with_underscores_action', 'max_requests_per_connection',
  ],
  http1_protocol_options: ['accept_http_10', 'default_host_for_http_10', 'header_key_format', 'enable_trailers', 'allow_chunked_length', 'override_stream_error_on_invalid_http_message'],
  http2_protocol_options: [
    'hpack_table_size', 'max_concurrent_streams', 'initial_stream_window_size', 'initial_connection_window_size',
    'allow_connect', 'max_outbound_frames', 'max_outbound_control_frames', 'connection_keepalive',
    'override_stream_error_on_invalid_http_message',
  ],
  http_filter: ['name', 'typed_config', 'is_optional', 'disabled'],
  grpc_web: ['@type'],
  cors: ['@type'],
  router: ['@type', 'dynamic_stats', 'start_child_span', 'suppress_envoy_headers'],
  route_config: [
    'name', 'virtual_hosts', 'validate_clusters', 'request_headers_to_add', 'request_headers_to_remove',
    'response_headers_to_add', 'response_headers_to_remove', 'max_direct_response_body_size_bytes',
  ],
  virtual_host: [
    'name', 'domains', 'routes', 'require_tls', 'typed_per_filter_config', 'request_headers_to_add',
    'request_headers_to_remove', 'response_headers_to_add', 'response_headers_to_remove', 'retry_policy',
    'per_request_buffer_limit_bytes', 'include_request_attempt_count', 'include_attempt_count_in_response',
  ],
  route: [
    'name', 'match', 'route', 'redirect', 'direct_response', 'typed_per_filter_config', 'metadata', 'decorator',
    'request_headers_to_add', 'request_headers_to_remove', 'response_headers_to_add', 'response_headers_to_remove',
    'per_request_buffer_limit_bytes',
  ],
  route_match: ['prefix', 'path', 'safe_regex', 'path_separated_prefix', 'case_sensitive', 'headers', 'query_parameters', 'grpc'],
  route_action: [
    'cluster', 'timeout', 'idle_timeout', 'max_stream_duration', 'prefix_rewrite', 'regex_rewrite',
    'host_rewrite_literal', 'auto_host_rewrite', 'retry_policy', 'hash_policy', 'upgrade_configs',
    'cluster_not_found_response_code', 'priority',
  ],
  max_stream_duration: ['max_stream_duration', 'grpc_timeout_header_max', 'grpc_timeout_header_offset'],
  direct_response: ['status', 'body'],
  redirect: ['https_redirect', 'scheme_redirect', 'host_redirect', 'port_redirect', 'path_redirect', 'prefix_rewrite', 'response_code', 'strip_query'],
  data_source: ['filename', 'inline_string', 'inline_bytes', 'environment_variable'],
  cluster: [
    'name', 'type', 'connect_timeout', 'lb_policy', 'load_assignment', 'typed_extension_protocol_options',
    'per_connection_buffer_limit_bytes', 'circuit_breakers', 'dns_lookup_family', 'dns_refresh_rate',
    'respect_dns_ttl', 'health_checks', 'outlier_detection', 'upstream_connection_options', 'alt_stat_name',
    'common_lb_config', 'metadata', 'close_connections_on_host_health_failure', 'ignore_health_on_host_removal',
  ],
  upstream_http_protocol_options: ['@type', 'explicit_http_config', 'common_http_protocol_options', 'upstream_http_protocol_options'],
  explicit_http_config: ['http_protocol_options', 'http2_protocol_options'],
  load_assignment: ['cluster_name', 'endpoints', 'policy'],
  locality_lb_endpoints: ['lb_endpoints', 'locality', 'load_balancing_weight', 'priority'],
  lb_endpoint: ['endpoint', 'health_status', 'load_balancing_weight', 'metadata'],
  endpoint: ['address', 'health_check_config', 'hostname'],
  cors_policy: [
    '@type', 'allow_origin_string_match', 'allow_methods', 'allow_headers', 'expose_headers', 'max_age',
    'allow_credentials', 'allow_private_network_access', 'filter_enabled', 'shadow_enabled',
  ],
  downstream_tls_context: [
    '@type', 'common_tls_context', 'require_client_certificate', 'require_sni', 'session_ticket_keys',
    'disable_stateless_session_resumption', 'session_timeout',
  ],
  common_tls_context: ['tls_params', 'tls_certificates', 'validation_context', 'alpn_protocols'],
  tls_params: ['tls_minimum_protocol_version', 'tls_maximum_protocol_version', 'cipher_suites', 'ecdh_curves'],
  tls_certificate: ['certificate_chain', 'private_key'],
} as const satisfies Record<string, readonly string[]>;

type Kind = keyof typeof KEYS;

// v2 fields and fields Envoy has deprecated, with what replaces them.
const DEPRECATED: Partial<Record<Kind, Readonly<Record<string, string>>>> = {
  admin: { access_log_path: 'deprecated admin.access_log_path: use admin.access_log' },
  cluster: {
    hosts: 'v2 field cluster.hosts: use load_assignment',
    http2_protocol_options: `deprecated cluster-level http2_protocol_options: use typed_extension_protocol_options["${UPSTREAM_HTTP_KEY}"].explicit_http_config`,
    http_protocol_options: `deprecated cluster-level http_protocol_options: use typed_extension_protocol_options["${UPSTREAM_HTTP_KEY}"].explicit_http_config`,
    common_http_protocol_options: `deprecated cluster-level common_http_protocol_options: use typed_extension_protocol_options["${UPSTREAM_HTTP_KEY}"]`,
    upstream_http_protocol_options: `deprecated cluster-level upstream_http_protocol_options: use typed_extension_protocol_options["${UPSTREAM_HTTP_KEY}"]`,
    protocol_selection: `deprecated cluster.protocol_selection: use typed_extension_protocol_options["${UPSTREAM_HTTP_KEY}"]`,
    extension_protocol_options: 'v2 field extension_protocol_options: use typed_extension_protocol_options',
  },
  virtual_host: {
    cors: `deprecated virtual_host.cors: use typed_per_filter_config["${F_CORS}"] with a CorsPolicy`,
    per_filter_config: 'v2 field per_filter_config: use typed_per_filter_config',
  },
  route: { per_filter_config: 'v2 field per_filter_config: use typed_per_filter_config' },
  route_match: { regex: 'v2 field match.regex: use safe_regex' },
  route_action: {
    cors: `deprecated route.cors: use typed_per_filter_config["${F_CORS}"] with a CorsPolicy`,
    host_rewrite: 'v2 field host_rewrite: use host_rewrite_literal',
    max_grpc_timeout: 'deprecated max_grpc_timeout: use max_stream_duration.grpc_timeout_header_max',
    grpc_timeout_offset: 'deprecated grpc_timeout_offset: use max_stream_duration.grpc_timeout_header_offset',
  },
  cors_policy: { allow_origin: 'v2 field allow_origin: use allow_origin_string_match', allow_origin_regex: 'v2 field allow_origin_regex: use allow_origin_string_match' },
  filter_chain: { tls_context: 'v2 field tls_context: use transport_socket with envoy.transport_sockets.tls' },
};

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function isLoopback(address: string): boolean {
  if (address === '::1') return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  return m !== null && m.slice(1).every((o) => Number(o) <= 255);
}

function isIpLiteral(address: string): boolean {
  return /^(\d{1,3})(\.\d{1,3}){3}$/.test(address) || (address.includes(':') && /^[0-9A-Fa-f:.]+$/.test(address));
}

/** Splits a CORS header list ("a, b,c") into lower-case names. */
const headerList = (v: unknown): string[] =>
  typeof v === 'string' ? v.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '') : [];

interface ListenerFacts {
  path: string;
  loopback: boolean;
  tls: boolean;
}

class Validator {
  readonly problems: string[] = [];
  private readonly clusters = new Map<string, { path: string; http2: boolean }>();

  add(path: string, msg: string): void {
    const line = `${path}: ${msg}`;
    if (!this.problems.includes(line)) this.problems.push(line);
  }

  /** The object at `path`, reporting when it is missing (if required) or not an object. */
  obj(path: string, v: unknown, required = true): Obj | undefined {
    if (v === undefined) {
      if (required) this.add(path, 'missing');
      return undefined;
    }
    if (!isObj(v)) {
      this.add(path, 'must be a mapping');
      return undefined;
    }
    return v;
  }

  arr(path: string, v: unknown, required = true): unknown[] {
    if (v === undefined) {
      if (required) this.add(path, 'missing');
      return [];
    }
    if (!Array.isArray(v)) {
      this.add(path, 'must be a list');
      return [];
    }
    return v;
  }

  str(path: string, v: unknown, required = true): string | undefined {
    if (v === undefined) {
      if (required) this.add(path, 'missing');
      return undefined;
    }
    if (typeof v !== 'string' || v === '') {
      this.add(path, 'must be a non-empty string');
      return undefined;
    }
    return v;
  }

  keys(path: string, o: Obj, kind: Kind): void {
    const allowed: readonly string[] = KEYS[kind];
    const deprecated = DEPRECATED[kind] ?? {};
    for (const k of Object.keys(o)) {
      if (allowed.includes(k)) continue;
      // The generic scan reports these with one message wherever they occur.
      if (k === 'config' || k === 'tls_context') continue;
      const why = deprecated[k];
      if (why !== undefined) this.add(`${path}.${k}`, why);
      else this.add(`${path}.${k}`, `unknown or unsupported key in ${kind} (allowed: ${allowed.join(', ')})`);
    }
  }

  /** Checks `typed_config` (or a typed map value) holds exactly the expected `@type`. */
  typed(path: string, v: unknown, expected: string): Obj | undefined {
    const o = this.obj(path, v);
    if (!o) return undefined;
    const t = o['@type'];
    if (t === undefined) this.add(path, `missing "@type" (expected ${expected})`);
    else if (t !== expected) this.add(`${path}["@type"]`, `is ${JSON.stringify(t)}, expected ${expected}`);
    return o;
  }

  // Rules that hold wherever a key appears, including levels not modelled below.
  scan(path: string, v: unknown): void {
    if (Array.isArray(v)) {
      v.forEach((x, i) => this.scan(`${path}[${i}]`, x));
      return;
    }
    if (!isObj(v)) return;
    for (const [k, x] of Object.entries(v)) {
      const p = path === '' ? k : `${path}.${k}`;
      if (k === '@type') {
        if (typeof x !== 'string' || !KNOWN_TYPE_URLS.has(x)) {
          const v2 = typeof x === 'string' && x.includes('envoy.api.v2') ? ' (a v2 type)' : '';
          this.add(p, `type URL ${JSON.stringify(x)}${v2} is not one this project uses (known: ${[...KNOWN_TYPE_URLS].join(', ')})`);
        }
      } else if (k === 'typed_config' || k === 'typed_extension_protocol_options' || k === 'typed_per_filter_config') {
        const entries = k === 'typed_config' ? [[p, x] as const] : isObj(x) ? Object.entries(x).map(([n, e]) => [`${p}["${n}"]`, e] as const) : [];
        for (const [ep, e] of entries) if (!isObj(e) || typeof e['@type'] !== 'string') this.add(ep, 'needs an "@type"');
      } else if (k === 'config' && 'name' in v) {
        this.add(p, 'v2 field "config": use typed_config with an "@type"');
      } else if (k === 'tls_context') {
        this.add(p, 'v2 field tls_context: use transport_socket with envoy.transport_sockets.tls');
      } else if (k === 'port_value') {
        if (typeof x !== 'number' || !Number.isInteger(x) || x < 1 || x > 65535) this.add(p, `port ${JSON.stringify(x)} is not an integer in 1-65535`);
      } else if (DURATION_KEYS.has(k) && !isObj(x)) {
        if (typeof x !== 'string' || !DURATION_RE.test(x)) this.add(p, `duration ${JSON.stringify(x)} must match ${DURATION_RE.source} (e.g. "0s", "1.5s")`);
      } else if (k === 'name' && typeof x === 'string' && LEGACY_FILTER_NAMES.has(x)) {
        this.add(p, `legacy name "${x}": use "${LEGACY_FILTER_NAMES.get(x) ?? ''}"`);
      }
      this.scan(p, x);
    }
  }

  socketAddress(path: string, v: unknown): { address: string; port: number } | undefined {
    const a = this.obj(path, v);
    if (!a) return undefined;
    this.keys(path, a, 'address');
    const sa = this.obj(`${path}.socket_address`, a['socket_address']);
    if (!sa) return undefined;
    this.keys(`${path}.socket_address`, sa, 'socket_address');
    const address = this.str(`${path}.socket_address.address`, sa['address']);
    const port = sa['port_value'];
    if (port === undefined) this.add(`${path}.socket_address.port_value`, 'missing');
    if (address === undefined || typeof port !== 'number') return undefined;
    return { address, port };
  }

  bootstrap(doc: unknown): void {
    const root = this.obj('(root)', doc);
    if (!root) return;
    this.scan('', root);
    this.keys('(root)', root, 'bootstrap');

    const admin = this.obj('admin', root['admin'], false);
    if (admin) {
      this.keys('admin', admin, 'admin');
      const a = this.socketAddress('admin.address', admin['address']);
      if (a && !isLoopback(a.address)) {
        this.add('admin.address', `admin interface on ${a.address}: it can stop Envoy and dump its config, bind it to 127.0.0.1`);
      }
    }

    const sr = this.obj('static_resources', root['static_resources']);
    if (!sr) return;
    this.keys('static_resources', sr, 'static_resources');
    // Clusters first: routes are checked against them.
    this.arr('static_resources.clusters', sr['clusters']).forEach((c, i) => this.cluster(`static_resources.clusters[${i}]`, c));
    const seen = new Map<string, string>();
    this.arr('static_resources.listeners', sr['listeners']).forEach((l, i) => {
      const facts = this.listener(`static_resources.listeners[${i}]`, l);
      if (!facts) return;
      const prev = seen.get(facts);
      if (prev !== undefined) this.add(`static_resources.listeners[${i}].address`, `same address and port as ${prev}`);
      else seen.set(facts, `static_resources.listeners[${i}]`);
    });
  }

  /** Returns "address:port" for the duplicate check. */
  listener(path: string, v: unknown): string | undefined {
    const l = this.obj(path, v);
    if (!l) return undefined;
    this.keys(path, l, 'listener');
    this.str(`${path}.name`, l['name']);
    const addr = this.socketAddress(`${path}.address`, l['address']);
    const chains = this.arr(`${path}.filter_chains`, l['filter_chains']);
    if (chains.length === 0) this.add(`${path}.filter_chains`, 'no filter chains');
    const tlsPerChain = chains.map((c, i) => this.filterChainTls(`${path}.filter_chains[${i}]`, c));
    const tls = tlsPerChain.length > 0 && tlsPerChain.every(Boolean);
    const loopback = addr !== undefined && isLoopback(addr.address);
    if (addr && !loopback && !tls) {
      this.add(`${path}.address`, `plain-HTTP listener on ${addr.address}: bind 127.0.0.1, or add TLS to every filter chain before exposing it`);
    }
    const facts: ListenerFacts = { path, loopback, tls };
    chains.forEach((c, i) => this.filterChain(`${path}.filter_chains[${i}]`, c, facts));
    return addr ? `${addr.address}:${addr.port}` : undefined;
  }

  filterChainTls(path: string, v: unknown): boolean {
    if (!isObj(v) || v['transport_socket'] === undefined) return false;
    const p = `${path}.transport_socket`;
    const ts = this.obj(p, v['transport_socket']);
    if (!ts) return false;
    this.keys(p, ts, 'transport_socket');
    if (this.str(`${p}.name`, ts['name']) !== TLS_SOCKET_NAME) {
      this.add(`${p}.name`, `must be ${TLS_SOCKET_NAME}`);
      return false;
    }
    const ctx = this.typed(`${p}.typed_config`, ts['typed_config'], TYPE.downstreamTls);
    if (!ctx) return false;
    return this.downstreamTls(`${p}.typed_config`, ctx);
  }

  downstreamTls(path: string, ctx: Obj): boolean {
    this.keys(path, ctx, 'downstream_tls_context');
    const cp = `${path}.common_tls_context`;
    const common = this.obj(cp, ctx['common_tls_context']);
    if (!common) return false;
    this.keys(cp, common, 'common_tls_context');
    const params = this.obj(`${cp}.tls_params`, common['tls_params'], false);
    if (params) {
      this.keys(`${cp}.tls_params`, params, 'tls_params');
      const min = params['tls_minimum_protocol_version'];
      if (min === 'TLSv1_0' || min === 'TLSv1_1') this.add(`${cp}.tls_params.tls_minimum_protocol_version`, `${min} is obsolete: use TLSv1_2 or TLSv1_3`);
    }
    const certs = this.arr(`${cp}.tls_certificates`, common['tls_certificates']);
    if (certs.length === 0) this.add(`${cp}.tls_certificates`, 'a TLS listener needs a certificate');
    certs.forEach((c, i) => {
      const p = `${cp}.tls_certificates[${i}]`;
      const cert = this.obj(p, c);
      if (!cert) return;
      this.keys(p, cert, 'tls_certificate');
      this.dataSource(`${p}.certificate_chain`, cert['certificate_chain']);
      this.dataSource(`${p}.private_key`, cert['private_key']);
    });
    const alpn = this.arr(`${cp}.alpn_protocols`, common['alpn_protocols']);
    for (const [i, proto] of alpn.entries()) {
      if (proto !== 'h2' && proto !== 'http/1.1') this.add(`${cp}.alpn_protocols[${i}]`, `${JSON.stringify(proto)}: only "h2" and "http/1.1" are served here`);
    }
    if (!alpn.includes('h2')) this.add(`${cp}.alpn_protocols`, 'must offer "h2" (and "http/1.1"), else browsers fall back to HTTP/1.1 and its 6-connection limit');
    return true;
  }

  dataSource(path: string, v: unknown): void {
    const d = this.obj(path, v);
    if (!d) return;
    this.keys(path, d, 'data_source');
    const set = KEYS.data_source.filter((k) => d[k] !== undefined);
    if (set.length !== 1) this.add(path, `needs exactly one of ${KEYS.data_source.join(', ')}`);
  }

  filterChain(path: string, v: unknown, listener: ListenerFacts): void {
    const fc = this.obj(path, v);
    if (!fc) return;
    this.keys(path, fc, 'filter_chain');
    const filters = this.arr(`${path}.filters`, fc['filters']);
    if (filters.length === 0) this.add(`${path}.filters`, 'no network filters');
    filters.forEach((f, i) => {
      const p = `${path}.filters[${i}]`;
      const nf = this.obj(p, f);
      if (!nf) return;
      this.keys(p, nf, 'network_filter');
      if (this.str(`${p}.name`, nf['name']) !== HCM_NAME) {
        this.add(`${p}.name`, `only ${HCM_NAME} is used here`);
        return;
      }
      const hcm = this.typed(`${p}.typed_config`, nf['typed_config'], TYPE.hcm);
      if (hcm) this.hcm(`${p}.typed_config`, hcm, listener);
    });
  }

  hcm(path: string, h: Obj, listener: ListenerFacts): void {
    this.keys(path, h, 'http_connection_manager');
    this.str(`${path}.stat_prefix`, h['stat_prefix']);
    const common = this.obj(`${path}.common_http_protocol_options`, h['common_http_protocol_options'], false);
    if (common) this.keys(`${path}.common_http_protocol_options`, common, 'common_http_protocol_options');
    this.protocolOptions(`${path}.http_protocol_options`, h['http_protocol_options'], 'http1_protocol_options');
    this.protocolOptions(`${path}.http2_protocol_options`, h['http2_protocol_options'], 'http2_protocol_options');

    const filters = this.httpFilters(`${path}.http_filters`, h['http_filters']);
    if (h['route_config'] === undefined) {
      this.add(`${path}.route_config`, 'missing: the routes must be inline (static bootstrap, no RDS)');
      return;
    }
    this.routeConfig(`${path}.route_config`, h['route_config'], filters, listener);
  }

  protocolOptions(path: string, v: unknown, kind: 'http1_protocol_options' | 'http2_protocol_options'): void {
    const o = this.obj(path, v, false);
    if (!o) return;
    this.keys(path, o, kind);
    const ka = this.obj(`${path}.connection_keepalive`, o['connection_keepalive'], false);
    if (ka) {
      for (const k of Object.keys(ka)) {
        if (!['interval', 'timeout', 'interval_jitter', 'connection_idle_interval'].includes(k)) this.add(`${path}.connection_keepalive.${k}`, 'unknown key');
      }
    }
  }

  /** Returns the filter names in order. */
  httpFilters(path: string, v: unknown): string[] {
    const names: string[] = [];
    const list = this.arr(path, v);
    list.forEach((f, i) => {
      const p = `${path}[${i}]`;
      const hf = this.obj(p, f);
      if (!hf) return;
      this.keys(p, hf, 'http_filter');
      const name = this.str(`${p}.name`, hf['name']);
      if (name === undefined) return;
      if (names.includes(name)) this.add(`${p}.name`, `${name} appears twice`);
      names.push(name);
      const expected = HTTP_FILTER_TYPES.get(name);
      if (expected === undefined) {
        this.add(`${p}.name`, `unknown HTTP filter ${JSON.stringify(name)} (known: ${[...HTTP_FILTER_TYPES.keys()].join(', ')})`);
        return;
      }
      const tc = this.typed(`${p}.typed_config`, hf['typed_config'], expected);
      if (tc) this.keys(`${p}.typed_config`, tc, name === F_GRPC_WEB ? 'grpc_web' : name === F_CORS ? 'cors' : 'router');
    });
    const router = names.indexOf(F_ROUTER);
    if (router === -1) this.add(path, `${F_ROUTER} is missing: nothing would be forwarded`);
    else if (router !== names.length - 1) this.add(path, `${F_ROUTER} must be the last HTTP filter: filters after it never run`);
    for (const [needed, why] of [
      [F_GRPC_WEB, 'browsers speak gRPC-Web, the helper speaks gRPC'],
      [F_CORS, 'preflights would reach the helper unanswered'],
    ] as const) {
      const at = names.indexOf(needed);
      if (at === -1) this.add(path, `${needed} is missing: ${why}`);
      else if (router !== -1 && at > router) this.add(path, `${needed} must come before ${F_ROUTER}`);
    }
    return names;
  }

  routeConfig(path: string, v: unknown, filters: readonly string[], listener: ListenerFacts): void {
    const rc = this.obj(path, v);
    if (!rc) return;
    this.keys(path, rc, 'route_config');
    const vhosts = this.arr(`${path}.virtual_hosts`, rc['virtual_hosts']);
    if (vhosts.length === 0) this.add(`${path}.virtual_hosts`, 'no virtual hosts');
    vhosts.forEach((vh, i) => this.virtualHost(`${path}.virtual_hosts[${i}]`, vh, filters, listener));
  }

  /** Validates typed_per_filter_config; returns whether it carries a CORS policy. */
  perFilterConfig(path: string, v: unknown, filters: readonly string[]): boolean {
    const m = this.obj(path, v, false);
    if (!m) return false;
    let cors = false;
    for (const [name, cfg] of Object.entries(m)) {
      const p = `${path}["${name}"]`;
      if (!filters.includes(name)) this.add(p, `no HTTP filter named ${name} in this connection manager`);
      const expected = PER_FILTER_TYPES.get(name);
      if (expected === undefined) {
        this.add(p, `no per-route config is used for ${name}`);
        continue;
      }
      const o = this.typed(p, cfg, expected);
      if (o) {
        this.corsPolicy(p, o);
        cors = true;
      }
    }
    return cors;
  }

  corsPolicy(path: string, c: Obj): void {
    this.keys(path, c, 'cors_policy');
    const origins = this.arr(`${path}.allow_origin_string_match`, c['allow_origin_string_match']);
    if (origins.length === 0) this.add(`${path}.allow_origin_string_match`, 'list the allowed origins explicitly');
    origins.forEach((m, i) => {
      const p = `${path}.allow_origin_string_match[${i}]`;
      const o = this.obj(p, m);
      if (!o) return;
      for (const k of Object.keys(o)) {
        if (k === 'exact') continue;
        if (k === 'safe_regex') {
          const re = isObj(o[k]) ? o[k]['regex'] : undefined;
          const any = typeof re === 'string' && /^\^?\.[*+]\$?$/.test(re);
          this.add(`${p}.safe_regex`, any ? `regex ${JSON.stringify(re)} allows every origin: list exact origins` : 'regex origins are not allowed (easy to over-match): list exact origins');
        } else if (['prefix', 'suffix', 'contains'].includes(k)) {
          this.add(`${p}.${k}`, `${k} origins over-match (e.g. a look-alike host): list exact origins`);
        } else {
          this.add(`${p}.${k}`, 'unknown key: only "exact" is allowed');
        }
      }
      const exact = o['exact'];
      if (exact === undefined) return;
      if (typeof exact !== 'string' || exact.includes('*')) {
        this.add(`${p}.exact`, `origin ${JSON.stringify(exact)}: a wildcard lets any web site drive the helper; list exact origins`);
      } else if (!/^https?:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(exact)) {
        this.add(`${p}.exact`, `${JSON.stringify(exact)} is not an origin (scheme://host[:port], no path or trailing slash)`);
      }
    });
    const expose = headerList(c['expose_headers']);
    for (const h of CORS_REQUIRED_EXPOSE) {
      if (!expose.includes(h)) this.add(`${path}.expose_headers`, `must expose ${h}: without it the browser hides the call's status`);
    }
    const allow = headerList(c['allow_headers']);
    for (const h of CORS_REQUIRED_ALLOW_HEADERS) {
      if (!allow.includes(h)) this.add(`${path}.allow_headers`, `must allow ${h}: gRPC-Web clients send it`);
    }
    if (!headerList(c['allow_methods']).includes('post')) this.add(`${path}.allow_methods`, 'must allow POST: every gRPC-Web call is a POST');
    const maxAge = c['max_age'];
    if (maxAge !== undefined && (typeof maxAge !== 'string' || !/^\d+$/.test(maxAge))) this.add(`${path}.max_age`, 'must be a string of seconds, e.g. "7200"');
  }

  virtualHost(path: string, v: unknown, filters: readonly string[], listener: ListenerFacts): void {
    const vh = this.obj(path, v);
    if (!vh) return;
    this.keys(path, vh, 'virtual_host');
    this.str(`${path}.name`, vh['name']);
    const domains = this.arr(`${path}.domains`, vh['domains']);
    if (domains.length === 0) this.add(`${path}.domains`, 'list the Host values served');
    domains.forEach((d, i) => {
      if (typeof d !== 'string' || d === '') this.add(`${path}.domains[${i}]`, 'must be a non-empty string');
      else if (d.includes('*')) {
        this.add(`${path}.domains[${i}]`, `wildcard domain ${JSON.stringify(d)} defeats the DNS-rebinding guard: list exact host:port values`);
      }
    });
    const vhostCors = this.perFilterConfig(`${path}.typed_per_filter_config`, vh['typed_per_filter_config'], filters);

    let sessionDecided = false;
    this.arr(`${path}.routes`, vh['routes']).forEach((r, i) => {
      const p = `${path}.routes[${i}]`;
      const info = this.route(p, r, filters);
      if (!info) return;
      if (info.grpc && filters.includes(F_CORS) && !vhostCors && !info.cors) {
        this.add(p, `gRPC route without a CORS policy (typed_per_filter_config["${F_CORS}"] here or on the virtual host)`);
      }
      if (!listener.loopback && !sessionDecided && info.matches(SESSION_PATH)) {
        sessionDecided = true;
        if (!info.direct) {
          this.add(p, `forwards ${SESSION_PATH} from a non-loopback listener: that hands the install token to the network; answer it with a direct_response before this route`);
        }
      }
    });
  }

  route(path: string, v: unknown, filters: readonly string[]): { grpc: boolean; cors: boolean; direct: boolean; matches(p: string): boolean } | undefined {
    const r = this.obj(path, v);
    if (!r) return undefined;
    this.keys(path, r, 'route');
    const cors = this.perFilterConfig(`${path}.typed_per_filter_config`, r['typed_per_filter_config'], filters);

    let matches = (_p: string): boolean => false;
    let pathLike: string | undefined;
    const m = this.obj(`${path}.match`, r['match']);
    if (m) {
      this.keys(`${path}.match`, m, 'route_match');
      const kinds = ['prefix', 'path', 'safe_regex', 'path_separated_prefix'].filter((k) => m[k] !== undefined);
      if (kinds.length !== 1) this.add(`${path}.match`, 'needs exactly one of prefix, path, safe_regex, path_separated_prefix');
      const fold = m['case_sensitive'] === false ? (s: string): string => s.toLowerCase() : (s: string): string => s;
      const prefix = m['prefix'] ?? m['path_separated_prefix'];
      const exact = m['path'];
      const regex = isObj(m['safe_regex']) ? m['safe_regex']['regex'] : undefined;
      if (typeof prefix === 'string') {
        pathLike = prefix;
        matches = (p) => fold(p).startsWith(fold(prefix));
      } else if (typeof exact === 'string') {
        pathLike = exact;
        matches = (p) => fold(p) === fold(exact);
      } else if (typeof regex === 'string') {
        try {
          const re = new RegExp(`^(?:${regex})$`, m['case_sensitive'] === false ? 'i' : '');
          matches = (p) => re.test(p);
        } catch {
          this.add(`${path}.match.safe_regex.regex`, 'does not compile');
        }
      }
    }

    const actions = ['route', 'redirect', 'direct_response'].filter((k) => r[k] !== undefined);
    if (actions.length !== 1) this.add(path, 'needs exactly one of route, redirect, direct_response');
    const direct = r['direct_response'] !== undefined;
    if (direct) {
      const d = this.obj(`${path}.direct_response`, r['direct_response']);
      if (d) {
        this.keys(`${path}.direct_response`, d, 'direct_response');
        const st = d['status'];
        if (typeof st !== 'number' || !Number.isInteger(st) || st < 200 || st > 599) this.add(`${path}.direct_response.status`, 'must be an HTTP status 200-599');
        if (d['body'] !== undefined) this.dataSource(`${path}.direct_response.body`, d['body']);
      }
    }
    const redirect = this.obj(`${path}.redirect`, r['redirect'], false);
    if (redirect) this.keys(`${path}.redirect`, redirect, 'redirect');

    let grpc = pathLike?.startsWith(GRPC_PREFIX) ?? false;
    const a = this.obj(`${path}.route`, r['route'], false);
    if (a) {
      const ap = `${path}.route`;
      this.keys(ap, a, 'route_action');
      const name = this.str(`${ap}.cluster`, a['cluster']);
      const cluster = name === undefined ? undefined : this.clusters.get(name);
      if (name !== undefined && !cluster) {
        this.add(`${ap}.cluster`, `no cluster named ${JSON.stringify(name)} (defined: ${[...this.clusters.keys()].join(', ') || 'none'})`);
      }
      // A route into the HTTP/2 (gRPC) cluster carries gRPC whatever its path says.
      if (cluster?.http2) grpc = true;
      if (grpc) {
        if (cluster && !cluster.http2) this.add(`${ap}.cluster`, `gRPC route to ${name ?? ''}, which does not speak HTTP/2 (set explicit_http_config.http2_protocol_options)`);
        if (a['timeout'] !== '0s') {
          this.add(`${ap}.timeout`, `gRPC routes need timeout: 0s (was ${JSON.stringify(a['timeout'])}): the default 15s kills Watch streams`);
        }
        const msd = this.obj(`${ap}.max_stream_duration`, a['max_stream_duration']);
        if (msd) {
          this.keys(`${ap}.max_stream_duration`, msd, 'max_stream_duration');
          if (msd['grpc_timeout_header_max'] === undefined) {
            this.add(`${ap}.max_stream_duration.grpc_timeout_header_max`, 'missing: without it Envoy ignores the grpc-timeout header');
          }
        }
      } else if (isObj(a['max_stream_duration'])) {
        this.keys(`${ap}.max_stream_duration`, a['max_stream_duration'], 'max_stream_duration');
      }
    }
    return { grpc, cors, direct, matches };
  }

  cluster(path: string, v: unknown): void {
    const c = this.obj(path, v);
    if (!c) return;
    this.keys(path, c, 'cluster');
    const name = this.str(`${path}.name`, c['name']);
    const type = c['type'];
    if (type !== 'STATIC' && type !== 'STRICT_DNS' && type !== 'LOGICAL_DNS') {
      this.add(`${path}.type`, `${JSON.stringify(type)}: use STATIC (IP literal) or STRICT_DNS`);
    }
    if (c['connect_timeout'] === undefined) this.add(`${path}.connect_timeout`, 'missing (the default 5s hides a stopped helper for 5 s)');

    let http2 = false;
    const tepo = this.obj(`${path}.typed_extension_protocol_options`, c['typed_extension_protocol_options'], false);
    if (tepo) {
      for (const [k, opts] of Object.entries(tepo)) {
        const p = `${path}.typed_extension_protocol_options["${k}"]`;
        if (k !== UPSTREAM_HTTP_KEY) {
          this.add(p, `unknown extension (only ${UPSTREAM_HTTP_KEY} is used)`);
          continue;
        }
        const o = this.typed(p, opts, TYPE.upstreamHttp);
        if (!o) continue;
        this.keys(p, o, 'upstream_http_protocol_options');
        const common = this.obj(`${p}.common_http_protocol_options`, o['common_http_protocol_options'], false);
        if (common) this.keys(`${p}.common_http_protocol_options`, common, 'common_http_protocol_options');
        const ex = this.obj(`${p}.explicit_http_config`, o['explicit_http_config']);
        if (!ex) continue;
        this.keys(`${p}.explicit_http_config`, ex, 'explicit_http_config');
        const set = KEYS.explicit_http_config.filter((x) => ex[x] !== undefined);
        if (set.length !== 1) this.add(`${p}.explicit_http_config`, 'needs exactly one of http_protocol_options, http2_protocol_options');
        this.protocolOptions(`${p}.explicit_http_config.http_protocol_options`, ex['http_protocol_options'], 'http1_protocol_options');
        this.protocolOptions(`${p}.explicit_http_config.http2_protocol_options`, ex['http2_protocol_options'], 'http2_protocol_options');
        http2 = set.length === 1 && set[0] === 'http2_protocol_options';
      }
    }

    const lp = `${path}.load_assignment`;
    const la = this.obj(lp, c['load_assignment']);
    if (la) {
      this.keys(lp, la, 'load_assignment');
      if (name !== undefined && la['cluster_name'] !== name) this.add(`${lp}.cluster_name`, `must equal the cluster name ${JSON.stringify(name)}`);
      let count = 0;
      this.arr(`${lp}.endpoints`, la['endpoints']).forEach((e, i) => {
        const ep = `${lp}.endpoints[${i}]`;
        const loc = this.obj(ep, e);
        if (!loc) return;
        this.keys(ep, loc, 'locality_lb_endpoints');
        this.arr(`${ep}.lb_endpoints`, loc['lb_endpoints']).forEach((lb, j) => {
          const lbp = `${ep}.lb_endpoints[${j}]`;
          const lbe = this.obj(lbp, lb);
          if (!lbe) return;
          this.keys(lbp, lbe, 'lb_endpoint');
          const end = this.obj(`${lbp}.endpoint`, lbe['endpoint']);
          if (!end) return;
          this.keys(`${lbp}.endpoint`, end, 'endpoint');
          const addr = this.socketAddress(`${lbp}.endpoint.address`, end['address']);
          count++;
          if (!addr) return;
          if (type === 'STATIC' && !isIpLiteral(addr.address)) this.add(`${lbp}.endpoint.address`, `STATIC clusters need an IP literal, not ${addr.address}`);
          // The helper refuses to listen anywhere but loopback, so any other upstream is a mistake.
          if (!isLoopback(addr.address) && addr.address !== 'localhost') this.add(`${lbp}.endpoint.address`, `${addr.address} is not loopback: the helper listens on loopback only`);
        });
      });
      if (count === 0) this.add(lp, 'no endpoints');
    }

    if (name === undefined) return;
    if (this.clusters.has(name)) this.add(`${path}.name`, `duplicate cluster name ${name}`);
    else this.clusters.set(name, { path, http2 });
  }
}

/** All problems found in a parsed Envoy v3 bootstrap; empty means it passed. */
export function validateEnvoyConfig(doc: unknown): string[] {
  const v = new Validator();
  v.bootstrap(doc);
  return v.problems;
}

/** Parses YAML (duplicate keys are errors, as they are for Envoy) and validates it. */
export function validateEnvoyYaml(text: string): string[] {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) return doc.errors.map((e) => `YAML: ${e.message}`);
  return validateEnvoyConfig(doc.toJS());
}

function main(files: readonly string[]): number {
  if (files.length === 0) {
    process.stderr.write('usage: node dist/envoy/validate.js FILE...\n');
    return 2;
  }
  let bad = 0;
  for (const file of files) {
    let problems: string[];
    try {
      problems = validateEnvoyYaml(readFileSync(file, 'utf8'));
    } catch (err) {
      problems = [`cannot read: ${(err as Error).message}`];
    }
    if (problems.length === 0) {
      process.stdout.write(`${file}: OK\n`);
    } else {
      bad++;
      for (const p of problems) process.stdout.write(`${file}: ${p}\n`);
    }
  }
  return bad === 0 ? 0 : 1;
}

const invoked = process.argv[1];
if (invoked !== undefined && resolve(invoked) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
