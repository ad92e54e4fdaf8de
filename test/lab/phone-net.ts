import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteNamespaces, pidsInNamespaces, run, terminate } from './netns.js';
import { removeRecord, writeRecord } from './registry.js';

// "A phone on the LAN": one network namespace joined to this (the desktop's) namespace by a veth
// pair, so the helper's remote listener binds a real interface address and the phone's traffic
// arrives from another address through a real link. Registered like every lab, so that the
// stale-lab cleanup removes it if this process dies.

export interface PhoneNet {
  ns: string;
  /** The desktop side's address (the helper listens here) and the phone's. */
  desktopIp: string;
  phoneIp: string;
  /** Runs `cmd` inside the phone's namespace: a wrapper script for tools that take a path. */
  wrapper(cmd: string): string;
  destroy(): Promise<void>;
}

/** `desktopNs`: the namespace of the helper's machine (a lab host); this one by default. */
export async function createPhoneNet(desktopNs?: string): Promise<PhoneNet> {
  const d = desktopNs === undefined ? [] : ['-n', desktopNs];
  const id = [...randomBytes(6)].map((b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('');
  const ns = `lr${id}-phone`;
  // 198.18.0.0/15 is for benchmarking: nothing real uses it; one /30 per run.
  const r = randomBytes(2);
  const base = `198.${18 + (r[0]! & 1)}.${r[1]}`;
  const q = (randomBytes(1)[0]! & 63) * 4;
  const desktopIp = `${base}.${q + 1}`;
  const phoneIp = `${base}.${q + 2}`;
  const [hostIf, nsIf] = [`lr${id}d`, `lr${id}p`];
  writeRecord(id, [ns]);
  const scripts = mkdtempSync(join(tmpdir(), 'lanrage-phone-'));
  const destroy = async (): Promise<void> => {
    await terminate(pidsInNamespaces([ns]).map((pid) => ({ pid, group: false })));
    await deleteNamespaces([ns]);
    removeRecord(id);
    rmSync(scripts, { recursive: true, force: true });
  };
  try {
    await run('ip', ['netns', 'add', ns]);
    await run('ip', [...d, 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf, 'netns', ns]);
    await run('ip', [...d, 'addr', 'add', `${desktopIp}/30`, 'dev', hostIf]);
    await run('ip', [...d, 'link', 'set', hostIf, 'up']);
    await run('ip', ['-n', ns, 'addr', 'add', `${phoneIp}/30`, 'dev', nsIf]);
    await run('ip', ['-n', ns, 'link', 'set', nsIf, 'up']);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  } catch (err) {
    await destroy();
    throw err;
  }
  let n = 0;
  return {
    ns,
    desktopIp,
    phoneIp,
    wrapper(cmd) {
      // Fixed text: the namespace name and the command path are ours, nothing from outside.
      const f = join(scripts, `in-ns-${n++}`);
      writeFileSync(f, `#!/bin/sh\nexec ip netns exec ${ns} ${cmd} "$@"\n`);
      chmodSync(f, 0o755);
      return f;
    },
    destroy,
  };
}
