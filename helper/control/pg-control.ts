import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { ApiError, Status } from '../core/api-error.js';
import type { Logger } from '../core/log.js';
import { SessionResponse } from '../gen/lanrage/control/v1/control.js';
import type { BusEvent, BusHandlers, ControlBus } from './bus.js';
import { loadReplica, migratePg, PgControlStore, visibleIn, writeOp, type Op, type PgSnapshot } from './pg-store.js';

// PostgreSQL as the control store shared by several `lanrage control` instances, and
// LISTEN/NOTIFY as the bus between them. One connection writes (in commit order: each batch of
// operations, then its NOTIFY, in one transaction, so others hear of a change only once it is
// durable); one connection listens. Either one reconnects by itself when the database restarts;
// after the listener reconnects, the replica is reloaded (notifications sent meanwhile are lost)
// and every local session gets a fresh snapshot.

export const BUS_CHANNEL = 'lanrage_control';
// NOTIFY payloads are limited to 8000 bytes; bigger messages go through control_bus by id.
const MAX_INLINE = 7000;
const GROUP = 100;

// Events travel as protobuf (base64): they hold bytes and timestamps that JSON would mangle.
type WireEvent = { to: string; pb: string } | { to: string; snapshot: true };

function toWire(events: readonly BusEvent[]): WireEvent[] {
  const encoded = new Map<SessionResponse, string>(); // one event often goes to a whole party
  return events.map((e) => {
    if ('snapshot' in e) return e;
    let pb = encoded.get(e.event);
    if (pb === undefined) encoded.set(e.event, (pb = Buffer.from(SessionResponse.encode(e.event).finish()).toString('base64')));
    return { to: e.to, pb };
  });
}

function fromWire(events: readonly WireEvent[]): BusEvent[] {
  const decoded = new Map<string, SessionResponse>();
  return events.map((e) => {
    if ('snapshot' in e) return { to: e.to, snapshot: true };
    let event = decoded.get(e.pb);
    if (!event) decoded.set(e.pb, (event = SessionResponse.decode(Buffer.from(e.pb, 'base64'))));
    return { to: e.to, event };
  });
}

type Msg =
  | { k: 'tx'; from: string; xid?: string; ops: Op[]; events: WireEvent[] }
  | { k: 'open' | 'close'; from: string; dev: string }
  | { k: 'hb' | 'hello' | 'bye'; from: string }
  | { k: 'sessions'; from: string; devs: [string, number][] };

interface Batch {
  ops: Op[];
  msgs: Msg[];
  resolve(): void;
  reject(err: Error): void;
  done: Promise<void>;
}

interface Peer {
  lastSeen: number;
  sessions: Map<string, number>;
}

export interface PgControlOptions {
  url: string;
  log: Logger;
  /** How often instances say they are alive; one silent for 3 beats is taken for dead. */
  heartbeatMs?: number;
  connectTimeoutMs?: number;
}

/** The URL with its password hidden, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

export function checkPostgresUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--db must be a URL like postgres://user:password@host:5432/dbname, not "${url.slice(0, 80)}"`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error(`--db must be a postgres:// (or postgresql://) URL, not ${u.protocol}//…`);
}

const isConnectionError = (err: unknown): boolean => {
  const code = (err as { code?: unknown }).code;
  // SQLSTATEs are five characters; class 08 (connection) and 57 (operator intervention:
  // the server shutting down) mean "try again later", any other one means this write is refused.
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code.startsWith('08') || code.startsWith('57');
  return true;
};

export class PostgresControl implements ControlBus {
  readonly store: PgControlStore;
  readonly instanceId = randomBytes(6).toString('hex');
  private readonly url: string;
  private readonly log: Logger;
  private readonly heartbeatMs: number;
  private readonly connectTimeoutMs: number;
  private handlers: BusHandlers | undefined;
  private writer: pg.Client | undefined;
  private listener: pg.Client | undefined;
  private readonly queue: Batch[] = [];
  private lastBatch: Batch | undefined;
  private draining = false;
  private writing = false;
  private lastGc = 0;
  private paused: Promise<void> | undefined;
  private receiving: Promise<void> = Promise.resolve();
  private snapshot: PgSnapshot;
  private readonly local = new Map<string, number>();
  private readonly peers = new Map<string, Peer>();
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private listenerUp = false;

  static async open(opts: PgControlOptions): Promise<PostgresControl> {
    checkPostgresUrl(opts.url);
    const timeout = opts.connectTimeoutMs ?? 5000;
    const client = new pg.Client({ connectionString: opts.url, connectionTimeoutMillis: timeout });
    client.on('error', () => {});
    try {
      await client.connect();
      await migratePg(client);
      const { replica, snapshot } = await loadReplica(client);
      return new PostgresControl(opts, client, new PgControlStore(replica), snapshot);
    } catch (err) {
      await client.end().catch(() => {});
      const why = err instanceof Error ? err.message || (err as { code?: string }).code || err.name : String(err);
      throw new Error(`cannot use the PostgreSQL database ${redactUrl(opts.url)}: ${why} (check --db: host, port, user, password, database name, and that the server runs)`);
    }
  }

  private constructor(opts: PgControlOptions, writer: pg.Client, store: PgControlStore, snapshot: PgSnapshot) {
    this.url = opts.url;
    this.log = opts.log.child({ part: 'pg-control', instance: this.instanceId });
    this.heartbeatMs = opts.heartbeatMs ?? 2000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    this.store = store;
    this.snapshot = snapshot;
    this.attachWriter(writer);
    store.onCommit = (ops) => this.enqueue(ops, []);
    this.timer = setInterval(() => this.beat(), this.heartbeatMs);
    this.timer.unref();
    void this.listen();
  }

  // ---- ControlBus ----

  attach(handlers: BusHandlers): void {
    this.handlers = handlers;
  }

  publish(events: readonly BusEvent[]): void {
    // The transaction that produced these events committed just before, in the same tick (the
    // writer starts on the next one): send them with its operations, so that others apply the
    // change before they hear about it.
    const b = this.lastBatch;
    this.lastBatch = undefined;
    if (events.length === 0) return;
    const tx = b?.msgs.find((m): m is Extract<Msg, { k: 'tx' }> => m.k === 'tx');
    if (tx) tx.events.push(...toWire(events));
    else this.enqueue([], toWire(events));
  }

  sessionOpened(deviceId: string): void {
    this.local.set(deviceId, (this.local.get(deviceId) ?? 0) + 1);
    this.send({ k: 'open', from: this.instanceId, dev: deviceId });
  }

  sessionClosed(deviceId: string): void {
    const n = (this.local.get(deviceId) ?? 0) - 1;
    if (n > 0) this.local.set(deviceId, n);
    else this.local.delete(deviceId);
    this.send({ k: 'close', from: this.instanceId, dev: deviceId });
  }

  connectedElsewhere(deviceId: string): boolean {
    for (const p of this.peers.values()) if ((p.sessions.get(deviceId) ?? 0) > 0) return true;
    return false;
  }

  isLeader(): boolean {
    for (const id of this.peers.keys()) if (id < this.instanceId) return false;
    return true;
  }

  /** Resolves once every change committed so far is in PostgreSQL; rejects if it was refused. */
  durable(): Promise<void> {
    return this.queue.at(-1)?.done ?? Promise.resolve();
  }

  /** How many instances this one currently hears from, itself included. */
  instances(): number {
    return this.peers.size + 1;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    const w = this.writer;
    // Tell the others now, so they need not wait for missed heartbeats; best effort.
    const bye = w ? w.query('SELECT pg_notify($1, $2)', [BUS_CHANNEL, JSON.stringify([{ k: 'bye', from: this.instanceId }])]).catch(() => {}) : Promise.resolve();
    void bye.then(() => w?.end().catch(() => {}));
    void this.listener?.end().catch(() => {});
    for (const b of this.queue.splice(0)) b.reject(new ApiError(Status.UNAVAILABLE, 'the control server is shutting down'));
  }

  /** Closes after the queued writes reached the database (or `ms` passed). */
  async closeGracefully(ms = 3000): Promise<void> {
    await Promise.race([this.durable().catch(() => {}), new Promise((r) => setTimeout(r, ms).unref())]);
    this.close();
    this.store.close();
  }

  // ---- writing ----

  private enqueue(ops: Op[], events: WireEvent[]): Batch {
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => {}); // a refused write is reported to whoever awaits durable()
    const b: Batch = { ops, msgs: [{ k: 'tx', from: this.instanceId, ops, events }], resolve, reject, done };
    if (ops.length > 0) this.lastBatch = b;
    this.queue.push(b);
    this.kick();
    return b;
  }

  private send(msg: Msg): void {
    if (this.closed) return;
    const b = this.enqueue([], []);
    b.msgs = [msg];
  }

  private kick(): void {
    if (this.draining || this.closed) return;
    this.draining = true;
    // Later in this tick the control plane adds the transaction's events to its batch.
    void new Promise<void>((r) => setImmediate(r))
      .then(() => this.drain())
      .catch((err: unknown) => this.log.error('control writer stopped', { err: String(err) }))
      .finally(() => {
        this.draining = false;
        if (this.queue.length > 0 && !this.closed) this.kick();
      });
  }

  private async drain(): Promise<void> {
    let singles = false;
    let attempt = 0;
    while (this.queue.length > 0 && !this.closed) {
      if (this.paused) await this.paused;
      const group = this.queue.slice(0, singles ? 1 : GROUP);
      try {
        this.writing = true;
        const w = this.writer ?? (await this.connectWriter());
        await this.writeGroup(w, group);
      } catch (err) {
        this.writing = false;
        if (this.closed) return;
        if (isConnectionError(err)) {
          this.writer?.end().catch(() => {});
          this.writer = undefined;
          if (attempt++ === 0) this.log.warn('database unreachable: writes wait', { err: errText(err), queued: this.queue.length });
          await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)));
          continue;
        }
        if (group.length > 1) {
          singles = true; // find the one refused write; the others go through
          continue;
        }
        this.queue.shift();
        this.log.warn('write refused by the database: reloading from it', { err: errText(err) });
        group[0]!.reject(new ApiError(Status.ABORTED, 'another control instance changed the same party at the same moment: try again'));
        this.resync();
        continue;
      }
      this.writing = false;
      if (attempt > 0) this.log.info('database reachable again: queued writes done', { attempts: attempt });
      attempt = 0;
      singles = false;
      this.queue.splice(0, group.length);
      for (const b of group) b.resolve();
    }
  }

  private async writeGroup(w: pg.Client, group: Batch[]): Promise<void> {
    const msgs = group.flatMap((b) => b.msgs).filter((m) => m.k !== 'tx' || m.ops.length > 0 || m.events.length > 0);
    const hasOps = group.some((b) => b.ops.length > 0);
    if (!hasOps) {
      if (msgs.length > 0) await this.notify(w, msgs);
      return;
    }
    await w.query('BEGIN');
    try {
      if (Date.now() - this.lastGc > 60_000) {
        // Messages by reference are read within seconds of their NOTIFY.
        this.lastGc = Date.now();
        await w.query("DELETE FROM control_bus WHERE at < now() - interval '10 minutes'");
      }
      const xid = (await w.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x')).rows[0]!.x;
      for (const b of group) for (const o of b.ops) await writeOp(w, o);
      for (const m of msgs) if (m.k === 'tx') m.xid = xid;
      await this.notify(w, msgs);
      await w.query('COMMIT');
    } catch (err) {
      await w.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  /** NOTIFY the messages, packed into as few payloads as fit. */
  private async notify(w: pg.Client, msgs: Msg[]): Promise<void> {
    let chunk: string[] = [];
    let size = 2;
    const flush = async (): Promise<void> => {
      if (chunk.length === 0) return;
      await w.query('SELECT pg_notify($1, $2)', [BUS_CHANNEL, `[${chunk.join(',')}]`]);
      chunk = [];
      size = 2;
    };
    for (const m of msgs) {
      let s = JSON.stringify(m);
      if (s.length > MAX_INLINE) {
        const r = await w.query<{ id: string }>('INSERT INTO control_bus (payload) VALUES ($1) RETURNING id', [s]);
        s = JSON.stringify({ k: 'ref', id: r.rows[0]!.id });
      }
      if (size + s.length + 1 > MAX_INLINE) await flush();
      chunk.push(s);
      size += s.length + 1;
    }
    await flush();
  }

  private async connectWriter(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: this.connectTimeoutMs });
    c.on('error', () => {});
    try {
      await c.connect();
    } catch (err) {
      await c.end().catch(() => {});
      throw err;
    }
    this.attachWriter(c);
    return c;
  }

  private attachWriter(c: pg.Client): void {
    c.removeAllListeners('error');
    c.on('error', (err) => {
      this.log.debug('writer connection error', { err: errText(err) });
      if (this.writer === c) this.writer = undefined;
    });
    this.writer = c;
  }

  // ---- listening ----

  private async listen(): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: this.connectTimeoutMs });
      const lost = new Promise<void>((resolve) => {
        c.on('error', () => resolve());
        c.on('end', () => resolve());
      });
      try {
        await c.connect();
        c.on('notification', (n) => {
          if (n.channel === BUS_CHANNEL && n.payload) this.receive(c, n.payload);
        });
        await c.query(`LISTEN ${BUS_CHANNEL}`);
      } catch (err) {
        await c.end().catch(() => {});
        if (attempt === 0 || attempt % 20 === 0) this.log.warn('cannot listen for other control instances: retrying', { err: errText(err) });
        await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)));
        continue;
      }
      this.listener = c;
      this.listenerUp = true;
      // Changes committed before LISTEN took effect were not heard (the first load included):
      // reload; notifications already in the new snapshot are recognised by transaction id.
      if (this.everListened) this.log.info('listening for other control instances again: resyncing');
      this.everListened = true;
      this.resync();
      for (const p of this.peers.values()) p.lastSeen = Date.now();
      this.send({ k: 'hello', from: this.instanceId });
      this.send({ k: 'sessions', from: this.instanceId, devs: [...this.local] });
      attempt = -1;
      await lost;
      this.listenerUp = false;
      if (this.listener === c) this.listener = undefined;
      await c.end().catch(() => {});
      if (!this.closed) this.log.warn('lost the database connection that listens for other control instances: reconnecting');
    }
  }
  private everListened = false;

  private receive(c: pg.Client, payload: string): void {
    this.receiving = this.receiving.then(async () => {
      if (this.closed) return;
      let msgs: (Msg | { k: 'ref'; id: string })[];
      try {
        msgs = JSON.parse(payload) as typeof msgs;
      } catch {
        return;
      }
      for (const m of msgs) {
        if (m.k === 'ref') {
          try {
            const r = await c.query<{ payload: string }>('SELECT payload FROM control_bus WHERE id = $1', [m.id]);
            if (r.rows[0]) this.handle(JSON.parse(r.rows[0].payload) as Msg);
          } catch (err) {
            this.log.warn('bus message lost: resyncing', { err: errText(err) });
            this.resync();
          }
        } else this.handle(m);
      }
    });
  }

  private handle(m: Msg): void {
    if (m.from === this.instanceId) return;
    let peer = this.peers.get(m.from);
    if (!peer && m.k !== 'bye') {
      peer = { lastSeen: Date.now(), sessions: new Map() };
      this.peers.set(m.from, peer);
      this.log.info('another control instance is up', { peer: m.from });
      if (m.k !== 'hello' && m.k !== 'sessions') this.send({ k: 'hello', from: this.instanceId });
    }
    if (peer) peer.lastSeen = Date.now();
    const h = this.handlers;
    switch (m.k) {
      case 'tx':
        if (m.ops.length > 0 && !(m.xid !== undefined && visibleIn(this.snapshot, BigInt(m.xid)))) {
          try {
            this.store.applyRemote(m.ops);
          } catch (err) {
            this.log.warn('a change from another instance does not apply: resyncing', { err: errText(err) });
            this.resync();
            return;
          }
        }
        h?.events(fromWire(m.events));
        return;
      case 'open':
        peer!.sessions.set(m.dev, (peer!.sessions.get(m.dev) ?? 0) + 1);
        h?.remoteSessionOpened(m.dev);
        return;
      case 'close': {
        const n = peer!.sessions.get(m.dev) ?? 0;
        if (n === 0) return;
        if (n > 1) peer!.sessions.set(m.dev, n - 1);
        else peer!.sessions.delete(m.dev);
        h?.remoteSessionClosed(m.dev);
        return;
      }
      case 'hello':
        this.send({ k: 'sessions', from: this.instanceId, devs: [...this.local] });
        h?.peerAsked();
        return;
      case 'sessions': {
        const next = new Map(m.devs);
        for (const [dev, n] of next) for (let i = peer!.sessions.get(dev) ?? 0; i < n; i++) h?.remoteSessionOpened(dev);
        for (const [dev, n] of peer!.sessions) for (let i = next.get(dev) ?? 0; i < n; i++) h?.remoteSessionClosed(dev);
        peer!.sessions = next;
        return;
      }
      case 'bye':
        this.peerGone(m.from, 'stopped');
        return;
      case 'hb':
        return;
    }
  }

  private beat(): void {
    if (this.closed) return;
    if (!this.queue.some((b) => b.msgs[0]?.k === 'hb')) this.send({ k: 'hb', from: this.instanceId });
    if (!this.listenerUp) return; // silence is ours, not theirs
    const deadline = Date.now() - 3 * this.heartbeatMs;
    for (const [id, p] of this.peers) if (p.lastSeen < deadline) this.peerGone(id, 'silent');
  }

  private peerGone(id: string, why: string): void {
    const p = this.peers.get(id);
    if (!p) return;
    this.peers.delete(id);
    this.log.info('another control instance is gone: its sessions count as closed', { peer: id, why, sessions: p.sessions.size });
    for (const [dev, n] of p.sessions) for (let i = 0; i < n; i++) this.handlers?.remoteSessionClosed(dev);
  }

  /**
   * Reloads the replica from PostgreSQL with the writer paused, re-applies this instance's
   * writes still queued, then sends every local session a snapshot. Runs in the receive chain:
   * notifications that arrive meanwhile are handled after it (those already in the snapshot are
   * recognised by their transaction id and not applied twice).
   */
  private resync(): void {
    this.receiving = this.receiving.then(async () => {
      for (let attempt = 0; !this.closed; attempt++) {
        let release!: () => void;
        this.paused = new Promise<void>((r) => (release = r));
        try {
          await this.idleWriter();
          const c = this.listener;
          if (!c) return; // the listener reconnects and resyncs then
          const { replica, snapshot } = await loadReplica(c);
          this.store.replace(replica);
          this.snapshot = snapshot;
          for (const b of this.queue) if (b.ops.length > 0) this.store.applyRemote(b.ops);
        } catch (err) {
          this.log.warn('resync failed: retrying', { err: errText(err) });
          await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)));
          continue;
        } finally {
          this.paused = undefined;
          release();
        }
        this.handlers?.resync();
        return;
      }
    });
  }

  /** Waits for the group being written, if any (drain() then waits for `paused`). */
  private async idleWriter(): Promise<void> {
    while (this.writing && !this.closed) await sleep(5);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const errText = (err: unknown): string => (err instanceof Error ? err.message || err.name : String(err));
