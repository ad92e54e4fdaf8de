// Benchmark (issue 4): relayed against direct paths, in one lab run with one coturn:
//   1. RTT p50/p99 (ping at ~60 pps, rounds interleaved) and TCP throughput (iperf3) over a
//      direct pair (two port-restricted sites) and a relayed pair (two symmetric sites);
//   2. time from `lanrage join` to the first answered ping, for each NAT pairing
//      (port-restricted ↔ port-restricted, symmetric ↔ symmetric, symmetric ↔ port-restricted,
//      UDP-blocked ↔ port-restricted), JOINS_OTHER joins each;
//   3. time from join to a direct path on both sides for the port-restricted pair (JOINS_DIRECT joins);
//   4. the first minute after a join of the symmetric pair (always relayed): ping at ~60 pps from
//      the moment `lanrage join` returns, p50/p99 and the stalls (replies later than 50 ms, and
//      the helpers' log records around each, in BENCH_STALL_LOG).
// Run as root after a build: node dist/test/bench/relay.bench.js
// Env: BENCH_SECONDS (iperf3 per round, default 6), BENCH_ROUNDS (2), BENCH_PINGS (600 per path),
// BENCH_JOINS_DIRECT (20), BENCH_JOINS_OTHER (5), BENCH_FIRST_MINUTES (joins for 4., 2),
// BENCH_FIRST_SECONDS (60), BENCH_STALL_LOG (file for the log records around stalls),
// BENCH_ONLY_FIRST_MINUTE=1 (4. only).
// Prints figures; asserts nothing about speed.
import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { withLab, type Lab, type LabSite } from '../lab/lab.js';
import { PartyLab, waitParty, type PartyJson } from '../lab/party-lab.js';
import { firstAnswerMs } from '../lab/party-run.js';
import { fmt, iperfOnce, loadLine, parsePing, parseStamped, percentile, stallsOf, type Stall } from './bench-lib.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 2));
const PINGS = Number(process.env.BENCH_PINGS ?? 600);
const JOINS_DIRECT = Number(process.env.BENCH_JOINS_DIRECT ?? 20);
const JOINS_OTHER = Number(process.env.BENCH_JOINS_OTHER ?? 5);
const FIRST_MINUTES = Number(process.env.BENCH_FIRST_MINUTES ?? 2);
const FIRST_SECONDS = Number(process.env.BENCH_FIRST_SECONDS ?? 60);
const STALL_MS = 50;
const DIRECT = 2;
const RELAYED = 3;

const log = (s: string): void => void process.stderr.write(`[relay.bench] ${s}\n`);
const selfIp = (p: PartyJson): string => p.party!.members.find((m) => m.isSelf)!.virtualIp;

interface Figures {
  rtts: number[];
  mbits: number[];
}

async function exec(lab: Lab, ns: string, cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return (await lab.exec(ns, cmd, args, { timeoutMs })).stdout;
}

async function measure(lab: Lab, from: LabSite, to: LabSite, ip: string, f: Figures, pings: number): Promise<void> {
  f.mbits.push((await iperfOnce(lab, from.host.ns, to.host.ns, ip, SECONDS)).mbits);
  await sleep(300);
  const out = await exec(lab, from.host.ns, 'ping', ['-n', '-c', String(pings), '-i', '0.0167', '-W', '1', ip], pings * 20 + 30_000);
  f.rtts.push(...parsePing(out).rtts);
}

/** Host creates a party; the joiner joins and leaves `n` times. Returns join → first ping (and → direct). */
async function joins(pl: PartyLab, host: LabSite, joiner: LabSite, n: number, waitDirect: boolean): Promise<{ first: number[]; direct: number[] }> {
  const created = await pl.cli<PartyJson>(host, ['create', `${host.name}-${joiner.name}`]);
  const ip = selfIp(created);
  const first: number[] = [];
  const direct: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = Date.now();
    await pl.cli(joiner, ['join', created.party!.inviteLink]);
    const joined = Date.now() - t0;
    first.push(joined + (await firstAnswerMs(pl, joiner, ip, 20_000)));
    if (waitDirect) {
      await waitParty(pl, joiner, (p) => p.peers[0]?.path === DIRECT, 30_000);
      await waitParty(pl, host, (p) => p.peers.some((x) => x.path === DIRECT), 30_000);
      direct.push(Date.now() - t0);
    }
    await pl.cliText(joiner, ['leave']);
    await waitParty(pl, host, (p) => p.peers.length === 0, 20_000);
    log(`${host.name}↔${joiner.name} join ${i + 1}/${n}: first ping ${first.at(-1)} ms${waitDirect ? `, direct ${direct.at(-1)} ms` : ''}`);
  }
  await pl.cliText(host, ['leave']);
  return { first, direct };
}

interface FirstMinute {
  rtts: number[];
  lost: number;
  stalls: Array<Stall & { join: number }>;
  /** Log records around the stalls, not yet written to BENCH_STALL_LOG. */
  logs: string[];
}

/**
 * The joiner joins `n` times; each time it pings the host at ~60 pps for FIRST_SECONDS from the
 * moment `join` returns. Stalls are replies later than STALL_MS, timed from the join.
 */
async function firstMinutes(pl: PartyLab, host: LabSite, joiner: LabSite, n: number): Promise<FirstMinute> {
  const out: FirstMinute = { rtts: [], lost: 0, stalls: [], logs: [] };
  const created = await pl.cli<PartyJson>(host, ['create', `${host.name}-${joiner.name}-1min`]);
  const ip = selfIp(created);
  const count = Math.round(FIRST_SECONDS * 60);
  for (let i = 0; i < n; i++) {
    const logFrom = new Map([host, joiner].map((s) => [s.name, pl.helpers.get(s.name)!.logs.length]));
    await pl.cli(joiner, ['join', created.party!.inviteLink]);
    const t0 = Date.now();
    const r = await pl.lab
      .exec(joiner.host.ns, 'ping', ['-n', '-D', '-c', String(count), '-i', '0.0167', '-W', '2', ip], { timeoutMs: count * 20 + 60_000 })
      .catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
    const replies = parseStamped(r.stdout);
    const ping = parsePing(r.stdout);
    // Before the first answer there is no path yet: that is join → first packet, measured above.
    const firstSeq = replies[0]?.seq ?? count;
    out.lost += Math.max(0, ping.transmitted - firstSeq + 1 - replies.length);
    out.rtts.push(...replies.map((x) => x.rtt));
    for (const st of stallsOf(replies, STALL_MS)) {
      out.stalls.push({ ...st, join: i + 1 });
      for (const s of [host, joiner]) {
        const from = logFrom.get(s.name)!;
        for (const line of pl.helpers.get(s.name)!.logs.slice(from)) {
          const t = Date.parse((/"t":"([^"]+)"/.exec(line) ?? [])[1] ?? '');
          if (t >= st.sentAt - 1500 && t <= st.at + 500) out.logs.push(`join ${i + 1} stall @${Math.round(st.sentAt - t0)} ms ${s.name}: ${line}`);
        }
      }
    }
    if (process.env.BENCH_STALL_LOG) appendFileSync(process.env.BENCH_STALL_LOG, out.logs.splice(0).join('\n') + '\n');
    log(`${host.name}↔${joiner.name} first minute ${i + 1}/${n}: first answer seq ${firstSeq} after ${fmt(replies[0]?.rtt ?? NaN, 1)} ms, max ${fmt(Math.max(...replies.map((x) => x.rtt)), 1)} ms, stalls ${stallsOf(replies, STALL_MS).map((x) => `${x.count}×≤${fmt(x.maxRtt)} ms @${Math.round(x.sentAt - t0)} ms`).join(', ') || 'none'}`);
    await pl.cliText(joiner, ['leave']);
    await waitParty(pl, host, (p) => p.peers.length === 0, 20_000);
  }
  await pl.cliText(host, ['leave']);
  return out;
}

function printFirstMinute(fm: FirstMinute): void {
  console.log(`first ${FIRST_SECONDS} s after a symmetric ↔ symmetric join (relayed, ${FIRST_MINUTES} joins, from the first answer; ${loadLine()}):`);
  console.log(`  p50 ${fmt(percentile(fm.rtts, 50), 3)} ms  p99 ${fmt(percentile(fm.rtts, 99), 3)} ms  max ${fmt(Math.max(...fm.rtts), 1)} ms  lost ${fm.lost}`);
  console.log(`  stalls over ${STALL_MS} ms: ${fm.stalls.length === 0 ? 'none' : fm.stalls.map((x) => `join ${x.join}: ${x.count} replies up to ${fmt(x.maxRtt)} ms`).join('; ')}`);
}

const stats = (xs: number[]): string => xs.length === 0 ? 'not measured' : `p50 ${fmt(percentile(xs, 50))} / p95 ${fmt(percentile(xs, 95))} / max ${fmt(Math.max(...xs))} ms (n=${xs.length})`;

async function main(): Promise<void> {
  const sites = [
    { name: 'a', kind: 'port-restricted' as const },
    { name: 'b', kind: 'port-restricted' as const },
    { name: 'c', kind: 'symmetric' as const },
    { name: 'd', kind: 'symmetric' as const },
    { name: 'e', kind: 'udp-blocked' as const },
  ];
  await withLab({ sites }, async (lab) => {
    const pl = new PartyLab(lab);
    try {
      await pl.startControl({ relay: true, relayConf: 'uncapped' });
      await Promise.all(lab.sites.map((s) => pl.startHelper(s)));
      const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map((n) => lab.site(n)) as [LabSite, LabSite, LabSite, LabSite, LabSite];
      log(`machine: ${loadLine()}`);
      if (process.env.BENCH_ONLY_FIRST_MINUTE) {
        printFirstMinute(await firstMinutes(pl, c, d, FIRST_MINUTES));
        return;
      }

      // 1. A direct pair and a relayed pair, both up at once, measured in interleaved rounds.
      const p1 = await pl.cli<PartyJson>(a, ['create', 'direct']);
      await pl.cli(b, ['join', p1.party!.inviteLink]);
      const p2 = await pl.cli<PartyJson>(c, ['create', 'relayed']);
      await pl.cli(d, ['join', p2.party!.inviteLink]);
      await waitParty(pl, a, (p) => p.peers[0]?.path === DIRECT, 30_000);
      await waitParty(pl, c, (p) => p.peers[0]?.path === RELAYED, 30_000);
      const ipA = selfIp(p1);
      const ipC = selfIp(p2);
      const direct: Figures = { rtts: [], mbits: [] };
      const relayed: Figures = { rtts: [], mbits: [] };
      for (let r = 0; r < ROUNDS; r++) {
        log(`round ${r + 1}/${ROUNDS}: direct pair`);
        await measure(lab, b, a, ipA, direct, Math.ceil(PINGS / ROUNDS));
        log(`round ${r + 1}/${ROUNDS}: relayed pair`);
        await measure(lab, d, c, ipC, relayed, Math.ceil(PINGS / ROUNDS));
      }
      await pl.cliText(b, ['leave']);
      await pl.cliText(a, ['leave']);
      await pl.cliText(d, ['leave']);
      await pl.cliText(c, ['leave']);

      // 4. The first minute after a relayed join (before 2./3.: the machine is freshest).
      const fm = await firstMinutes(pl, c, d, FIRST_MINUTES);

      // 2./3. Join → first packet per pairing; join → direct for the port-restricted pair.
      const pr = await joins(pl, a, b, JOINS_DIRECT, true);
      const sym = await joins(pl, c, d, JOINS_OTHER, false);
      const symPr = await joins(pl, a, c, JOINS_OTHER, false);
      const udpPr = await joins(pl, a, e, JOINS_OTHER, false);

      const med = (xs: number[]): number => percentile(xs, 50);
      console.log(`\nrelay.bench — one lab run, coturn in the server namespace; ${loadLine()}`);
      console.log(`RTT (ping ~60 pps, ${PINGS} per path, ${ROUNDS} interleaved rounds):`);
      console.log(`  direct  p50 ${fmt(percentile(direct.rtts, 50), 3)} ms  p99 ${fmt(percentile(direct.rtts, 99), 3)} ms`);
      console.log(`  relayed p50 ${fmt(percentile(relayed.rtts, 50), 3)} ms  p99 ${fmt(percentile(relayed.rtts, 99), 3)} ms`);
      console.log(`  relayed − direct: p50 +${fmt(percentile(relayed.rtts, 50) - percentile(direct.rtts, 50), 3)} ms, p99 +${fmt(percentile(relayed.rtts, 99) - percentile(direct.rtts, 99), 3)} ms`);
      console.log(`TCP (iperf3 ${SECONDS} s, median of ${ROUNDS}): direct ${fmt(med(direct.mbits))} Mbit/s, relayed ${fmt(med(relayed.mbits))} Mbit/s = ${fmt(med(relayed.mbits) / med(direct.mbits), 2)}× direct`);
      console.log('join → first answered ping:');
      console.log(`  port-restricted ↔ port-restricted: ${stats(pr.first)}`);
      console.log(`  symmetric ↔ symmetric (relayed):   ${stats(sym.first)}`);
      console.log(`  symmetric ↔ port-restricted:       ${stats(symPr.first)}`);
      console.log(`  UDP-blocked ↔ port-restricted:     ${stats(udpPr.first)}`);
      console.log(`join → direct on both sides (port-restricted pair): ${stats(pr.direct)}`);
      printFirstMinute(fm);

    } finally {
      pl.cleanup();
    }
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
