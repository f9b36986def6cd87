// The Node server (or another entry, e.g. the cleanup CLI) as its own process, started the way
// `npm start` starts it, for tests and benchmarks that kill it, restart it or measure it alone.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { TEST_ENV, type Target } from './types';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface NodeProcess {
  proc: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * The entries `npm run build:server` compiles (the node project's global setup builds dist/ from
 * this tree): they run as users run them, and start without compiling TypeScript (~1.5 s each).
 */
const BUILT: Record<string, string> = {
  'src/runtime/node.ts': 'dist/server.js',
  'src/cli/orbital.ts': 'dist/orbital.js',
  'src/cli/migrate.ts': 'dist/migrate.js',
  'src/cli/cleanup.ts': 'dist/cleanup.js',
  'src/cli/admin.ts': 'dist/admin.js',
  'src/cli/backup.ts': 'dist/backup.js',
  'src/cli/restore.ts': 'dist/restore.js',
};

/** Runs `entry` (built, else through tsx) with `args` from the project root, `env` over this process's. */
export function runEntry(entry: string, env: Record<string, string>, args: string[] = []): NodeProcess {
  const built = BUILT[entry];
  const proc = spawn(process.execPath, [...(built ? [built] : ['--import', 'tsx', entry]), ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return {
    proc,
    output: () => out,
    exited,
    async kill(signal = 'SIGKILL') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

export interface ServerProcess extends NodeProcess {
  url: string;
}

/**
 * Starts src/runtime/node.ts on a free port; resolves once it listens (its `listening` log line) and,
 * unless `until` is 'listening' (a database down at start), once /ready answers 200: the server
 * listens while its migrations run.
 */
export async function startServerProcess(env: Record<string, string>, timeoutMs = 60_000, until: 'ready' | 'listening' = 'ready'): Promise<ServerProcess> {
  const child = runEntry('src/runtime/node.ts', { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      void child.kill();
      reject(new Error(`the server did not start:\n${child.output()}`));
    }, timeoutMs);
    const look = () => {
      // Whole lines only: a read can end inside the line.
      const line = child.output().split('\n').slice(0, -1).find((l) => l.includes('"msg":"listening"'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line).url);
      }
    };
    child.proc.stdout!.on('data', look);
    void child.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code}:\n${child.output()}`));
    });
  });
  if (until === 'ready' && !(await untilReady(url, () => child.proc.exitCode !== null, timeoutMs))) {
    await child.kill();
    throw new Error(`the server did not get ready:\n${child.output()}`);
  }
  return { ...child, url };
}

/** Polls `url`/ready until it answers 200 (true), or until the server has `exited` or `timeoutMs` passed (false). */
export async function untilReady(url: string, exited: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while ((await fetch(url + '/ready').then((res) => (void res.body?.cancel(), res.status), () => 0)) !== 200) {
    if (exited() || Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

/** The API of a server process, for the helpers that take a Target (test/support/api.ts). */
export const targetOf = (server: ServerProcess) =>
  ({ name: 'node', env: TEST_ENV, fetch: (path: string, init: RequestInit = {}) => fetch(server.url + path, init) }) as unknown as Target;

/**
 * A database of its own on `baseUrl`'s server, named but not created: `create` makes it (from a
 * template if given: it never exists without that template's tables), `drop` removes it if it is there.
 */
export function databaseNamed(baseUrl: string, prefix: string): { name: string; url: string; create(template?: string): Promise<void>; drop(): Promise<void> } {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  const admin = (statement: string) => runSql(baseUrl, statement);
  return {
    name,
    url: url.toString(),
    create: (template) => admin(`create database ${name}${template ? ` template ${template}` : ''}`),
    drop: () => admin(`drop database if exists ${name} with (force)`),
  };
}

/** One statement on a connection of its own to `url` (setup: a database made or dropped, a schema changed). */
export async function runSql(url: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query(statement);
  } finally {
    await client.end().catch(() => {});
  }
}

/** A new, empty database on the Postgres at `baseUrl`; `drop()` removes it. */
export async function freshDatabase(baseUrl: string, prefix = 'orbital_proc'): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const database = databaseNamed(baseUrl, prefix);
  await database.create();
  return database;
}
