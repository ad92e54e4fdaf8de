// Where a helper's CPU went within a wall-clock window of a `--cpu-prof` profile (e.g. the idle
// window joinstorm.bench logs: "idle window <ISO> - <ISO>"). Busy time is attributed two ways:
// by the outermost frame inside the helper's own code (which timer or handler started the work)
// and by self time per function.
//   node dist/test/bench/cpuprofile-window.js FILE.cpuprofile FROM_ISO TO_ISO [TOP]
// The profile's clock is tied to the wall clock by the file's modification time: Node writes the
// file as the process exits, right after the profile's endTime (a few ms off; the 1 s file-name
// time is ~1 s off, which put the helper's shutdown inside a window that ended as it stopped).

import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';

export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface WindowReport {
  /** Busy microseconds (samples other than "(idle)") within the window. */
  busyUs: number;
  /** Busy microseconds by the outermost frame from the code whose URL contains `ownCode`. */
  byEntry: Map<string, number>;
  /** Busy microseconds by the sampled (innermost) frame. */
  bySelf: Map<string, number>;
}

const frameKey = (n: CpuProfileNode): string => {
  const url = n.callFrame.url.replace(/^file:\/\//, '').replace(/^.*\/dist\//, '');
  return `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
};

/** Aggregates the samples taken between fromUs and toUs (the profile's own clock, microseconds). */
export function aggregateWindow(p: CpuProfile, fromUs: number, toUs: number, ownCode = '/dist/helper/'): WindowReport {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const entryOf = new Map<number, string>();
  const entry = (n: CpuProfileNode): string => {
    let key = entryOf.get(n.id);
    if (key !== undefined) return key;
    if (n.callFrame.functionName.startsWith('(')) {
      key = n.callFrame.functionName; // (garbage collector), (program)
    } else {
      let outer: CpuProfileNode | undefined;
      for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
        const m = byId.get(id)!;
        if (m.callFrame.url.includes(ownCode)) outer = m;
      }
      key = outer ? frameKey(outer) : `outside: ${frameKey(n)}`;
    }
    entryOf.set(n.id, key);
    return key;
  };
  const report: WindowReport = { busyUs: 0, byEntry: new Map(), bySelf: new Map() };
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    // A sample stands for the time until the next one.
    const dt = (i + 1 < p.samples.length ? t + (p.timeDeltas[i + 1] ?? 0) : p.endTime) - t;
    if (t < fromUs || t >= toUs) continue;
    const n = byId.get(p.samples[i]!);
    if (!n || n.callFrame.functionName === '(idle)') continue;
    report.busyUs += dt;
    const e = entry(n);
    report.byEntry.set(e, (report.byEntry.get(e) ?? 0) + dt);
    const s = frameKey(n);
    report.bySelf.set(s, (report.bySelf.get(s) ?? 0) + dt);
  }
  return report;
}

function main(argv: string[]): void {
  const [file, from, to, top = '30'] = argv;
  if (!file || !from || !to) {
    console.error('usage: cpuprofile-window FILE.cpuprofile FROM_ISO TO_ISO [TOP]');
    process.exit(2);
  }
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const wallEnd = statSync(file).mtimeMs;
  const fromUs = p.endTime - (wallEnd - Date.parse(from)) * 1000;
  const toUs = p.endTime - (wallEnd - Date.parse(to)) * 1000;
  const r = aggregateWindow(p, fromUs, toUs);
  const secs = (toUs - fromUs) / 1e6;
  const ms = (us: number): string => (us / 1000).toFixed(1).padStart(8);
  const list = (m: Map<string, number>): void => {
    for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) console.log(`${ms(v)} ms  ${k}`);
  };
  console.log(`${basename(file)}: ${secs.toFixed(1)} s window, busy ${ms(r.busyUs).trim()} ms = ${((r.busyUs / 1e6 / secs) * 100).toFixed(2)} % of a core`);
  console.log('--- by entry (outermost helper frame)');
  list(r.byEntry);
  console.log('--- self');
  list(r.bySelf);
}

if (process.argv[1] && basename(process.argv[1]) === 'cpuprofile-window.js') main(process.argv.slice(2));
