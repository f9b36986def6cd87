// The Node entry (`npm start`): configuration from the environment, PGlite in DATA_DIR or
// node-postgres with DATABASE_URL, disk blobs, migrations at start, graceful shutdown.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, parseConfig, type Config } from '../config';
import type { Db } from '../deps';
import { migrate } from '../db/migrate';
import { base64url, randomBytes } from '../domain/bytes';
import { openNodePostgres } from '../adapters/db-node-postgres';
import { buildNodeDeps } from './node-deps';
import { scheduleCleanup } from './node-cleanup';
import { startServer } from './node-server';
import { startClusterPrimary } from './node-cluster';

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
  const dataDir = env.DATA_DIR || './data';
  return parseConfig(env, env.JWT_SECRET ? undefined : await persistedSecret(dataDir));
}

export async function openDatabase(config: Config): Promise<{ db: Db; close(): Promise<void>; kind: string }> {
  if (config.DATABASE_URL) return { ...openNodePostgres(config.DATABASE_URL), kind: 'postgres' };
  await mkdir(config.DATA_DIR, { recursive: true });
  // Loaded only when used: a server on Postgres does not carry the embedded database's code.
  const { openPglite } = await import('../adapters/db-pglite');
  return { ...(await openPglite({ dataDir: join(config.DATA_DIR, 'pglite') })), kind: 'pglite' };
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
  const database = await openDatabase(config);
  await migrate(database.db);
  const deps = await buildNodeDeps({ config, db: database.db, databaseUrl: config.DATABASE_URL });
  const running = await startServer(deps, config.PORT, config.HOST);
  deps.logger.log('info', { msg: 'listening', url: running.url, database: database.kind, data_dir: config.DATA_DIR });
  // Hourly retention; with Postgres several processes may run, and the advisory lock picks one.
  const cleanup = scheduleCleanup(deps, { useLock: database.kind === 'postgres' });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    deps.logger.log('info', { msg: 'shutting down', signal });
    await running.close();
    await cleanup.stop();
    await database.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('runtime/node.ts')) {
  main().catch((err) => {
    console.error(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
    process.exit(1);
  });
}
