// `orbital`: the reference client on the command line. Everything is encrypted here (Client
// profile v1) before it reaches the server; the private key stays in the home folder.
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ApiError, DecryptError, KeyMissingError, NetworkError } from '../client';
import * as account from './orbital-account';
import * as content from './orbital-content';
import { Ctx, OPTIONS, UsageError, type Values } from './orbital-context';
import { Home, defaultHome } from './orbital-home';
import * as orbits from './orbital-orbits';
import { NeedsTerminal, closePrompts } from './orbital-prompt';

type Command = (ctx: Ctx) => Promise<void>;

/** Command words → handler; two-word commands first. */
const COMMANDS: Record<string, Command> = {
  register: account.register,
  login: account.login,
  logout: account.logout,
  whoami: account.whoami,
  'keys backup': account.keysBackup,
  'keys reset': account.keysReset,
  'keys deliver': orbits.keysDeliver,
  'keys rotate': orbits.keysRotate,
  'orbit create': orbits.orbitCreate,
  'orbit list': orbits.orbitList,
  orbits: orbits.orbitList,
  'orbit show': orbits.orbitShow,
  'orbit members': orbits.orbitMembers,
  'orbit leave': orbits.orbitLeave,
  'orbit remove': orbits.orbitRemove,
  invite: orbits.invite,
  join: orbits.join,
  post: content.post,
  threads: content.threads,
  replies: content.replies,
  reply: content.reply,
  send: content.send,
  messages: content.messages,
  upload: content.upload,
  files: content.files,
  download: content.download,
  watch: content.watch,
};

export const USAGE = `orbital — end-to-end encrypted client for an Orbital relay

Usage: orbital [--server URL] [--home DIR] [--json] <command> [arguments]

Account
  register <username> [--invite CODE] [--backup]   new account and key pair
  login <username>                                  (restores the key from a backup if needed)
  logout | whoami
  keys backup                                       store the private key encrypted with a recovery secret
  keys reset [--yes]                                new key pair (lost device, no backup)

Orbits
  orbit create <name>          orbit list (orbits)    orbit show <orbit>    orbit members <orbit>
  invite <orbit> [--uses N] [--expires SECONDS]     join <code>
  keys deliver <orbit> [--user NAME] [--yes]        give pending members the orbit key (asks first)
  orbit remove <orbit> <username> [--yes]           remove a member, then rotate the key
  keys rotate <orbit>          orbit leave <orbit> [--yes]

Content
  post <orbit> --title TITLE [--body TEXT|-]        threads <orbit> [--limit N]
  reply <thread-id> <text> [--parent REPLY-ID]      replies <thread-id>
  send <orbit> <text>                               messages <orbit> [--after SEQ]
  upload <orbit> <file> [--thread ID] [--name NAME] [--type MIME] [--concurrency N]
  files <orbit>                download <media-id> [--out PATH] [--force]
  watch <orbit> [--after SEQ] [--count N]

<orbit> is an orbit id, an id prefix, or the orbit's (decrypted) name.
Server: --server or ORBITAL_SERVER (remembered after login). Home: --home or ORBITAL_HOME (default ~/.orbital).
Passwords: prompted, or ORBITAL_PASSWORD, or --password-stdin. Recovery secret: prompted or ORBITAL_RECOVERY_SECRET.
--json prints one JSON document per result (per event for watch); --progress forces progress bars off a terminal.`;

function pick(positionals: string[]): { command: Command; rest: string[] } | undefined {
  const two = positionals.slice(0, 2).join(' ');
  if (COMMANDS[two] && positionals.length >= 2) return { command: COMMANDS[two]!, rest: positionals.slice(2) };
  const one = positionals[0];
  if (one && COMMANDS[one] && !['keys', 'orbit'].includes(one)) return { command: COMMANDS[one]!, rest: positionals.slice(1) };
  return undefined;
}

function describe(err: unknown): { code: string; message: string; exit: number; details?: unknown; request_id?: string } {
  if (err instanceof ApiError) {
    const hint =
      err.code === 'KEY_PENDING'
        ? ' (a member still has to deliver your key: orbital keys deliver)'
        : err.code === 'UNAUTHENTICATED'
          ? ' (run orbital login)'
          : '';
    return { code: err.code, message: `${err.message}${hint}`, exit: 1, details: err.details, request_id: err.requestId };
  }
  if (err instanceof UsageError || err instanceof NeedsTerminal) return { code: 'USAGE', message: err.message, exit: 2 };
  if (err instanceof NetworkError) return { code: 'NETWORK', message: `cannot reach the server: ${err.message}`, exit: 1 };
  if (err instanceof KeyMissingError || err instanceof DecryptError) return { code: 'KEY', message: err.message, exit: 1 };
  return { code: 'ERROR', message: err instanceof Error ? err.message : String(err), exit: 1 };
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }) as { values: Values; positionals: string[] });
  } catch (err) {
    process.stderr.write(`orbital: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const picked = pick(positionals);
  if (values.help || !picked) {
    (picked || values.help ? process.stdout : process.stderr).write(USAGE + '\n');
    return values.help ? 0 : 2;
  }
  const ctx = new Ctx(values, picked.rest, env, new Home(values.home ? values.home : defaultHome(env)));
  try {
    await picked.command(ctx);
    return 0;
  } catch (err) {
    const failure = describe(err);
    if (ctx.json) process.stdout.write(JSON.stringify({ error: { code: failure.code, message: failure.message, request_id: failure.request_id, details: failure.details } }) + '\n');
    process.stderr.write(`orbital: ${failure.code === 'ERROR' || failure.code === 'USAGE' ? '' : `${failure.code}: `}${failure.message}\n`);
    return failure.exit;
  } finally {
    closePrompts();
  }
}

/** The process entry (bin/orbital.mjs, or `tsx src/cli/orbital.ts`). */
export async function run(): Promise<void> {
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`orbital: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void run();
