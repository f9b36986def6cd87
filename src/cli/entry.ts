// What the operator's commands (cleanup, backup, restore) share: one file argument, the configured
// database opened for the work and closed after, and one clear line for a known failure.
import { parseArgs } from 'node:util';
import { ConfigError, type Config } from '../config';
import { DataDirBusy } from '../runtime/data-dir';
import { openDatabase } from '../runtime/node';

type ErrorClass = new (...args: never[]) => Error;

/** Runs `main` and exits with its code; a known error prints its message alone, others what failed. */
export function runCommand(name: string, main: () => Promise<number>, known: ErrorClass[] = []): void {
  main().then(
    (code) => process.exit(code),
    (err) => {
      const plain = [ConfigError, DataDirBusy, ...known].some((k) => err instanceof k);
      console.error(plain ? (err as Error).message : `${name} failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}

/** The one file a command takes, or the exit code after printing the usage (--help: 0). */
export function fileArgument(argv: string[], usage: string): string | number {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  if (parsed.values.help) return console.log(usage), 0;
  if (parsed.positionals.length !== 1) return console.error(usage), 2;
  return parsed.positionals[0]!;
}

/** The configured database (DATABASE_URL, or the embedded one, locked), open for `work`. */
export async function withDatabase<T>(config: Config, work: (database: Awaited<ReturnType<typeof openDatabase>>) => Promise<T>): Promise<T> {
  const database = await openDatabase(config, { for: 'command' });
  try {
    return await work(database);
  } finally {
    await database.close();
  }
}
