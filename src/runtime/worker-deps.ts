// Builds the ports for one Workers request (or one cron run, or one Durable Object call).
import type { AnalyticsEngineDataset, DurableObjectNamespace, ExecutionContext, Fetcher, Hyperdrive, R2Bucket } from '@cloudflare/workers-types';
import type { Context } from 'hono';
import argon2Wasm from '@phi-ag/argon2/argon2.wasm';
import { parseConfig } from '../config';
import type { Clock, Deps, LiveGateway, PasswordHasher } from '../deps';
import { openNeon } from '../adapters/db-neon';
import { openHyperdrive } from '../adapters/db-hyperdrive';
import { r2BlobStore } from '../adapters/blob-r2';
import { durableObjectFanout } from '../adapters/fanout-do';
import { durableObjectLive } from '../adapters/live-do';
import { jsonLogger } from '../adapters/logger-json';
import { analyticsEngineMetrics } from '../adapters/metrics-analytics-engine';
import { argon2Hashers, INSECURE_COST_WARNING, type PasswordHashCost } from '../domain/password-hasher';
import { createPgLimiter } from '../domain/rate-limit';
import { SessionCache } from '../domain/session-cache';
import { migrate } from '../db/migrate';

export interface WorkerEnv {
  DATABASE_URL: string;
  JWT_SECRET: string;
  DB_WS_PROXY?: string;
  /** Postgres through Hyperdrive; when bound, DATABASE_URL is not used. */
  HYPERDRIVE?: Hyperdrive;
  ORBIT_ROOM: DurableObjectNamespace;
  MEDIA: R2Bucket;
  /** Workers static assets: the docs page's files (swagger-ui-dist). */
  ASSETS?: Fetcher;
  /** Workers Analytics Engine: when bound, the counters Node serves at /metrics are written here. */
  ANALYTICS?: AnalyticsEngineDataset;
  [key: string]: unknown;
}

// Per-isolate state that holds no I/O: a compiled WASM instance and caches.
let hashers: ((cost: PasswordHashCost) => PasswordHasher) | undefined;
let warnedOfCost = false;
const sessionCache = new SessionCache();
let migrated: Promise<unknown> | undefined;

const clock: Clock = { now: () => new Date() };

export interface WorkerDeps extends Deps {
  /** Waits for deferred work, then releases the request's database pool. */
  release(): Promise<void>;
}

export function buildWorkerDeps(env: WorkerEnv, ctx: Pick<ExecutionContext, 'waitUntil'>, live?: LiveGateway): WorkerDeps {
  const config = parseConfig(env);
  const metrics = analyticsEngineMetrics(env);
  const database = env.HYPERDRIVE ? openHyperdrive(env.HYPERDRIVE.connectionString) : openNeon(env.DATABASE_URL, { wsProxy: env.DB_WS_PROXY || undefined });
  hashers ??= argon2Hashers(new WebAssembly.Instance(argon2Wasm, {}));
  const logger = jsonLogger(config.LOG_LEVEL, (line) => console.log(line));
  if (config.PASSWORD_HASH_COST !== 'owasp' && !warnedOfCost) {
    warnedOfCost = true;
    logger.log('error', { msg: INSECURE_COST_WARNING });
  }
  const pending: Promise<unknown>[] = [];
  return {
    config,
    db: database.db,
    blobs: r2BlobStore(env.MEDIA),
    fanout: durableObjectFanout(env.ORBIT_ROOM, metrics && ((n) => metrics.eventsFannedOut(n))),
    live: live ?? durableObjectLive(env.ORBIT_ROOM, database.db, metrics && (() => metrics.socketOpened())),
    metrics,
    clock,
    limiter: createPgLimiter(database.db, clock, config.RATE_LIMIT),
    hasher: hashers(config.PASSWORD_HASH_COST),
    sessions: sessionCache,
    logger,
    docsAssets: async (file) => {
      if (!env.ASSETS) return null;
      const res = await env.ASSETS.fetch(`https://assets.local/${file}`);
      return res.ok ? (res as unknown as Response) : null;
    },
    clientIp: (c: Context) => c.req.header('cf-connecting-ip') ?? 'unknown',
    defer(work) {
      const settled = work.catch((err) => logger.log('error', { msg: 'deferred work failed', error: err instanceof Error ? err.name : String(err) }));
      pending.push(settled);
      ctx.waitUntil(settled);
    },
    async release() {
      while (pending.length) await Promise.allSettled(pending.splice(0));
      await database.close();
    },
  };
}

/** Applies the bundled migrations once per isolate (cheap when already applied). */
export function ensureMigrated(deps: Deps): Promise<unknown> {
  migrated ??= migrate(deps.db).catch((err) => {
    migrated = undefined;
    throw err;
  });
  return migrated;
}
