import { createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

// A local server that speaks the Discord desktop client's IPC protocol on
// $XDG_RUNTIME_DIR/discord-ipc-0 (the real client cannot run here): frames of int32 LE opcode,
// int32 LE length, JSON; opcodes 0 HANDSHAKE, 1 FRAME, 2 CLOSE, 3 PING, 4 PONG. It answers the
// handshake with the READY dispatch, acknowledges SET_ACTIVITY, answers pings, and records what
// the agent asked Discord to show. `hostile` sends junk before READY; stop() disappears.

export const OP = { HANDSHAKE: 0, FRAME: 1, CLOSE: 2, PING: 3, PONG: 4 } as const;

export interface ActivityRecord {
  at: number;
  /** null: the presence was cleared. */
  activity: Record<string, unknown> | null;
}

export function frame(op: number, data: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(data));
  const head = Buffer.alloc(8);
  head.writeInt32LE(op, 0);
  head.writeInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}

export class FakeDiscordIpc {
  readonly activities: ActivityRecord[] = [];
  readonly handshakes: { clientId: string; v: number }[] = [];
  connections = 0;
  /** Before READY, send frames a hostile or broken client could send. */
  hostile = false;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(readonly dir: string) {}

  get path(): string {
    return join(this.dir, 'discord-ipc-0');
  }

  async start(): Promise<void> {
    rmSync(this.path, { force: true });
    this.server = createServer((s) => this.onSocket(s));
    await new Promise<void>((r) => this.server!.listen(this.path, r));
  }

  /** Discord quits: every connection is cut and the socket file goes away. */
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = undefined;
    rmSync(this.path, { force: true });
  }

  async waitFor(pred: (a: ActivityRecord[]) => boolean, timeoutMs = 20_000, what = 'activity'): Promise<ActivityRecord> {
    const end = Date.now() + timeoutMs;
    while (!pred(this.activities)) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.activities.map((a) => a.activity))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.activities.at(-1)!;
  }

  private onSocket(s: Socket): void {
    this.connections++;
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => {});
    let buf = Buffer.alloc(0);
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 8) {
        const op = buf.readInt32LE(0);
        const len = buf.readInt32LE(4);
        if (len < 0 || len > 64 * 1024) return void s.destroy();
        if (buf.length < 8 + len) break;
        let data: Record<string, unknown>;
        try {
          data = JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Record<string, unknown>;
        } catch {
          return void s.destroy();
        }
        buf = buf.subarray(8 + len);
        this.onFrame(s, op, data);
      }
    });
  }

  private onFrame(s: Socket, op: number, data: Record<string, unknown>): void {
    if (op === OP.HANDSHAKE) {
      this.handshakes.push({ clientId: String(data['client_id']), v: Number(data['v']) });
      if (this.hostile) {
        // Junk a broken or hostile peer could send: bad JSON, unknown opcodes, an answer to no
        // request, a READY without a user, an error event.
        const junk = Buffer.alloc(8 + 5);
        junk.writeInt32LE(OP.FRAME, 0);
        junk.writeInt32LE(5, 4);
        junk.write('{oops', 8);
        s.write(junk);
        s.write(frame(99, { what: 'unknown opcode' }));
        s.write(frame(OP.FRAME, { cmd: 'SET_ACTIVITY', nonce: 'not-a-request', data: null, evt: null }));
        s.write(frame(OP.FRAME, { cmd: 'DISPATCH', evt: 'ERROR', data: { code: 4000, message: 'nope' }, nonce: null }));
        s.write(frame(OP.FRAME, 'just a string'));
      }
      s.write(
        frame(OP.FRAME, {
          cmd: 'DISPATCH',
          evt: 'READY',
          nonce: null,
          data: { v: 1, config: { cdn_host: 'cdn.discordapp.com', api_endpoint: '//discord.com/api', environment: 'production' }, user: { id: '123456789012345678', username: 'tester', discriminator: '0', global_name: 'Tester', avatar: null, bot: false, flags: 0, premium_type: 0 } },
        }),
      );
      return;
    }
    if (op === OP.PING) return void s.write(frame(OP.PONG, data));
    if (op === OP.CLOSE) return void s.end();
    if (op === OP.FRAME && data['cmd'] === 'SET_ACTIVITY') {
      const args = (data['args'] ?? {}) as Record<string, unknown>;
      const activity = (args['activity'] as Record<string, unknown> | undefined) ?? null;
      this.activities.push({ at: Date.now(), activity });
      s.write(frame(OP.FRAME, { cmd: 'SET_ACTIVITY', data: activity, evt: null, nonce: data['nonce'] }));
    }
  }
}
