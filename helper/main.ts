#!/usr/bin/env node
import { parseArgs } from './core/args.js';
import { createLogger } from './core/log.js';
import { HELPER_NICE, raisePriority } from './core/priority.js';
import { usageText, type Command } from './cli/commands.js';
import { cliContext, CliError, explain } from './cli/context.js';
import { statusCommand } from './cli/status.js';
import { settingsCommand } from './cli/settings.js';
import { netcheckCommand } from './cli/netcheck.js';
import { discordCommand } from './cli/discord.js';
import { createCommand, joinCommand, leaveCommand, partyCommand, pingCommand } from './cli/party.js';
import { serversCommand } from './cli/servers.js';
import { gamesCommand } from './cli/games.js';
import { remoteCommand } from './cli/remote.js';

const COMMANDS: Command[] = [
  { name: 'helper', usage: 'helper [--http-port N] [--grpc-port N] [--state-dir DIR] [--operator USER] [--control-url URL[,URL...]] [--stun-ip IP --stun-alt-ip IP] [--relay IP:PORT[/udp,tcp] --turn-secret-file F [--turn-ttl S]]', summary: 'run the helper (local API, PWA, embedded control plane)', run: async () => {} },
  { name: 'control', usage: 'control [--db postgres://USER@HOST/DB] [--grpc-port N] [--stun-port N] [--stun-ip IP --stun-alt-ip IP] [--tls-cert F --tls-key F] [--relay IP:PORT[/udp,tcp] --turn-secret-file F [--turn-ttl S] [--turn-realm R]]', summary: 'run a control server on its own', run: async () => {} },
  { name: 'presence', usage: 'presence [--client-id ID] [--grpc HOST:PORT]', summary: 'run the Discord Rich Presence agent in your session (as your user)', run: async () => {} },
  statusCommand,
  partyCommand,
  createCommand,
  joinCommand,
  leaveCommand,
  pingCommand,
  settingsCommand,
  netcheckCommand,
  discordCommand,
  serversCommand,
  gamesCommand,
  remoteCommand,
];

async function runHelperRole(argv: string[]): Promise<void> {
  const log = createLogger({ role: 'helper' });
  // The roles load only when run: every CLI command would otherwise load the whole helper first
  // (1.5 s of CPU, tens of seconds on a loaded machine, for a five-second call).
  const { helperOptions, startHelper } = await import('./roles/helper.js');
  const opts = helperOptions(parseArgs(argv));
  const helper = await startHelper(opts, log);
  raisePriority(process.pid, HELPER_NICE, log, 'helper');
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

async function runControl(argv: string[]): Promise<void> {
  const log = createLogger({ role: 'control' });
  const { runControlRole } = await import('./roles/control.js');
  const server = await runControlRole(parseArgs(argv), log);
  // Every join waits on this server's answers (GetChallenge, Register, Session, JoinParty): it
  // runs at the helper's priority, as the helper's embedded control server does. Measured in the
  // join-storm lab (16 helpers at nice -5 and their wireguard-go at -10 on 2 cores): at nice 0 its
  // event loop ran 600-840 ms late while each handler took 1-140 ms, and a GetChallenge took up
  // to 2.5 s.
  raisePriority(process.pid, HELPER_NICE, log, 'control');
  log.info('control ready', { grpcPort: server.grpcPort, stunPorts: server.stunPorts, stunHosts: server.stunHosts });
  const stop = (): void => {
    server.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

async function runPresence(argv: string[]): Promise<void> {
  const log = createLogger({ role: 'presence' });
  // Loaded only for this role: the Discord RPC library (and its REST stack) costs every other
  // command and the helper's start-up ~0.5 s of CPU.
  const { startPresenceRole } = await import('./roles/presence.js');
  const agent = startPresenceRole(parseArgs(argv), log);
  log.info('presence agent started');
  const stop = (): void => {
    agent.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

async function main(argv: string[]): Promise<number> {
  const [name = 'help', ...rest] = argv;
  if (name === 'presence') {
    await runPresence(rest);
    return -1;
  }
  if (name === 'helper') {
    await runHelperRole(rest);
    return -1;
  }
  if (name === 'control') {
    await runControl(rest);
    return -1;
  }
  const cmd = COMMANDS.find((c) => c.name === name && c.name !== 'helper' && c.name !== 'control' && c.name !== 'presence');
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
