import { Metadata, type ChannelCredentials, type Client, type ServiceError, type CallOptions } from '@grpc/grpc-js';
import type { ParsedArgs } from '../core/args.js';
import type { Command } from './commands.js';
import type { CliContext } from './context.js';

// Promise form of a generated grpc-js unary method, so commands read top to bottom.
export function unary<Req, Res>(
  client: Client,
  method: (req: Req, md: Metadata, opts: Partial<CallOptions>, cb: (err: ServiceError | null, res: Res) => void) => unknown,
  req: Req,
  md: Metadata,
  deadline: Date,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(client, req, md, { deadline }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** Opens a generated client to the helper, runs `fn`, and always closes the channel. */
export async function withClient<C extends Client, T>(
  Ctor: new (address: string, creds: ChannelCredentials) => C,
  ctx: { target: string; creds: ChannelCredentials },
  fn: (client: C) => Promise<T>,
): Promise<T> {
  const client = new Ctor(ctx.target, ctx.creds);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

type UnaryMethod<Req, Res> = Parameters<typeof unary<Req, Res>>[1];

/** Unary calls on one client within the command's deadline: `read` without credentials, `write` with the install token. */
export interface Calls {
  read<Req, Res>(method: UnaryMethod<Req, Res>, req: Req): Promise<Res>;
  write<Req, Res>(method: UnaryMethod<Req, Res>, req: Req): Promise<Res>;
}

export function callsOn(client: Client, ctx: CliContext): Calls {
  return {
    read: (method, req) => unary(client, method, req, new Metadata(), ctx.deadline()),
    write: (method, req) => unary(client, method, req, ctx.authMetadata(), ctx.deadline()),
  };
}

/** A command that talks to one of the helper's services: `run` gets its client and calls; the channel is closed after. */
export function serviceCommand<C extends Client>(o: {
  name: string;
  usage: string;
  summary: string;
  service: new (address: string, creds: ChannelCredentials) => C;
  run(client: C, call: Calls, args: ParsedArgs, ctx: CliContext): Promise<void>;
}): Command {
  return { name: o.name, usage: o.usage, summary: o.summary, run: (args, ctx) => withClient(o.service, ctx, (c) => o.run(c, callsOn(c, ctx), args, ctx)) };
}
