#!/usr/bin/env node
import { parseArgs } from './core/args.js';
import { createLogger } from './core/log.js';
import { helperOptions, startHelper } from './roles/helper.js';
import { usageText, type Command } from './cli/commands.js';
import { cliContext, CliError, explain } from './cli/context.js';
import { statusCommand } from './cli/status.js';
import { settingsCommand } from './cli/settings.js';

const COMMANDS: Command[] = [
  { name: 'helper', usage: 'helper [--http-port N] [--grpc-port N] [--state-dir DIR]', summary: 'run the helper (local API, PWA, embedded control plane)', run: async () => {} },
  statusCommand,
  settingsCommand,
];

async function runHelperRole(argv: string[]): Promise<void> {
  const log = createLogger({ role: 'helper' });
  const opts = helperOptions(parseArgs(argv));
  const helper = await startHelper(opts, log);
  log.info('helper ready', { grpcPort: helper.grpcPort, httpPort: helper.httpPort, url: `http://localhost:${helper.httpPort}`, stateDir: opts.stateDir });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn('second signal: exiting now', { signal });
      process.exit(1);
    }
    stopping = true;
    log.info('shutting down', { signal });
    helper.stop().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error('shutdown failed', { err });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function main(argv: string[]): Promise<number> {
  const [name = 'help', ...rest] = argv;
  if (name === 'helper') {
    await runHelperRole(rest);
    return -1;
  }
  const cmd = COMMANDS.find((c) => c.name === name && c.name !== 'helper');
  if (!cmd) {
    process.stdout.write(usageText(COMMANDS) + '\n');
    return name === 'help' || name === '--help' ? 0 : 2;
  }
  const args = parseArgs(argv);
  const ctx = cliContext(args);
  try {
    await cmd.run(args, ctx);
    return 0;
  } catch (err) {
    process.stderr.write(`lanrage ${name}: ${err instanceof CliError ? err.message : explain(err, ctx.target)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`lanrage: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
