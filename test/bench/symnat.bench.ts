// Benchmark (issue 5 part 3): how often, how fast and at what packet cost a player behind a
// symmetric NAT gets a direct path to one behind a port-restricted NAT.
//   symmetric-sequential ↔ port-restricted (ports predicted, portpredict.ts)
//   symmetric (random ports) ↔ port-restricted (birthday probing, birthday.ts)
//   cgnat (random carrier NAT behind a port-restricted home router) ↔ port-restricted (birthday;
//   the first attempt's TTL-2 primes die before the carrier, the second primes one hop further)
// One lab per pairing (control server, coturn); each trial starts both helpers with fresh state
// (new keys, new public ports), creates a party on the port-restricted side, joins from the
// symmetric side, and waits for a direct path on both sides, or gives up: sequential after the
// path machine's first 10 s window, random after both birthday attempts (relayed from then on).
// Figures per trial: time from the join command to direct on both sides, and the datagrams both
// helpers spent on direct path finding (pings, keepalives and priming copies: the magicsock
// counter path_datagrams, logged with 'direct path' / 'no direct path yet'), of which to
// predicted ports. Run as root after a build: node dist/test/bench/symnat.bench.js
// Env: BENCH_TRIALS (default 20), BENCH_PAIRS (comma list of the symmetric kinds, default all three;
// empty: none), BENCH_IPERF=1: also TCP throughput (iperf3, median of 2 × 6 s, interleaved) of a
// birthday path (symmetric ↔ port-restricted, on the pinned socket's fast path) against a plain
// direct path (port-restricted ↔ port-restricted) in the same lab.
// Prints figures; asserts nothing.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labAvailable, withLab, type Lab, type LabSite, type NatKind } from '../lab/lab.js';
import { PartyLab, type PartyJson } from '../lab/party-lab.js';
import { fmt, iperfOnce, percentile } from './bench-lib.js';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 20);
const PAIRS = (process.env.BENCH_PAIRS ?? 'symmetric-sequential,symmetric,cgnat').split(',').filter((k) => k !== '') as NatKind[];
/** Past the path machine's first 10 s window, with room for a slow join. */
const GIVE_UP_MS = 16_000;
/** Random ports: past all four birthday attempts (birthday.ts: ~107 s to the fourth start) and a slow join. */
const GIVE_UP_RANDOM_MS = 125_000;

interface Sent {
  datagrams: number;
  predicted: number;
}
interface Trial {
  direct: boolean;
  ms: number | null;
  datagrams: number;
  predicted: number;
}

type LogRec = { msg?: string; t?: string; sent?: Sent; probes?: number };

/** The first record with this msg in a helper's log, parsed. */
function firstLog(pl: PartyLab, site: string, msg: string): LogRec | null {
  for (const l of pl.helpers.get(site)?.logs ?? []) {
    if (!l.includes(`"${msg}"`)) continue;
    try {
      const r = JSON.parse(l) as LogRec;
      if (r.msg === msg) return r;
    } catch {
      // not a log record
    }
  }
  return null;
}

/** The last record in a helper's log that counts path-finding datagrams (what it spent in all). */
function lastSent(pl: PartyLab, site: string): Sent | null {
  let out: Sent | null = null;
  for (const l of pl.helpers.get(site)?.logs ?? []) {
    if (!l.includes('"sent"')) continue;
    try {
      out = (JSON.parse(l) as LogRec).sent ?? out;
    } catch {
      // not a log record
    }
  }
  return out;
}

async function trial(pl: PartyLab, sym: LabSite, pr: LabSite): Promise<Trial> {
  const dirs = [sym, pr].map((s) => mkdtempSync(join(tmpdir(), `lanrage-bench-${s.name}-`)));
  try {
    await Promise.all([pl.startHelper(sym, { stateDir: dirs[0]! }), pl.startHelper(pr, { stateDir: dirs[1]! })]);
    const created = await pl.cli<PartyJson>(pr, ['create', 'Bench']);
    const t0 = Date.now();
    await pl.cli(sym, ['join', created.party!.inviteLink]);
    const random = sym.kind !== 'symmetric-sequential';
    const until = t0 + (random ? GIVE_UP_RANDOM_MS : GIVE_UP_MS);
    for (;;) {
      const d = [firstLog(pl, sym.name, 'direct path'), firstLog(pl, pr.name, 'direct path')];
      const u = [firstLog(pl, sym.name, 'no direct path yet'), firstLog(pl, pr.name, 'no direct path yet')];
      const done = d.every((x) => x !== null);
      const gaveUp = !random && u.every((x, i) => x !== null || d[i] !== null) && !done;
      if (done || gaveUp || Date.now() > until) {
        const recs = done ? d : [lastSent(pl, sym.name), lastSent(pl, pr.name)].map((sent) => ({ sent: sent ?? undefined }));
        const at = done ? Math.max(...d.map((x) => Date.parse(x!.t ?? ''))) : null;
        return {
          direct: done,
          ms: at === null ? null : Math.max(0, at - t0),
          datagrams: recs.reduce((s, r) => s + (r?.sent?.datagrams ?? 0), 0),
          predicted: recs.reduce((s, r) => s + (r?.sent?.predicted ?? 0), 0),
        };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    if (process.env.BENCH_DEBUG) for (const s of [sym, pr]) if (s.router) { const { stdout } = await pl.lab.exec(s.router.ns, 'conntrack', ['-L', '-p', 'udp']).catch((e: Error) => ({ stdout: String(e) })); const ls = stdout.split('\n'); console.log(`    ${s.name} router: ${ls.length} udp entries; sample:\n      ${ls.filter((l) => l.includes(s === sym ? pr.publicIp : sym.publicIp)).slice(0, 6).join('\n      ')}`); }
    // A failed trial shows what path finding did (BENCH_DEBUG: every trial).
    const failed = firstLog(pl, sym.name, 'direct path') === null || firstLog(pl, pr.name, 'direct path') === null;
    if (failed || process.env.BENCH_DEBUG) for (const s of [sym, pr]) for (const l of pl.helpers.get(s.name)?.logs ?? []) if (/birthday|direct path|nat port delta|path lost/.test(l)) console.log(`    ${s.name}: ${l.slice(0, 300)}`);
    await Promise.all([pl.stopHelper(sym), pl.stopHelper(pr)]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

async function pairing(kind: NatKind): Promise<void> {
  await withLab({ sites: [{ name: 'sym', kind }, { name: 'pr', kind: 'port-restricted' }] }, async (lab: Lab) => {
    const pl = new PartyLab(lab);
    try {
      await pl.startControl({ relay: true });
      const trials: Trial[] = [];
      for (let i = 0; i < TRIALS; i++) {
        const r = await trial(pl, lab.site('sym'), lab.site('pr'));
        trials.push(r);
        console.log(`  ${kind} trial ${i + 1}: ${r.direct ? `direct after ${r.ms} ms` : 'relayed (gave up)'}; ${r.datagrams} path-finding datagrams (${r.predicted} to predicted ports)`);
      }
      const ok = trials.filter((x) => x.direct);
      const ms = ok.map((x) => x.ms!).sort((a, b) => a - b);
      const pk = (xs: Trial[]) => xs.map((x) => x.datagrams).sort((a, b) => a - b);
      console.log(`${kind} ↔ port-restricted: direct in ${ok.length}/${trials.length} trials` +
        (ms.length ? `; time to direct p50 ${fmt(percentile(ms, 50))} ms, max ${fmt(ms.at(-1)!)} ms` : '') +
        (ok.length ? `; datagrams per successful traversal p50 ${fmt(percentile(pk(ok), 50))} (max ${fmt(pk(ok).at(-1)!)})` : '') +
        (ok.length < trials.length ? `; per failed traversal p50 ${fmt(percentile(pk(trials.filter((x) => !x.direct)), 50))}` : ''));
    } finally {
      pl.cleanup();
    }
  });
}

const avail = await labAvailable();
if (!avail.ok) {
  console.error(`network lab unavailable: ${avail.why ?? ''}`);
  process.exit(1);
}
for (const k of PAIRS) await pairing(k);
if (process.env.BENCH_IPERF === '1') await throughput();

/** A birthday path's TCP throughput against a plain direct path's, interleaved in one lab. */
async function throughput(): Promise<void> {
  const sites = [{ name: 'sym', kind: 'symmetric' as const }, { name: 'pr', kind: 'port-restricted' as const }, { name: 'pr2', kind: 'port-restricted' as const }];
  await withLab({ sites }, async (lab: Lab) => {
    const pl = new PartyLab(lab);
    try {
      await pl.startControl({ relay: true });
      const [sym, pr, pr2] = ['sym', 'pr', 'pr2'].map((n) => lab.site(n)) as [LabSite, LabSite, LabSite];
      await Promise.all([sym, pr, pr2].map((s) => pl.startHelper(s)));
      const created = await pl.cli<PartyJson>(pr, ['create', 'Throughput']);
      await Promise.all([sym, pr2].map((s) => pl.cli(s, ['join', created.party!.inviteLink])));
      const ipPr = created.party!.members.find((m) => m.isSelf)!.virtualIp;
      // Both paths direct and on the fast path, seen from the sending side.
      const ready = async (s: LabSite): Promise<void> => {
        for (let i = 0; i < 300; i++) {
          const p = await pl.cli<PartyJson>(s, ['party']);
          const peer = p.peers.find((x) => x.virtualIp === ipPr);
          if (peer?.path === 2 && peer.fastPath) return;
          await new Promise((r) => setTimeout(r, 200));
        }
        throw new Error(`${s.name}: no direct fast path to pr`);
      };
      await Promise.all([ready(sym), ready(pr2)]);
      const plain: number[] = [];
      const birthday: number[] = [];
      for (let round = 0; round < 2; round++) {
        plain.push((await iperfOnce(lab, pr2.host.ns, pr.host.ns, ipPr, 6)).mbits);
        birthday.push((await iperfOnce(lab, sym.host.ns, pr.host.ns, ipPr, 6)).mbits);
      }
      const med = (xs: number[]): number => percentile(xs, 50);
      console.log(`TCP to a port-restricted player (iperf3 6 s, median of 2): plain direct ${fmt(med(plain))} Mbit/s, birthday path (pinned socket, fast path) ${fmt(med(birthday))} Mbit/s = ${fmt(med(birthday) / med(plain), 2)}×`);
    } finally {
      pl.cleanup();
    }
  });
}
