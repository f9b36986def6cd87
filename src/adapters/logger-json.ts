import type { Logger, LogLevel } from '../deps';

const ORDER: Record<LogLevel | 'silent', number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

/** Structured JSON lines. Callers pass only safe fields: ids, routes, statuses, durations. */
export function jsonLogger(level: LogLevel | 'silent', write: (line: string) => void = (l) => process.stdout.write(l + '\n')): Logger {
  const min = ORDER[level];
  return {
    log(lvl, fields) {
      if (ORDER[lvl] < min) return;
      write(JSON.stringify({ time: new Date().toISOString(), level: lvl, ...fields }));
    },
  };
}
