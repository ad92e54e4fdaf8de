import type { ParsedArgs } from '../core/args.js';
import type { CliContext } from './context.js';

// The command registry the later features extend (create, join, leave, ping, netcheck...):
// each command is one module exporting a Command.
export interface Command {
  name: string;
  usage: string;
  summary: string;
  run(args: ParsedArgs, ctx: CliContext): Promise<void>;
}

export function usageText(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.usage.length));
  return [
    'usage: lanrage <command> [options]',
    '',
    ...commands.map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`),
    '',
    'options: --grpc HOST:PORT (default 127.0.0.1:8667)  --state-dir DIR  --json',
  ].join('\n');
}
