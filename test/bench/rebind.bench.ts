// Benchmark (issue 13): NAT rebinding while traffic flows. Two players in a party, a ping at
// 20 pps from one to the other's virtual IP; a few seconds in, both NAT routers forget every
// mapping (`conntrack -F` in each router, as a router reboot or a mapping timeout would). Printed:
// the longest time without a reply (the outage), and the path before and after. Pairs: two
// port-restricted players (direct) and two symmetric ones (relayed through coturn).
// Run as root after a build: node dist/test/bench/rebind.bench.js
// Env: BENCH_ROUNDS (flushes per pair, default 3); BENCH_PAIRS=direct|relayed (one pair only);
// BENCH_LOG_DIR (keep both helpers' debug logs and coturn's verbose log there, with the flush
// times, to read what happened). Prints figures; asserts nothing about speed.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { labAvailable, withLab, type LabSite, type NatKind } from '../lab/lab.js';
import { PartyLab, waitParty, type PartyJson } from '../lab/party-lab.js';
import { fmt, loadLine } from './bench-lib.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DIRECT = 2;
const RELAYED = 3;
const ALL_PAIRS: Array<{ label: string; kinds: [NatKind, NatKind]; want: number }> = [
  { label: 'port-restricted ↔ port-restricted (direct)', kinds: ['port-restricted', 'port-restricted'], want: DIRECT },
  { label: 'symmetric ↔ symmetric (relayed)', kinds: ['symmetric', 'symmetric'], want: RELAYED },
];
const ONLY = process.env.BENCH_PAIRS;
const PAIRS = ALL_PAIRS.filter((p) => !ONLY || (ONLY === 'direct' ? p.want === DIRECT : ONLY === 'relayed' ? p.want === RELAYED : true));
const LOG_DIR = process.env.BENCH_LOG_DIR;

const uptime = (): string => {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return loadLine();
  }
};

/** Reply timestamps (ms) from `ping -D` output. */
function replyTimes(stdout: string): number[] {
  return [...stdout.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)].map((m) => Number(m[1]) * 1000);
}

async function pair(label: string, kinds: [NatKind, NatKind], want: number): Promise<void> {
  await withLab({ sites: [{ name: 'a', kind: kinds[0] }, { name: 'b', kind: kinds[1] }] }, async (lab) => {
    const pl = new PartyLab(lab);
    try {
      await pl.startControl({ relay: true, relayConf: 'uncapped' });
      const [a, b] = [lab.site('a'), lab.site('b')] as [LabSite, LabSite];
      await Promise.all([pl.startHelper(a), pl.startHelper(b)]);
      const created = await pl.cli<PartyJson>(a, ['create', 'Rebind']);
      await pl.cli(b, ['join', created.party!.inviteLink]);
      const onPath = (p: PartyJson): boolean => p.peers.length === 1 && p.peers[0]!.path === want;
      const [pa] = await Promise.all([waitParty(pl, a, onPath, 60_000), waitParty(pl, b, onPath, 60_000)]);
      const bIp = (await pl.cli<PartyJson>(b, ['party'])).party!.members.find((m) => m.isSelf)!.virtualIp;
      const gaps: number[] = [];
      const flushes: string[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        await sleep(3000);
        const t0 = Date.now();
        const ping = lab.exec(a.host.ns, 'ping', ['-n', '-D', '-i', '0.05', '-W', '1', '-w', '20', bIp], { timeoutMs: 40_000 }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
        await sleep(5000);
        const flushAt = Date.now();
        flushes.push(new Date(flushAt).toISOString());
        await Promise.all([a, b].map((s) => lab.exec(s.router!.ns, 'conntrack', ['-F']).catch(() => undefined)));
        const { stdout } = await ping;
        const times = replyTimes(stdout).filter((t) => t >= t0);
        // The outage: the longest span after the flush without a reply (to the end of the ping if none came back).
        let worst = 0;
        let prev = flushAt;
        for (const t of [...times.filter((x) => x > flushAt), t0 + 20_000]) {
          worst = Math.max(worst, t - prev);
          prev = t;
        }
        gaps.push(worst);
      }
      const after = await pl.cli<PartyJson>(a, ['party']);
      const path = (p: PartyJson): string => (p.peers[0]?.path === DIRECT ? 'direct' : p.peers[0]?.path === RELAYED ? 'relayed' : `state ${p.peers[0]?.path}`);
      if (LOG_DIR) {
        const dir = join(LOG_DIR, want === DIRECT ? 'direct' : 'relayed');
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'flushes.txt'), flushes.join('\n') + '\n');
        for (const [name, h] of pl.helpers) writeFileSync(join(dir, `helper-${name}.log`), h.logs.join('\n') + '\n');
        if (pl.coturn) copyFileSync(join(pl.coturn.dir, 'turn.log'), join(dir, 'turn.log'));
      }
      console.log(`${label.padEnd(44)} outage after the flush (ms): ${gaps.map((g) => fmt(g)).join(', ')}   path before ${path(pa)}, after ${path(after)} (${after.peers[0]?.endpoint ?? '?'})`);
    } finally {
      await Promise.all([lab.site('a'), lab.site('b')].map((s) => pl.stopHelper(s))).catch(() => undefined);
      pl.cleanup();
    }
  });
}

async function main(): Promise<void> {
  const avail = await labAvailable();
  if (!avail.ok) {
    console.error(`rebind.bench needs the network lab (root, ip, nft, conntrack): ${avail.why}`);
    process.exit(1);
  }
  console.log(`LANrage NAT-rebinding benchmark, ${new Date().toISOString()}; ping 20 pps, conntrack -F on both routers 5 s in`);
  console.log(`start: ${uptime()}`);
  for (const p of PAIRS) await pair(p.label, p.kinds, p.want);
  console.log(`end: ${uptime()}`);
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exitCode = 1;
});
