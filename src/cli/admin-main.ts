// `npm run admin`'s work, from its arguments to its exit code: admin.ts runs it as the process;
// tests run it in their own process too, on a database they keep open between commands.
import { parseArgs } from 'node:util';
import type { NodeDeps } from '../runtime/node-deps';
import { AppError } from '../domain/errors';
import { Declined, runAdmin, UsageError, type Invocation } from './admin-commands';
import { withOfflineDeps } from './offline-deps';
import { closePrompts, confirm, NeedsTerminal } from './orbital-prompt';

const USAGE = `Usage: npm run admin -- <command> [--json] [--yes]

  users list                          accounts, their orbit and live-session counts
  users delete <username>             delete the account, as DELETE /api/users/me does
  users reset-password <username>     a new random password (printed once); all sessions end
  sessions revoke <username>          end every session of the account
  orbits list                         ids, owners, member counts and storage (never names or content)
  orbits quota <id> [--bytes <n>] [--files <n>]   set an orbit's storage limits
  storage                             totals, and what the next cleanup would remove
  registration invite-code [--uses <n>] [--expires <time>]
                                      a code that lets someone register under REGISTRATION=invite
                                      without joining an orbit (the first account); default 1 use,
                                      7 days (--expires 30m, 12h, 3d …; at most 30d)
  registration list                   codes that can still admit someone (hints, uses, expiry)
  registration revoke <code|id>       the code admits nobody any more
  audit [--user <username|id>] [--orbit <id>] [--action <name>] [--since <ISO time>] [--limit <n>]
                                      sensitive actions, newest first (default 100): who, on whom,
                                      which orbit, from which network (/24, /48); kept
                                      AUDIT_RETENTION_DAYS

  --json   one JSON document on stdout
  --yes    do not ask before deleting or revoking (scripts)

Uses the server's configuration (DATABASE_URL, DATA_DIR, JWT_SECRET). Without DATABASE_URL the
embedded database in DATA_DIR is opened: stop the server first, as only one process may open it.`;

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

function duration(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const match = /^(\d+)([smhd])$/.exec(value);
  if (!match) throw new UsageError(`--expires takes a number and a unit (s, m, h, d), e.g. 7d; got "${value}"`);
  return Number(match[1]) * UNIT_SECONDS[match[2]!]!;
}

function isoTime(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const at = new Date(value);
  const [y, m, d] = (/^(\d{4})-(\d{2})-(\d{2})/.exec(value) ?? []).slice(1).map(Number);
  // Date rolls 2026-02-30 over to March 2: the calendar day itself must exist.
  const day = new Date(Date.UTC(y ?? NaN, (m ?? NaN) - 1, d ?? NaN));
  if (Number.isNaN(at.getTime()) || day.getUTCMonth() !== m! - 1 || day.getUTCDate() !== d) throw new UsageError(`--since must be an ISO 8601 time, got "${value}"`);
  return at;
}

function count(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new UsageError(`${flag} must be a whole number, got "${value}"`);
  return Number(value);
}

/** Where the output goes (the console, for the process). */
export interface AdminOutput {
  log(text: string): void;
  error(text: string): void;
}

/** Opens the configured database and the ports for one command, and closes them after it. */
export type OpenDeps = <T>(work: (deps: NodeDeps) => Promise<T>) => Promise<T>;

export async function adminMain(args: string[], out: AdminOutput = console, open: OpenDeps = withOfflineDeps): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: { json: { type: 'boolean' }, yes: { type: 'boolean', short: 'y' }, bytes: { type: 'string' }, files: { type: 'string' }, uses: { type: 'string' }, expires: { type: 'string' }, user: { type: 'string' }, orbit: { type: 'string' }, action: { type: 'string' }, since: { type: 'string' }, limit: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    out.error(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    values.help ? out.log(USAGE) : out.error(USAGE);
    return values.help ? 0 : 2;
  }
  const json = values.json ?? false;
  let inv: Invocation;
  try {
    inv = {
      command: positionals,
      yes: values.yes ?? false,
      bytes: count(values.bytes, '--bytes'),
      files: count(values.files, '--files'),
      uses: count(values.uses, '--uses'),
      expiresSec: duration(values.expires),
      audit: { user: values.user, orbit: values.orbit, action: values.action, since: isoTime(values.since), limit: count(values.limit, '--limit') },
      confirm: (question) => confirm(question, values.yes ?? false),
    };
  } catch (err) {
    out.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }

  return open(async (deps) => {
    try {
      const outcome = await runAdmin(deps, inv);
      out.log(json ? JSON.stringify(outcome.data, null, 2) : outcome.lines.join('\n'));
      return 0;
    } catch (err) {
      if (err instanceof UsageError) {
        out.error(`${err.message}\n\n${USAGE}`);
        return 2;
      }
      if (err instanceof Declined || err instanceof NeedsTerminal) {
        out.error(err.message);
        return err instanceof Declined ? 0 : 2;
      }
      if (err instanceof AppError) {
        out.error(json ? JSON.stringify({ error: { code: err.code, message: err.message } }) : err.message);
        return 1;
      }
      throw err;
    } finally {
      closePrompts();
    }
  });
}
