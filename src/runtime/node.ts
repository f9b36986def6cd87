// The Node entry (`npm start`): configuration from the environment, PGlite in DATA_DIR or
// node-postgres with DATABASE_URL, disk blobs, migrations at start, graceful shutdown.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { sql } from 'drizzle-orm';
import { atMost } from '../domain/deadline';
import { ConfigError, parseConfig, type Config } from '../config';
import type { Db, Logger } from '../deps';
import { causes, databaseUnavailable, errorFields } from '../http/errors';
import { migrate } from '../db/migrate';
import { base64url, randomBytes } from '../domain/bytes';
import { openNodePostgres, type NodePgHandle } from '../adapters/db-node-postgres';
import { jsonLogger } from '../adapters/logger-json';
import { stdoutLines } from '../adapters/log-stdout';
import { lockDataDir, ownerOnlyFiles, prepareDataDir, tighten } from './data-dir';
import { removeStaging } from './backup/staging';
import { buildNodeDeps } from './node-deps';
import { scheduleCleanup } from './node-cleanup';
import { startServer } from './node-server';
import { EXIT_MIGRATIONS_FAILED, startClusterPrimary } from './node-cluster';
import cluster from 'node:cluster';
import { PromMetrics } from '../adapters/metrics-prom';
import { scrapeThroughPrimary } from '../adapters/metrics-cluster';
import { observeNode } from './node-metrics';
import type { PGlite } from '@electric-sql/pglite';
import { INSECURE_COST_WARNING } from '../domain/password-hasher';

/** The JWT secret kept in DATA_DIR (mode 0600) when JWT_SECRET is unset, so restarts keep sessions. */
async function persistedSecret(dataDir: string): Promise<string> {
  const path = join(dataDir, 'jwt-secret');
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    await mkdir(dataDir, { recursive: true });
    const secret = base64url(randomBytes(48));
    await writeFile(path, secret + '\n', { mode: 0o600, flag: 'wx' }).catch(async () => undefined);
    await chmod(path, 0o600);
    return (await readFile(path, 'utf8')).trim();
  }
}

export async function loadNodeConfig(env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  parseConfig(env, 'x'.repeat(32)); // fail on bad values before touching the disk
  ownerOnlyFiles();
  const dataDir = env.DATA_DIR || './data';
  return parseConfig(env, env.JWT_SECRET ? undefined : await persistedSecret(dataDir));
}

/** The server's bound on one statement and on a transaction's idle time (src/adapters/db-node-postgres.ts). */
const SERVER_STATEMENT_BOUND_MS = 30_000;

/**
 * The configured database. `for: 'command'` (cleanup, admin, backup, restore, migrate): a database
 * open for seconds, so the embedded one runs on V8's baseline WebAssembly code only. Optimizing
 * PGlite's hot functions as it starts costs more than it saves there: 0.9 s of CPU and 200 MB.
 */
export async function openDatabase(
  config: Config,
  use: { for: 'server' | 'command'; logger?: Logger } = { for: 'server' },
): Promise<{ db: Db; close(): Promise<void>; kind: string; pool?: NodePgHandle['pool']; pglite?: PGlite }> {
  if (config.DATABASE_URL) {
    // A command's connections live for seconds: naming its statements would save nothing, and a
    // pooler still holding the server's names would refuse them (42P05) on every run.
    const server = {
      boundMs: SERVER_STATEMENT_BOUND_MS,
      named: {
        refused: (err: unknown) =>
          use.logger?.log('warn', { msg: 'the database refused a named statement (a pooler in transaction mode, or a column type changed); statements are sent unnamed from now on', ...errorFields(err) }),
      },
    };
    return { ...openNodePostgres(config.DATABASE_URL, 10, use.for === 'server' ? server : {}), kind: 'postgres' };
  }
  prepareDataDir(config.DATA_DIR);
  const lock = lockDataDir(config.DATA_DIR);
  if (use.for === 'command') setFlagsFromString('--liftoff-only');
  // Loaded only when used: a server on Postgres does not carry the embedded database's code.
  const { openPglite } = await import('../adapters/db-pglite');
  // A command touches little of the database: 16 MB of shared buffers instead of 128 start in
  // 0.5 s instead of 0.9 (postgres clears them all at start).
  const runSettings = use.for === 'command' ? ['shared_buffers=16MB'] : undefined;
  const handle = await openPglite({ dataDir: join(config.DATA_DIR, 'pglite'), runSettings }).catch((err) => (lock.release(), Promise.reject(err)));
  tighten(join(config.DATA_DIR, 'pglite'));
  return { db: handle.db, pglite: handle.client, close: () => handle.close().finally(() => lock.release()), kind: 'pglite' };
}

/**
 * Applies the migrations. A Postgres that is down or missing does not stop the start: the server
 * answers 503 UNAVAILABLE (with Retry-After) and migrates once the database is back. Returns
 * whether they are still to run: until then the database has no schema to serve from.
 */
async function migrateOrRetry(applyMigrations: () => Promise<unknown>, logger: Logger): Promise<() => boolean> {
  try {
    await applyMigrations();
    return () => false;
  } catch (err) {
    if (!databaseUnavailable(err)) migrationsFailed(err, logger);
    logger.log('warn', { msg: 'database unavailable at start; answering 503 until it is back', ...errorFields(err) });
    let pending = true;
    const retry = () => {
      applyMigrations().then(
        () => {
          pending = false;
          logger.log('info', { msg: 'database available; migrations applied' });
        },
        (again) => {
          if (!databaseUnavailable(again)) migrationsFailed(again, logger);
          logger.log('warn', { msg: 'migrations not applied yet; retrying in 5 s', ...errorFields(again) });
          setTimeout(retry, 5000).unref();
        },
      );
    };
    setTimeout(retry, 5000).unref();
    return () => pending;
  }
}

/**
 * A migration the database refused (not for being out of reach): the server stops, as serving 503
 * for ever would hide it behind a /health that answers. Logged with Postgres' own reason (DDL, no
 * user data), not the statement drizzle puts before it.
 */
function migrationsFailed(err: unknown, logger: Logger): never {
  let reason: string | undefined;
  for (const e of causes(err)) if (e instanceof Error && typeof (e as { code?: unknown }).code === 'string') reason = e.message;
  logger.log('error', { msg: 'migrations failed; stopping', reason, ...errorFields(err) });
  process.exit(EXIT_MIGRATIONS_FAILED);
}

/**
 * The migrations at start. On Postgres they run on a connection of their own without the server's
 * statement bound: a migration may take minutes on a large database (an index built, a backfill).
 */
function startMigrations(config: Config, db: Db): () => Promise<unknown> {
  const url = config.DATABASE_URL;
  if (!url) return () => migrate(db);
  return async () => {
    const own = openNodePostgres(url, 1);
    try {
      // Postgres 14+ (older ones refuse the setting, harmlessly): a backend waiting on the
      // migrations' lock notices within 1 s that its server stopped, instead of holding a
      // connection slot until the lock is free.
      await own.db.execute(sql`set client_connection_check_interval = 1000`).catch(() => undefined);
      await migrate(own.db);
    } finally {
      void own.close().catch(() => {});
    }
  };
}

async function main() {
  let config: Config;
  try {
    config = await loadNodeConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  if (startClusterPrimary(config)) return; // WORKERS > 1: this process supervises the workers
  const logger = jsonLogger(config.LOG_LEVEL, stdoutLines()); // asynchronous: the access log must not block requests
  const database = await openDatabase(config, { for: 'server', logger });
  const metrics = config.METRICS ? new PromMetrics() : undefined;
  if (metrics && cluster.isWorker) scrapeThroughPrimary(metrics);
  // Listening before the migrations run: a migration can take minutes on a large database, and a
  // health check refused meanwhile gets the server restarted mid-migration, again and again.
  // Until they have run, every route but /health answers 503 (/ready included).
  let pending = () => true;
  const deps = await buildNodeDeps({ config, db: database.db, databaseUrl: config.DATABASE_URL, logger, metrics, databasePending: () => pending() });
  const swept = removeStaging(config.DATA_DIR, 'gone');
  if (swept.length) deps.logger.log('warn', { msg: 'removed the staging folders of interrupted backups', folders: swept });
  const running = await startServer(deps, config.PORT, config.HOST);
  deps.logger.log('info', { msg: 'listening', url: running.url, database: database.kind, data_dir: config.DATA_DIR });
  // What runs once the schema is there; stopped with the server, however far the start got.
  let metricsListener: Awaited<ReturnType<typeof observeNode>> | undefined;
  let cleanup: ReturnType<typeof scheduleCleanup> | undefined;
  let backups: ReturnType<typeof startBackupSocket> | undefined;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    deps.logger.log('info', { msg: 'shutting down', signal });
    await running.close();
    await metricsListener?.close();
    await cleanup?.stop();
    await (await backups)?.close();
    // A Postgres that stopped answering would hold the pool's end for ever (the embedded one is
    // in this process and is waited for: it writes its files as it closes).
    await (database.kind === 'postgres' ? atMost(database.close(), 5000) : database.close());
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  pending = await migrateOrRetry(startMigrations(config, database.db), deps.logger);
  if (stopping) return;
  metricsListener = metrics && (await observeNode(deps, metrics, { running, pool: database.pool }));
  if (metricsListener?.url) deps.logger.log('info', { msg: 'metrics listening', url: metricsListener.url });
  if (config.PASSWORD_HASH_COST !== 'owasp') deps.logger.log('error', { msg: INSECURE_COST_WARNING });
  // Hourly retention; with Postgres several processes may run, and the advisory lock picks one.
  cleanup = scheduleCleanup(deps, { useLock: database.kind === 'postgres' });
  // Only this process may open the embedded database: `npm run backup` asks it over a socket.
  backups = database.pglite ? startBackupSocket(config, database, deps.logger) : undefined;
}

async function startBackupSocket(config: Config, database: { pglite?: PGlite }, logger: Logger) {
  try {
    const [{ serveBackups }, { backupSource }] = await Promise.all([import('./backup/socket'), import('./backup/source')]);
    return await serveBackups(backupSource(config, database), config.DATA_DIR, logger);
  } catch (err) {
    logger.log('warn', { msg: 'backup socket not available; stop the server to back it up', ...errorFields(err) });
    return undefined;
  }
}

/** Runs the server as a process: the built entry (src/runtime/server.ts → dist/server.js) calls this. */
export function start(): void {
  main().catch((err) => {
    console.error(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
    process.exit(1);
  });
}

if (process.argv[1]?.endsWith('runtime/node.ts')) start(); // run from source: `tsx src/runtime/node.ts`
