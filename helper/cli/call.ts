import type { ChannelCredentials, Client, Metadata, ServiceError, CallOptions } from '@grpc/grpc-js';

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
