// Benchmark (issue 4): relayed against direct paths, in one lab run with one coturn:
//   1. RTT p50/p99 (ping at ~60 pps, rounds interleaved) and TCP throughput (iperf3) over a
//      direct pair (two port-restricted sites) and a relayed pair (two symmetric sites);
//   2. time from `lanrage join` to the first answered ping, for each NAT pairing
//      (port-restricted ↔ port-restricted, symmetric ↔ symmetric, symmetric ↔ port-restricted,
//      UDP-blocked ↔ port-restricted), JOINS_OTHER joins each;
//   3. time from join to a direct path on both sides for the port-restricted pair (JOINS_DIRECT joins).
// Run as root after a build: node dist/test/bench/relay.bench.js
// Env: BENCH_SECONDS (iperf3 per round, default 6), BENCH_ROUNDS (2), BENCH_PINGS (600 per path),
// BENCH_JOINS_DIRECT (20), BENCH_JOINS_OTHER (5). Prints figures; asserts nothing about speed.
import { setTimeout as sleep } from 'node:timers/promises';
import { withLab, type Lab, type LabSite } from '../lab/lab.js';
import { PartyLab, waitParty, type PartyJson } from '../lab/party-lab.js';
import { firstAnswerMs } from '../lab/party-run.js';
import { fmt, iperfOnce, loadLine, parsePing, percentile } from './bench-lib.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 2));
const PINGS = Number(process.env.BENCH_PINGS ?? 600);
const JOINS_DIRECT = Number(process.env.BENCH_JOINS_DIRECT ?? 20);
const JOINS_OTHER = Number(process.env.BENCH_JOINS_OTHER ?? 5);
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

const stats = (xs: number[]): string => `p50 ${fmt(percentile(xs, 50))} / p95 ${fmt(percentile(xs, 95))} / max ${fmt(Math.max(...xs))} ms (n=${xs.length})`;

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
    } finally {
      pl.cleanup();
    }
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
