// WORKERS=<n|auto>: n server processes on one port with node:cluster. The primary only
// supervises: it settles the JWT secret once and hands it to every worker, replaces a worker that
// dies, and on SIGTERM/SIGINT lets each worker shut down gracefully before it exits itself.
// Workers run the ordinary server (src/runtime/node.ts); they share Postgres, so rate limits,
// idempotency and live events already cross processes, and the cleanup's advisory lock picks one.
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Config } from '../config';
import type { Logger } from '../deps';
import { jsonLogger } from '../adapters/logger-json';
import { serveClusterMetrics } from '../adapters/metrics-cluster';

/** A worker that dies sooner than this after its start counts as a crash loop: the next waits. */
const QUICK_DEATH_MS = 10_000;
const MAX_RESTART_DELAY_MS = 10_000;
/** Workers get this long to finish in-flight requests (their own forced close comes at 10 s). */
const SHUTDOWN_GRACE_MS = 30_000;

export function workerCount(setting: Config['WORKERS']): number {
  return setting === 'auto' ? availableParallelism() : setting;
}

/**
 * In the process `npm start` began, with WORKERS above 1: becomes the cluster's primary and
 * answers true (the caller then does nothing else). Answers false in a worker or with one process.
 */
export function startClusterPrimary(config: Config): boolean {
  const count = workerCount(config.WORKERS);
  if (cluster.isWorker || count <= 1) return false;
  if (!config.DATABASE_URL) {
    console.error(`WORKERS=${config.WORKERS} needs DATABASE_URL: the embedded database (PGlite) can be opened by one process only`);
    process.exit(1);
  }
  // A scrape reaches any one worker: it answers with every worker's metrics, collected here.
  if (config.METRICS) serveClusterMetrics();
  superviseWorkers(count, config, jsonLogger(config.LOG_LEVEL));
  return true;
}

/**
 * The exit code of a server whose migrations failed for a reason other than a database out of
 * reach (a schema at odds with them): a restart would fail the same way, so the primary stops too.
 */
export const EXIT_MIGRATIONS_FAILED = 78;

function superviseWorkers(count: number, config: Config, logger: Logger) {
  // The secret the primary read or generated (JWT_SECRET, else DATA_DIR/jwt-secret), passed to
  // every worker so tokens signed by one verify on all.
  const env = { JWT_SECRET: new TextDecoder().decode(config.jwtSecret) };
  const startedAt = new Map<Worker, number>();
  let restartDelay = 0;
  let stopping = false;
  let served = false;

  const fork = () => {
    const worker = cluster.fork(env);
    startedAt.set(worker, Date.now());
    worker.once('listening', () => {
      served = true;
      logger.log('info', { msg: 'worker listening', pid: worker.process.pid });
    });
  };

  cluster.on('exit', (worker, code, signal) => {
    const lived = Date.now() - (startedAt.get(worker) ?? 0);
    startedAt.delete(worker);
    if (stopping) return;
    if (!served || code === EXIT_MIGRATIONS_FAILED) {
      // No worker ever started (bad database URL, port in use …), or the migrations failed:
      // restarting would only repeat the worker's own error line, which is already printed.
      stopping = true;
      for (const other of startedAt.keys()) other.process.kill('SIGTERM');
      process.exit(code || 1);
    }
    logger.log('warn', { msg: 'worker died', pid: worker.process.pid, code, signal, lived_ms: lived });
    restartDelay = lived < QUICK_DEATH_MS ? Math.min(MAX_RESTART_DELAY_MS, Math.max(250, restartDelay * 2)) : 0;
    // Kept referenced: with every worker dead, the timer is what keeps the primary up to restart one.
    setTimeout(() => !stopping && fork(), restartDelay);
  });

  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.log('info', { msg: 'shutting down workers', signal, workers: startedAt.size });
    for (const worker of startedAt.keys()) worker.process.kill('SIGTERM');
    const force = setTimeout(() => {
      for (const worker of startedAt.keys()) worker.process.kill('SIGKILL');
    }, SHUTDOWN_GRACE_MS);
    const done = () => {
      if (startedAt.size) return;
      clearTimeout(force);
      process.exit(0);
    };
    cluster.on('exit', done);
    done();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  logger.log('info', { msg: 'starting workers', workers: count, port: config.PORT });
  for (let i = 0; i < count; i++) fork();
}
