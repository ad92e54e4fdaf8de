// Structured logs: one JSON object per line on stderr, quiet by default (info and above).
// LANRAGE_LOG=debug|info|warn|error|silent changes the threshold.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

const ORDER: Record<LogLevel | 'silent', number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

function threshold(): number {
  const env = (process.env.LANRAGE_LOG ?? 'info').toLowerCase();
  return env in ORDER ? ORDER[env as LogLevel] : ORDER.info;
}

/** Whether debug records are written: instrumentation that only feeds them can stay off otherwise. */
export function debugEnabled(): boolean {
  return threshold() <= ORDER.debug;
}

export function createLogger(base: LogFields = {}, sink: (line: string) => void = (l) => process.stderr.write(l + '\n')): Logger {
  const min = threshold();
  const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (ORDER[level] < min) return;
    const rec: LogFields = { t: new Date().toISOString(), level, msg, ...base, ...fields };
    for (const [k, v] of Object.entries(rec)) if (v instanceof Error) rec[k] = v.message;
    sink(JSON.stringify(rec));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (f) => createLogger({ ...base, ...f }, sink),
  };
}
