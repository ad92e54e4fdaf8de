// Shared scaffolding for end-to-end party tests: a lab with a control server (optionally with a
// coturn relay) and a helper per site, always cleaned up; and tunnel pings measured from outside.

import { labAvailable, withLab, type Lab, type LabSite, type NatKind } from './lab.js';
import { PartyLab } from './party-lab.js';
import { requireOrSkip } from '../lib/repo.js';

export interface PartyRunOptions {
  /** Run coturn next to the control server, which then hands out relays. */
  relay?: boolean;
  turnTtlSeconds?: number;
  /** Start a helper in every site (default true); false: only the control server. */
  helpers?: boolean;
}

/** A lab with these sites, a control server and (unless told otherwise) a helper per site; always cleaned up. */
export async function withParty(
  t: { skip(msg: string): void },
  sites: Array<{ name: string; kind: NatKind }>,
  opts: PartyRunOptions,
  body: (pl: PartyLab, lab: Lab) => Promise<void>,
): Promise<void> {
  const avail = await labAvailable();
  if (!requireOrSkip(avail.ok, `network lab (${avail.why ?? ''})`, t)) return;
  await withLab({ sites }, async (lab) => {
    const pl = new PartyLab(lab);
    try {
      await pl.startControl(opts.relay ? { relay: true, ...(opts.turnTtlSeconds !== undefined ? { turnTtlSeconds: opts.turnTtlSeconds } : {}) } : undefined);
      if (opts.helpers !== false) await Promise.all(lab.sites.map((s) => pl.startHelper(s)));
      await body(pl, lab);
    } finally {
      pl.cleanup();
    }
  });
}

/**
 * Pings every 50 ms until the first answer (iputils: with a deadline, -c counts replies); returns
 * the time from the call to that answer, by the reply's own timestamp (-D). Throws on no answer.
 */
export async function firstAnswerMs(pl: PartyLab, from: LabSite, ip: string, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  const deadline = String(Math.max(1, Math.ceil(timeoutMs / 1000)));
  const { stdout } = await pl.lab
    .exec(from.host.ns, 'ping', ['-n', '-D', '-c', '1', '-w', deadline, '-i', '0.05', ip], { timeoutMs: timeoutMs + 10_000 })
    .catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
  const m = /^\[(\d+\.\d+)\] \d+ bytes from/m.exec(stdout);
  if (!m) throw new Error(`${ip} did not answer through the tunnel within ${timeoutMs} ms`);
  return Math.max(0, Math.round(Number(m[1]) * 1000 - t0));
}
