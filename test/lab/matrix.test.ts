// Issue 5: the pair matrix. One lab with a site of every NAT kind, one party with all of them
// (real helpers, control server and coturn), then every helper's peer table: for every pair,
// direct or relayed and the time from the later join to a direct path. Asserted: every pair pings
// through the tunnel; pairs that must be direct are (both endpoint-independent, one public, a
// symmetric NAT — sequential or random — with an endpoint-independent one); UDP-blocked pairs are
// relayed over TCP. Whatever else happens (symmetric ↔ symmetric, …) is printed, not asserted.
// PathKind numbers as in peer.proto.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LabSite, NatKind } from './lab.js';
import { type PartyJson, type PartyLab } from './party-lab.js';
import { firstAnswerMs, withParty } from './party-run.js';

const DIRECT = 2;
const RELAYED = 3;

const KINDS: NatKind[] = ['public', 'full-cone', 'address-restricted', 'port-restricted', 'symmetric', 'symmetric-sequential', 'cgnat', 'udp-blocked'];
const SHORT: Record<string, string> = {
  public: 'pub', 'full-cone': 'fcone', 'address-restricted': 'arestr', 'port-restricted': 'prestr',
  symmetric: 'sym', 'symmetric-sequential': 'symseq', cgnat: 'cgnat', 'udp-blocked': 'udpblk',
};
const EIM = new Set<NatKind>(['public', 'full-cone', 'address-restricted', 'port-restricted']);
const RANDOM = new Set<NatKind>(['symmetric', 'cgnat']);

/** What must hold for a pair: 'direct', 'tcp' (relayed, over TCP from the blocked side) or null (either). */
function mustBe(a: NatKind, b: NatKind): 'direct' | 'tcp' | null {
  if (a === 'udp-blocked' || b === 'udp-blocked') return 'tcp';
  if (EIM.has(a) && EIM.has(b)) return 'direct';
  if (a === 'public' || b === 'public') return 'direct';
  if ((a === 'symmetric-sequential' && EIM.has(b)) || (b === 'symmetric-sequential' && EIM.has(a))) return 'direct';
  // Random symmetric NATs (the carrier's too) with an endpoint-independent one: birthday probing.
  if ((RANDOM.has(a) && EIM.has(b)) || (RANDOM.has(b) && EIM.has(a))) return 'direct';
  return null;
}

const selfOf = (p: PartyJson): { deviceId: string; virtualIp: string } => p.party!.members.find((m) => m.isSelf)!;

test('pair matrix over every lab NAT kind: direct or relayed, time to direct, every pair pings', { timeout: 540_000 }, async (t) => {
  const sites = KINDS.map((kind) => ({ name: SHORT[kind]!, kind }));
  await withParty(t, sites, { relay: true }, async (pl, lab) => {
    const all = lab.sites;
    const host = all[0]!;
    const created = await pl.cli<PartyJson>(host, ['create', 'Matrix']);
    // When each join command started (the creator: before its create returned).
    const joinedAt = new Map<string, number>([[host.name, 0]]);
    // One after another: the join order is the matrix's clock, and the CLI is heavy on 2 cores.
    for (const s of all.slice(1)) {
      joinedAt.set(s.name, Date.now());
      await pl.cli(s, ['join', created.party!.inviteLink]);
    }
    const tables = new Map<string, PartyJson>();
    const ids = new Map<string, LabSite>();
    const readAll = async (): Promise<void> => {
      for (const s of all) {
        const p = await pl.cli<PartyJson>(s, ['party']);
        tables.set(s.name, p);
        ids.set(selfOf(p).deviceId, s);
      }
    };
    const pathOf = (from: LabSite, to: LabSite): { path: number; endpoint: string } | undefined => {
      const id = [...ids].find(([, s]) => s === to)?.[0];
      return tables.get(from.name)?.peers.find((x) => x.deviceId === id);
    };
    const pairs: Array<[LabSite, LabSite]> = [];
    for (let i = 0; i < all.length; i++) for (let j = i + 1; j < all.length; j++) pairs.push([all[i]!, all[j]!]);
    const settled = (): boolean =>
      pairs.every(([a, b]) => {
        const [pa, pb] = [pathOf(a, b), pathOf(b, a)];
        const want = mustBe(a.kind, b.kind);
        if (!pa || !pb) return false;
        if (want === 'direct') return pa.path === DIRECT && pb.path === DIRECT;
        return (pa.path === DIRECT || pa.path === RELAYED) && (pb.path === DIRECT || pb.path === RELAYED);
      });
    // Wait (bounded) for the must-be-direct pairs and for every pair to have some path; then a
    // few seconds more so that upgrades in flight land.
    // Long enough for all four birthday attempts (rarely needed: birthday.ts); settled pairs end it early.
    const until = Date.now() + 125_000;
    for (;;) {
      await readAll();
      if (settled() || Date.now() > until) break;
      await sleep(2000);
    }
    await sleep(3000);
    await readAll();

    // First 'direct path' log of each side for the other, from the later join of the two.
    const directAt = (from: LabSite, to: LabSite): number | null => {
      const id = [...ids].find(([, s]) => s === to)?.[0];
      for (const l of pl.helpers.get(from.name)!.logs) {
        if (!l.includes('"direct path"') || !id || !l.includes(id)) continue;
        const r = JSON.parse(l) as { t: string };
        return Date.parse(r.t);
      }
      return null;
    };
    const rows: string[] = [];
    const failures: string[] = [];
    // Every pair pings through the tunnel (each site pings the others one by one, sites in parallel).
    const pingMs = new Map<string, number | string>();
    await Promise.all(
      all.map(async (a) => {
        for (const b of all) {
          if (a === b) continue;
          const ip = selfOf(tables.get(b.name)!).virtualIp;
          pingMs.set(`${a.name}>${b.name}`, await firstAnswerMs(pl, a, ip, 8000).catch((e: Error) => e.message));
        }
      }),
    );
    for (const [a, b] of pairs) {
      const [pa, pb] = [pathOf(a, b), pathOf(b, a)];
      const name = (x?: { path: number }): string => (x?.path === DIRECT ? 'direct' : x?.path === RELAYED ? 'relayed' : `state ${x?.path ?? '?'}`);
      const verdict = name(pa) === name(pb) ? name(pa) : `${a.name}:${name(pa)} ${b.name}:${name(pb)}`;
      const t0 = Math.max(joinedAt.get(a.name)!, joinedAt.get(b.name)!);
      const da = directAt(a, b);
      const db = directAt(b, a);
      const ttd = verdict === 'direct' && da !== null && db !== null ? `${Math.max(0, Math.max(da, db) - t0)} ms` : '-';
      const via = [pa?.endpoint, pb?.endpoint].map((e) => (e ?? '?').split(':')[0] === 'tcp' ? 'tcp' : (e ?? '?').startsWith('udp:') ? 'udp-relay' : 'udp').join('/');
      const pings = [pingMs.get(`${a.name}>${b.name}`), pingMs.get(`${b.name}>${a.name}`)];
      rows.push(`${a.kind.padEnd(20)} ↔ ${b.kind.padEnd(20)} ${verdict.padEnd(8)} ${ttd.padStart(9)}  ${via.padEnd(19)} ping ${pings.map((x) => (typeof x === 'number' ? `${x} ms` : 'NONE')).join(' / ')}`);
      for (const p of pings) if (typeof p !== 'number') failures.push(`${a.kind} ↔ ${b.kind}: no ping through the tunnel (${p})`);
      const want = mustBe(a.kind, b.kind);
      if (want === 'direct' && verdict !== 'direct') failures.push(`${a.kind} ↔ ${b.kind}: must be direct, is ${verdict}`);
      if (want === 'tcp') {
        const blocked = a.kind === 'udp-blocked' ? pa : pb;
        if (verdict !== 'relayed' || !blocked?.endpoint.startsWith('tcp:')) failures.push(`${a.kind} ↔ ${b.kind}: must be relayed over TCP, is ${verdict} via ${blocked?.endpoint}`);
      }
    }
    t.diagnostic(`pair                                         path      to direct  via (a/b)           first tunnel ping a→b / b→a`);
    for (const r of rows) t.diagnostic(r);
    assert.deepEqual(failures, []);
  });
});
