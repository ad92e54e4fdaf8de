// The Linux fast path: for confirmed direct paths WireGuard talks to the peer's public address
// itself, and stateless nftables rules make its packets indistinguishable from the helper's:
//   output      WireGuard's packets to a fast-path peer leave with the public port as source
//   prerouting  WireGuard data (and cookie replies) from a fast-path peer to the public port go to
//               WireGuard; its handshake messages go to the helper (crossing guard, WG_FAST_TYPES)
// A peer whose path belongs to a socket of its own (birthday probing's winning socket, see
// birthday.ts) is "pinned": the same two rules with that socket's port instead of the public one,
// looked up per peer endpoint; its own counter sets (`pinnedout`, and `pinnedin` which also
// steers) count its packets as `peers`/`peersout` do for the others. Only the (ip, port) pairs in
// the `peers` set (and pinned map) are touched, so peers still on the proxy path (and
// WireGuard's traffic to our 127.0.0.1 proxy ports) are unaffected, and disco (not WireGuard-typed)
// still reaches the helper for liveness. Raw priority runs before conntrack, so NAT state sees
// the rewritten ports in both directions. The table belongs to one WireGuard interface and lives
// in the current network namespace; nft gets the whole ruleset on stdin (no shell, no arguments
// from outside) and replaces the table atomically.

import { execFile } from 'node:child_process';
import type { Logger } from '../core/log.js';
import { parseEndpoint } from './addr.js';
import { NftCommitter, type NftRunner } from './nft-committer.js';

/** nft identifiers: keep them to [A-Za-z0-9_]. */
export function fastPathTableName(iface: string): string {
  const clean = iface.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 32);
  return `lanrage_fp_${clean || 'wg'}`;
}

function checkPort(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`fast path: ${what} port ${n} is out of range`);
}

/** A fast-path peer whose traffic uses a local port of its own instead of the public one. */
export interface PinnedEndpoint {
  endpoint: string;
  localPort: number;
}

/**
 * WireGuard types steered straight to WireGuard: cookie replies and data. Handshake initiations
 * and responses still reach the helper, so the crossing guard (handshake.ts) judges every
 * handshake message from the peer: steered past it, a peer's initiation reached WireGuard while
 * ours was in flight, both handshakes were lost and wireguard-go only tried again with the 20 s
 * keepalive (join storm: arestr10's guard never saw prestr8's initiation, its fast path was on).
 * wireguard-go roams to the proxy port with such a message; wg-repoint.ts points it back here.
 */
const WG_FAST_TYPES = '@th,64,32 { 0x03000000, 0x04000000 }';

/** The table's full ruleset for these peer endpoints, or only its removal when there are none. */
export function renderRuleset(table: string, wgPort: number, pubPort: number, endpoints: readonly string[], pinned: readonly PinnedEndpoint[] = []): string {
  checkPort(wgPort, 'WireGuard');
  checkPort(pubPort, 'public');
  if (!/^[A-Za-z0-9_]+$/.test(table)) throw new Error(`fast path: bad table name ${JSON.stringify(table)}`);
  // "add" first makes the "delete" valid whether or not the table exists; one transaction.
  const head = `add table ip ${table}\ndelete table ip ${table}\n`;
  const parse = (e: string): { ip: string; port: number } => {
    const ep = parseEndpoint(e);
    if (!ep) throw new Error(`fast path: bad endpoint ${JSON.stringify(e)}`);
    return ep;
  };
  const elems = endpoints.map((e) => {
    const ep = parse(e);
    return `${ep.ip} . ${ep.port}`;
  });
  const pins = pinned.map((p) => {
    checkPort(p.localPort, 'pinned local');
    return { ...parse(p.endpoint), local: p.localPort };
  });
  if (elems.length === 0 && pins.length === 0) return head;
  const out: string[] = [];
  const pre: string[] = [];
  const sets: string[] = [];
  if (elems.length > 0) {
    // Per-element counters: packets on the fast path never reach Node, so these are the only
    // per-peer packet counts. `peers` matches both ways, `peersout` only outgoing; rx = the difference.
    sets.push(`  set peers {\n    type ipv4_addr . inet_service\n    counter\n    elements = { ${elems.join(', ')} }\n  }\n`);
    sets.push(`  set peersout {\n    type ipv4_addr . inet_service\n    counter\n    elements = { ${elems.join(', ')} }\n  }\n`);
    out.push(`    udp sport ${wgPort} ip daddr . udp dport @peersout\n`);
    out.push(`    udp sport ${wgPort} ip daddr . udp dport @peers udp sport set ${pubPort}\n`);
    pre.push(`    udp dport ${pubPort} ip saddr . udp sport @peers ${WG_FAST_TYPES} udp dport set ${wgPort}\n`);
  }
  if (pins.length > 0) {
    sets.push(`  map pinned {\n    type ipv4_addr . inet_service : inet_service\n    elements = { ${pins.map((p) => `${p.ip} . ${p.port} : ${p.local}`).join(', ')} }\n  }\n`);
    // Counters as for `peers`, but one way each: `pinnedout` counts what WireGuard sends, and
    // `pinnedin` (looked up after the type check, so disco to the pinned socket is not counted)
    // what it receives.
    sets.push(`  set pinnedout {\n    type ipv4_addr . inet_service\n    counter\n    elements = { ${pins.map((p) => `${p.ip} . ${p.port}`).join(', ')} }\n  }\n`);
    sets.push(`  set pinnedin {\n    type inet_service . ipv4_addr . inet_service\n    counter\n    elements = { ${pins.map((p) => `${p.local} . ${p.ip} . ${p.port}`).join(', ')} }\n  }\n`);
    out.push(`    udp sport ${wgPort} ip daddr . udp dport @pinnedout\n`);
    out.push(`    udp sport ${wgPort} udp sport set ip daddr . udp dport map @pinned\n`);
    pre.push(`    ${WG_FAST_TYPES} udp dport . ip saddr . udp sport @pinnedin udp dport set ${wgPort}\n`);
  }
  return (
    head +
    `table ip ${table} {\n` +
    sets.join('') +
    `  chain output {\n    type filter hook output priority raw; policy accept;\n${out.join('')}  }\n` +
    `  chain prerouting {\n    type filter hook prerouting priority raw; policy accept;\n${pre.join('')}  }\n` +
    `}\n`
  );
}

/** Runs `nft -j list table ip TABLE` and returns its JSON text. */
export type NftLister = (table: string) => Promise<string>;

export interface FastPathCounters {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
}

interface NftElem {
  elem?: { val?: { concat?: unknown[] }; counter?: { packets?: number; bytes?: number } };
}

/** How parseCounters names a pinned peer's counters: its local port and endpoint. */
export function pinnedKey(localPort: number, endpoint: string): string {
  return `${localPort}>${endpoint}`;
}

type Count = { packets: number; bytes: number };
const ZERO: Count = { packets: 0, bytes: 0 };

/**
 * Per-endpoint counters from `nft -j list table` output of a table renderRuleset made: keyed
 * "ip:port" for fast-path peers and pinnedKey(localPort, "ip:port") for pinned ones.
 */
export function parseCounters(json: string): Map<string, FastPathCounters> {
  const sets = new Map<string, Map<string, Count>>();
  const doc = JSON.parse(json) as { nftables?: Array<{ set?: { name?: string; elem?: NftElem[] } }> };
  for (const item of doc.nftables ?? []) {
    const set = item.set;
    if (!set?.name || !['peers', 'peersout', 'pinnedout', 'pinnedin'].includes(set.name)) continue;
    const m = new Map<string, Count>();
    for (const e of set.elem ?? []) {
      const c = e.elem?.val?.concat;
      // pinnedin is (local port, ip, port); the others are (ip, port).
      const ep = Array.isArray(c) ? c.slice(set.name === 'pinnedin' ? 1 : 0) : [];
      if (!Array.isArray(c) || ep.length !== 2 || typeof ep[0] !== 'string' || typeof ep[1] !== 'number') continue;
      if (set.name === 'pinnedin' && typeof c[0] !== 'number') continue;
      const key = set.name === 'pinnedin' ? pinnedKey(c[0] as number, `${ep[0]}:${ep[1]}`) : `${ep[0]}:${ep[1]}`;
      m.set(key, { packets: e.elem?.counter?.packets ?? 0, bytes: e.elem?.counter?.bytes ?? 0 });
    }
    sets.set(set.name, m);
  }
  const res = new Map<string, FastPathCounters>();
  // `peers` matches both ways, `peersout` only outgoing: rx is the difference.
  const out = sets.get('peersout');
  for (const [ep, b] of sets.get('peers') ?? []) {
    const o = out?.get(ep) ?? ZERO;
    res.set(ep, { txPackets: o.packets, txBytes: o.bytes, rxPackets: Math.max(0, b.packets - o.packets), rxBytes: Math.max(0, b.bytes - o.bytes) });
  }
  const pinnedOut = sets.get('pinnedout');
  for (const [key, i] of sets.get('pinnedin') ?? []) {
    const o = pinnedOut?.get(key.slice(key.indexOf('>') + 1)) ?? ZERO;
    res.set(key, { txPackets: o.packets, txBytes: o.bytes, rxPackets: i.packets, rxBytes: i.bytes });
  }
  return res;
}

export const listNft: NftLister = (table) =>
  new Promise((resolve, reject) => {
    if (!/^[A-Za-z0-9_]+$/.test(table)) return reject(new Error(`fast path: bad table name ${JSON.stringify(table)}`));
    execFile('nft', ['-j', 'list', 'table', 'ip', table], { maxBuffer: 4 * 1024 * 1024, timeout: 5000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });

export interface FastPathOptions {
  iface: string;
  wgPort(): number;
  pubPort(): number;
  run?: NftRunner;
  list?: NftLister;
}

/** The set of fast-path peers and the one table that serves them; applies are serialized. */
export class FastPath {
  readonly table: string;
  private readonly peers = new Map<string, { endpoint: string; localPort: number | null }>();
  private installed = false;
  private readonly nft: NftCommitter;

  constructor(private readonly o: FastPathOptions) {
    this.table = fastPathTableName(o.iface);
    this.nft = new NftCommitter({
      render: () => this.render(),
      ...(o.run ? { run: o.run } : {}),
      // The ruleset tells what is installed: peers may have changed while nft ran.
      onApplied: (ruleset) => {
        this.installed = ruleset !== this.removal();
      },
    });
  }

  /**
   * Puts a peer on the fast path (endpoint) or takes it off (null); resolves when nft is done.
   * localPort: the peer's traffic uses that local port instead of the public one (pinned).
   */
  set(peerId: string, endpoint: string | null, localPort: number | null = null): Promise<void> {
    if (endpoint === null) this.peers.delete(peerId);
    else this.peers.set(peerId, { endpoint, localPort });
    return this.nft.commit();
  }

  has(peerId: string): boolean {
    return this.peers.has(peerId);
  }

  /**
   * The ruleset for the peers as they are when a commit starts. One nft transaction per change
   * set: a join storm moves many peers onto the fast path within a few hundred ms, and one `nft`
   * process each would queue behind each other on a loaded machine (NftCommitter coalesces).
   */
  private render(): string | null {
    const all = [...this.peers.values()];
    const eps = [...new Set(all.filter((p) => p.localPort === null).map((p) => p.endpoint))];
    const pinned = all.filter((p): p is PinnedEndpoint => p.localPort !== null);
    if (eps.length === 0 && pinned.length === 0 && !this.installed) return null;
    return renderRuleset(this.table, this.o.wgPort(), this.o.pubPort(), eps, pinned);
  }

  /**
   * Packet and byte counters of the fast-path peers (pinned ones too), by peer id. One `nft`
   * process for all peers (~30 ms of CPU here), so callers read it seldom. The table is replaced
   * on every change, which restarts its counters: callers treat a drop as a restart.
   */
  async counters(): Promise<Map<string, FastPathCounters>> {
    const res = new Map<string, FastPathCounters>();
    if (!this.installed) return res;
    const byEp = parseCounters(await (this.o.list ?? listNft)(this.table));
    for (const [id, p] of this.peers) {
      const c = byEp.get(p.localPort === null ? p.endpoint : pinnedKey(p.localPort, p.endpoint));
      if (c) res.set(id, c);
    }
    return res;
  }

  private removal(): string {
    return renderRuleset(this.table, 1, 1, []);
  }

  /** Removes a table a previous run may have left behind (errors ignored: nft may be absent). */
  reset(): Promise<void> {
    return this.nft.replace(this.removal()).catch(() => undefined);
  }

  /** Removes the table (whatever peers were on it). */
  close(): Promise<void> {
    this.peers.clear();
    return this.nft.commit();
  }
}

/** A peer as the reconcile loop sees it (magicsock's PeerEndpoint). */
export interface FastPathPeer {
  readonly id: string;
  readonly removed: boolean;
  /** The endpoint of the confirmed direct path, or null. */
  readonly activeKey: string | null;
  /** Birthday probing's winning socket for one endpoint of this peer (its port replaces ours). */
  readonly pin: { key: string; sock: { port: number } } | null;
  /** The 127.0.0.1 proxy port WireGuard uses off the fast path (0: not open yet). */
  readonly proxyPort: number;
  /** What WireGuard has now. */
  fastEp: string | null;
  fastPort: number | null;
  reconciling: boolean;
  readonly machine: { setFastPath(on: boolean): void };
}

export interface ReconcileIo<P extends FastPathPeer> {
  closed(): boolean;
  wgPort(): number;
  /** Sets the peer's endpoint in WireGuard; false when that failed (logged by the caller). */
  pushEndpoint(rec: P, endpoint: string): Promise<boolean>;
  c: { fastpath_on: number; fastpath_off: number; fastpath_errors: number };
  log: Pick<Logger, 'warn' | 'debug'>;
}

/**
 * Moves a peer on or off the fast path until what WireGuard has matches the path state: on, when
 * it has a direct path (nft first, then WireGuard's endpoint); off, back to its proxy port. One
 * loop per peer at a time; a change during a run is picked up by the same loop.
 */
export async function reconcileFastPath<P extends FastPathPeer>(fast: FastPath, rec: P, io: ReconcileIo<P>): Promise<void> {
  if (rec.reconciling) return;
  rec.reconciling = true;
  try {
    for (;;) {
      const want = !rec.removed && !io.closed() && rec.activeKey !== null && io.wgPort() > 0 ? rec.activeKey : null;
      // A pinned endpoint's packets use its own socket's port instead of the public one.
      const wantPort = want !== null && rec.pin !== null && rec.pin.key === want ? rec.pin.sock.port : null;
      if (want === rec.fastEp && wantPort === rec.fastPort) return;
      if (want !== null) {
        try {
          await fast.set(rec.id, want, wantPort);
        } catch (err) {
          io.c.fastpath_errors++;
          io.log.warn('fast path: nft failed, staying on the proxy path', { peer: rec.id, err });
          await fast.set(rec.id, null).catch(() => undefined);
          return;
        }
        if (!(await io.pushEndpoint(rec, want))) {
          await fast.set(rec.id, null).catch(() => undefined);
          return;
        }
        rec.fastEp = want;
        rec.fastPort = wantPort;
        io.c.fastpath_on++;
        io.log.debug('fast path on', { peer: rec.id, endpoint: want });
        rec.machine.setFastPath(true);
      } else {
        if (rec.proxyPort && !rec.removed) await io.pushEndpoint(rec, `127.0.0.1:${rec.proxyPort}`);
        await fast.set(rec.id, null).catch((err: Error) => io.log.warn('fast path: removal failed', { peer: rec.id, err }));
        rec.fastEp = null;
        rec.fastPort = null;
        io.c.fastpath_off++;
        io.log.debug('fast path off', { peer: rec.id });
        if (!rec.removed) rec.machine.setFastPath(false);
      }
    }
  } finally {
    rec.reconciling = false;
  }
}
