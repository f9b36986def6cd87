// `npm run cleanup -- [--dry-run] [--now <ISO time>]`: one cleanup run against the configured
// database and blob store, the same function the server runs hourly and the Worker's cron runs.
// Prints the report (what was, or with --dry-run would be, removed) as one JSON line.
import { parseArgs } from 'node:util';
import { runCleanup } from '../domain/cleanup';
import { runCommand } from './entry';
import { withOfflineDeps } from './offline-deps';

const USAGE = `Usage: npm run cleanup -- [--dry-run] [--now <ISO time>]

  --dry-run     count what would be removed; change nothing
  --now <time>  act as if it were this time (e.g. 2026-12-01T00:00:00Z), to preview or catch up

Uses the server's configuration (DATABASE_URL, DATA_DIR, retention settings). Without
DATABASE_URL the embedded database in DATA_DIR is opened: stop the server first, as only one
process may open it (the server also runs this cleanup itself every hour).`;

function parseCleanupArgs(argv: string[]): { dryRun: boolean; now?: Date } | { help: true } {
  const { values } = parseArgs({
    args: argv,
    options: { 'dry-run': { type: 'boolean', default: false }, now: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) return { help: true };
  let now: Date | undefined;
  if (values.now !== undefined) {
    now = new Date(values.now);
    if (Number.isNaN(now.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(values.now)) throw new TypeError(`--now must be an ISO 8601 time, got "${values.now}"`);
  }
  return { dryRun: values['dry-run'] ?? false, now };
}

async function main(): Promise<number> {
  let args: ReturnType<typeof parseCleanupArgs>;
  try {
    args = parseCleanupArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return 2;
  }
  if ('help' in args) {
    console.log(USAGE);
    return 0;
  }
  return withOfflineDeps(async (deps) => {
    const report = await runCleanup(deps, { dryRun: args.dryRun, now: args.now });
    console.log(JSON.stringify({ dry_run: args.dryRun, now: (args.now ?? new Date()).toISOString(), ...report }));
    return 0;
  });
}

runCommand('cleanup', main);
