// Relaying through coturn across the lab's NATs, with credentials from the control server: what a
// player on a network that blocks UDP would check. coturn and `lanrage control` run in the lab's
// server namespace (PartyLab.startControl({ relay: true })); each player is a turn-player driver
// (real ControlClient + real TurnClient) inside its site.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { verifyTurnCredentials } from '../../helper/control/turn-credentials.js';
import type { RelayOffer } from '../../helper/controlclient/client.js';
import { findTurnserver } from '../lib/coturn.js';
import { requireOrSkip } from '../lib/repo.js';
import { TURN_PLAYER_SCRIPT, type TurnPlayerConfig } from './drivers/turn-player.js';
import { labAvailable, withLab, type Lab, type LabSite } from './lab.js';
import { PartyLab, RELAY_PORT } from './party-lab.js';
import { ROUTER_TABLE } from './topology.js';
import { assertMintedExpiry } from '../lib/turn-expiry.js';

type Rec = Record<string, unknown>;
const TTL_S = 120;

class Player {
  readonly records: Rec[] = [];
  private readonly stderr: string[] = [];
  private readonly waiters = new Set<{ pred: (r: Rec) => boolean; resolve: (r: Rec) => void }>();
  private seq = 0;
  private exited: string | null = null;

  constructor(readonly name: string, readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      let r: Rec;
      try {
        r = JSON.parse(l) as Rec;
      } catch {
        return;
      }
      this.records.push(r);
      for (const w of [...this.waiters]) if (w.pred(r)) (this.waiters.delete(w), w.resolve(r));
    });
    createInterface({ input: proc.stderr! }).on('line', (l) => {
      this.stderr.push(l);
      if (this.stderr.length > 200) this.stderr.shift();
      if (process.env.LANRAGE_LAB_VERBOSE) process.stderr.write(`  ${name}| ${l}\n`);
    });
    proc.once('exit', (code, sig) => (this.exited = `${name} exited (${code ?? sig})`));
  }

  static spawn(lab: Lab, site: LabSite, cfg: TurnPlayerConfig): Player {
    return new Player(cfg.name, lab.spawn(site.host.ns, process.execPath, [TURN_PLAYER_SCRIPT, JSON.stringify(cfg)], { env: { ...process.env, LANRAGE_LOG: 'debug' } }));
  }

  wait(pred: (r: Rec) => boolean, what: string, timeoutMs = 60_000): Promise<Rec> {
    const seen = this.records.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      if (this.exited) return reject(new Error(`${this.name}: ${what}: ${this.exited}; ${this.tail()}`));
      const w = { pred, resolve: (r: Rec) => (clearTimeout(t), resolve(r)) };
      const t = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`${this.name}: ${what}: nothing within ${timeoutMs} ms; ${this.tail()}`));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  tail(): string {
    return `stderr: ${this.stderr.slice(-15).join('\n')}`;
  }

  /** Sends a request; resolves with its answer record (ok or not). */
  async call(op: string, args: Rec = {}, timeoutMs = 30_000): Promise<Rec> {
    const id = ++this.seq;
    const answer = this.wait((r) => r.id === id, `answer to ${op}`, timeoutMs);
    this.proc.stdin?.write(JSON.stringify({ id, op, ...args }) + '\n');
    return answer;
  }

  async ok<T = unknown>(op: string, args: Rec = {}, timeoutMs?: number): Promise<T> {
    const r = await this.call(op, args, timeoutMs);
    if (r.ok !== true) throw new Error(`${this.name} ${op}: ${String(r.error)}; ${this.tail()}`);
    return r.result as T;
  }

  send(to: string, data: string): void {
    this.proc.stdin?.write(JSON.stringify({ op: 'send', to, data }) + '\n');
  }

  close(): void {
    this.proc.stdin?.end();
  }
}

/** Sends from a to b (b's relayed address) until b reports it from a's relayed address. */
async function exchange(a: Player, aRelayed: string, b: Player, bRelayed: string, tag: string, timeoutMs = 30_000): Promise<void> {
  const got = b.wait((r) => r.ev === 'data' && r.from === aRelayed && r.data === tag, `${a.name} → ${b.name} (${tag})`, timeoutMs);
  const timer = setInterval(() => a.send(bRelayed, tag), 200);
  a.send(bRelayed, tag);
  try {
    await got;
  } finally {
    clearInterval(timer);
  }
}

test('relays from the control server: UDP from a NATed site; a UDP-blocked site relays over TCP only; both exchange data relayed to relayed, and recover from a relay restart', async (t) => {
  if (!requireOrSkip(findTurnserver() !== null, 'coturn (turnserver, Debian package coturn)', t)) return;
  const avail = await labAvailable();
  if (!requireOrSkip(avail.ok, `network lab (${avail.why ?? ''})`, t)) return;
  await withLab({ sites: [{ name: 'home', kind: 'port-restricted' }, { name: 'hotel', kind: 'udp-blocked' }] }, async (lab) => {
    const pl = new PartyLab(lab);
    const players: Player[] = [];
    try {
      await pl.startControl({ relay: true, turnTtlSeconds: TTL_S });
      const relay = `${lab.control.ip}:${RELAY_PORT}`;
      assert.equal(pl.relay, relay);
      // Short keepalives so that a dead relay is noticed within seconds (the default is 10 s).
      const timing = { keepaliveMs: 2000 };
      const home = Player.spawn(lab, lab.site('home'), { controlUrl: pl.controlUrl, name: 'Home', timing });
      const hotel = Player.spawn(lab, lab.site('hotel'), { controlUrl: pl.controlUrl, name: 'Hotel', timing });
      players.push(home, hotel);
      await Promise.all([home.wait((r) => r.ev === 'ready', 'ready'), hotel.wait((r) => r.ev === 'ready', 'ready (control over TCP from the UDP-blocked site)')]);

      await t.test('GetRelays: only for party members; the configured relay with credentials the relay accepts, fresh each call', async () => {
        const outside = await home.call('relays');
        assert.equal(outside.ok, false);
        assert.equal(outside.code, 9, 'FAILED_PRECONDITION');
        assert.match(String(outside.error), /join a party first/);
        const { partyId, inviteSecret } = await home.ok<{ partyId: string; inviteSecret: string }>('create', { name: 'Relay night' });
        await hotel.ok('join', { partyId, inviteSecret });
        const before = Date.now();
        const [first] = await home.ok<RelayOffer[]>('relays');
        const after = Date.now();
        assert.ok(first);
        assert.deepEqual([first.host, first.port, first.transports, first.realm], [lab.control.ip, RELAY_PORT, ['udp', 'tcp'], 'lanrage']);
        assert.ok(verifyTurnCredentials(pl.turnSecret!, first.username, first.password, Date.now()), 'minted with the relay\'s secret');
        assertMintedExpiry(first.expiresAt, before, after, TTL_S * 1000);
        await new Promise((r) => setTimeout(r, 1100));
        const [again] = await home.ok<RelayOffer[]>('relays');
        assert.ok(again && again.expiresAt > first.expiresAt && again.username !== first.username, 'fresh credentials on every call');
      });

      let homeRelayed = '';
      let hotelRelayed = '';
      await t.test('port-restricted site: allocates over UDP with credentials from GetRelays', async () => {
        const r = await home.ok<{ relayed: string; via: string; credentialsFetched: number }>('start', { transport: 'udp' });
        assert.match(r.relayed, new RegExp(`^${lab.control.ip.replaceAll('.', '\\.')}:\\d+$`));
        assert.equal(r.via, 'udp');
        assert.equal(r.credentialsFetched, 1);
        homeRelayed = r.relayed;
      });

      await t.test('UDP-blocked site: UDP allocation times out, TCP allocation succeeds', async () => {
        const t0 = Date.now();
        const udp = await hotel.call('start', { transport: 'udp' }, 60_000);
        assert.equal(udp.ok, false, 'no UDP gets through');
        assert.equal(udp.timeout, true, `timed out, not refused: ${String(udp.error)}`);
        t.diagnostic(`UDP allocation gave up after ${Date.now() - t0} ms`);
        const router = lab.site('hotel').router!;
        const { stdout } = await lab.exec(router.ns, 'nft', ['list', 'table', 'ip', ROUTER_TABLE]);
        const dropped = Number(/meta l4proto udp counter packets (\d+)/.exec(stdout)?.[1] ?? 0);
        assert.ok(dropped >= 3, `the hotel's router dropped the Allocate retransmissions (${dropped} UDP packets)`);
        const r = await hotel.ok<{ relayed: string; via: string }>('start', { transport: 'tcp' });
        assert.equal(r.via, 'tcp');
        assert.match(r.relayed, /^203\.0\.113\.2:\d+$/);
        hotelRelayed = r.relayed;
      });

      await t.test('relayed addresses go through the control server; data flows relayed to relayed both ways', async () => {
        await home.wait((r) => r.ev === 'peers' && (r.relayed as string[]).includes(hotelRelayed), 'hotel\'s relayed address via member_updated');
        await hotel.wait((r) => r.ev === 'peers' && (r.relayed as string[]).includes(homeRelayed), 'home\'s relayed address via member_updated');
        await exchange(home, homeRelayed, hotel, hotelRelayed, 'home→hotel');
        await exchange(hotel, hotelRelayed, home, homeRelayed, 'hotel→home');
      });

      await t.test('relay restart: both re-allocate by themselves with fresh credentials, republish, and data flows again', async () => {
        const n = { home: home.records.length, hotel: hotel.records.length };
        const t0 = Date.now();
        await pl.restartRelay();
        const since = (p: Player, k: number) => (r: Rec): boolean => p.records.indexOf(r) >= k && r.ev === 'reallocated';
        const [rh, rt] = await Promise.all([
          home.wait(since(home, n.home), 'home re-allocated', 30_000),
          hotel.wait(since(hotel, n.hotel), 'hotel re-allocated', 30_000),
        ]);
        t.diagnostic(`both re-allocated ${Date.now() - t0} ms after the restart`);
        assert.ok(Number(rh.credentialsFetched) >= 2 && Number(rt.credentialsFetched) >= 2, 'new credentials fetched from GetRelays');
        const [h2, t2] = [String(rh.relayed), String(rt.relayed)];
        await home.wait((r) => r.ev === 'peers' && (r.relayed as string[]).includes(t2), 'hotel\'s new relayed address');
        await hotel.wait((r) => r.ev === 'peers' && (r.relayed as string[]).includes(h2), 'home\'s new relayed address');
        await exchange(home, h2, hotel, t2, 'after restart home→hotel');
        await exchange(hotel, t2, home, h2, 'after restart hotel→home');
      });
    } catch (err) {
      process.stderr.write(`coturn log tail:\n${pl.coturn?.logTail(40) ?? '(none)'}\n`);
      throw err;
    } finally {
      for (const p of players) p.close();
      pl.cleanup();
    }
  });
});
