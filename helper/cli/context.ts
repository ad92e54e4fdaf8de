import { credentials, Metadata, type ServiceError, status as Status } from '@grpc/grpc-js';
import { flag, type ParsedArgs } from '../core/args.js';
import { defaultStateDir } from '../core/state-dir.js';
import { readToken } from '../core/token.js';
import { DEFAULT_GRPC_PORT } from '../core/ports.js';

// What every CLI command gets: where the helper is, how to authenticate, how to print.
export interface CliContext {
  target: string;
  json: boolean;
  creds: ReturnType<typeof credentials.createInsecure>;
  deadline(): Date;
  /** Metadata with the install token, for commands that change the helper. */
  authMetadata(): Metadata;
  out(line: string): void;
}

export function cliContext(args: ParsedArgs, out: (line: string) => void = (l) => process.stdout.write(l + '\n')): CliContext {
  const target = flag(args, 'grpc') ?? `127.0.0.1:${DEFAULT_GRPC_PORT}`;
  const stateDir = flag(args, 'state-dir') ?? defaultStateDir();
  return {
    target,
    json: flag(args, 'json') === 'true',
    creds: credentials.createInsecure(),
    deadline: () => new Date(Date.now() + 5000),
    // The helper knows who we are from our socket (root and its operator have control without a
    // token); the token is sent when we can read it, for systems where the helper cannot tell.
    authMetadata: () => {
      const token = readToken(stateDir);
      const md = new Metadata();
      if (token) md.set('authorization', `Bearer ${token}`);
      return md;
    },
    out,
  };
}

export class CliError extends Error {}

/** Turns a gRPC failure into a sentence that says what to do. */
export function explain(err: unknown, target: string): string {
  const e = err as Partial<ServiceError>;
  if (e.code === Status.UNAVAILABLE || e.code === Status.DEADLINE_EXCEEDED) {
    return `the LANrage helper is not answering at ${target}. Start it with \`npm start\` in the LANrage folder (or \`sudo systemctl start lanrage\`), or pass --grpc HOST:PORT.`;
  }
  if (e.code !== undefined && e.details) return `${Status[e.code]}: ${e.details}`;
  return err instanceof Error ? err.message : String(err);
}
