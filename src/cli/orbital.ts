// `orbital`: the reference client on the command line. Everything is encrypted here (Client
// profile v1) before it reaches the server; the private key stays in the home folder.
import { readFileSync } from 'node:fs';
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
  watch <orbit> [--after SEQ] [--count N]           live events; --count N stops after N of them

<orbit> is an orbit id, an id prefix, or the orbit's (decrypted) name; <thread-id> an id or a prefix.
orbital <command> --help explains one command; orbital --version prints the version.
Server: --server or ORBITAL_SERVER (remembered after login). Home: --home or ORBITAL_HOME (default ~/.orbital).
Passwords: prompted, or ORBITAL_PASSWORD, or --password-stdin. Recovery secret: prompted or ORBITAL_RECOVERY_SECRET.
--json prints one JSON document per result (per event for watch); --progress forces progress bars off a terminal.`;

/** What a command's one line in USAGE leaves out. */
const NOTES: Record<string, string> = {
  register: 'Makes your key pair here, then the account. --backup also stores the private key on the server, encrypted with a recovery secret printed once (write it down: it is not your password). --invite CODE joins that orbit too (needed when the server takes invited users only).',
  login: 'On a device without your private key, restores it from your key backup (asks for the recovery secret).',
  'keys backup': 'Stores your private key on the server, encrypted with a new recovery secret printed once (or ORBITAL_RECOVERY_SECRET). Keep it: it is the only way to read your orbits from a new device.',
  'keys deliver': 'Pending members cannot read the orbit until a member gives them the orbit key, wrapped for their public key. Compare the fingerprint shown with the one their terminal shows before you say yes.',
  'orbit remove': 'Removes the member, then rotates the orbit key so they cannot read what comes next.',
  upload: 'Encrypts and uploads in 5 MiB chunks, --concurrency at a time (default 4). Run the same command again after an interruption: it resumes where it stopped.',
  download: 'Decrypts into the current folder (or --out PATH). An interrupted download resumes from PATH.part.',
  watch:
    'Prints the orbit’s events as they happen, reconnecting by itself, until Ctrl-C. --after SEQ first replays the events after that seq (the number in brackets). --count N stops after N events: for scripts and tests.',
  threads: 'Lists the newest threads (--limit N, default 20) with their full ids; reply and replies take an id or its first characters.',
};

/** `orbital <command> --help`: the command's lines of USAGE, and its note. */
function commandHelp(key: string): string {
  const firstWords = new Set(Object.keys(COMMANDS).map((k) => k.split(' ')[0]!));
  const lines: string[] = [];
  for (const row of USAGE.split('\n')) {
    const segments = row.trim().split(/\s{2,}/);
    segments.forEach((segment, i) => {
      const words = segment.split(/[ |]+/);
      if (!(segment === key || segment.startsWith(key + ' ') || words.includes(key))) return;
      const next = segments[i + 1];
      const described = next && !firstWords.has(next.split(' ')[0]!) ? `\n  ${next}` : '';
      lines.push(`Usage: orbital [--server URL] [--home DIR] [--json] ${segment}${described}`);
    });
  }
  const note = NOTES[key] ? `\n\n${NOTES[key]}` : '';
  return `${lines.join('\n') || `orbital ${key}`}${note}\n\nSee orbital --help for the options every command takes.`;
}

function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

function pick(positionals: string[]): { command: Command; rest: string[] } | undefined {
  const two = positionals.slice(0, 2).join(' ');
  if (COMMANDS[two] && positionals.length >= 2) return { command: COMMANDS[two]!, rest: positionals.slice(2) };
  const one = positionals[0];
  if (one && COMMANDS[one] && !['keys', 'orbit'].includes(one)) return { command: COMMANDS[one]!, rest: positionals.slice(1) };
  return undefined;
}

/** The words of the command picked from `positionals` ('orbit remove', 'watch'). */
function commandKey(positionals: string[]): string {
  const two = positionals.slice(0, 2).join(' ');
  return COMMANDS[two] && positionals.length >= 2 ? two : positionals[0]!;
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
  if (values.version) {
    process.stdout.write(`orbital ${version()}\n`);
    return 0;
  }
  const picked = pick(positionals);
  if (values.help && picked) {
    process.stdout.write(commandHelp(commandKey(positionals)) + '\n');
    return 0;
  }
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
