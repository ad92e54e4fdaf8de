import type { Client, Metadata, ServiceError, CallOptions } from '@grpc/grpc-js';

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
