// Builds the ports for the Node runtime from a configuration and an open database.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context } from 'hono';
import type { Config } from '../config';
import type { Clock, Db, Deps, LiveGateway, Logger, PasswordHasher } from '../deps';
import { fsBlobStore } from '../adapters/blob-fs';
import { s3BlobStore, s3Options } from '../adapters/blob-s3';
import { nodeDocsAssets } from '../adapters/docs-assets-node';
import { LocalFanout } from '../adapters/fanout-local';
import { NodeLiveHub, type NodeLiveHubOptions } from '../adapters/live-node';
import { eventsNotice, farewellEvent, listenForNotices, sendNotice, type LiveNotice } from '../adapters/live-notify';
import { jsonLogger } from '../adapters/logger-json';
import type { PromMetrics } from '../adapters/metrics-prom';
import { argon2Hashers, type PasswordHashCost } from '../domain/password-hasher';
import { createPgLimiter } from '../domain/rate-limit';
import { SessionCache } from '../domain/session-cache';

let hashers: Promise<(cost: PasswordHashCost) => PasswordHasher> | undefined;

/** The argon2 WASM module, compiled once per process. */
export async function loadHasher(cost: PasswordHashCost = 'owasp'): Promise<PasswordHasher> {
  hashers ??= (async () => {
    const path = createRequire(import.meta.url).resolve('@phi-ag/argon2/argon2.wasm');
    const { instance } = await WebAssembly.instantiate(await readFile(path));
    return argon2Hashers(instance);
  })();
  return (await hashers)(cost);
}

export function nodeClientIp(trustProxy: boolean) {
  return (c: Context): string => {
    if (trustProxy) {
      // The last hop is the one our own proxy added; earlier entries are the client's to forge.
      const forwarded = c.req.header('x-forwarded-for')?.split(',').map((s) => s.trim()).filter(Boolean);
      if (forwarded?.length) return forwarded[forwarded.length - 1]!;
    }
    try {
      return getConnInfo(c).remote.address ?? 'unknown';
    } catch {
      return 'unknown';
    }
  };
}

export const systemClock: Clock = { now: () => new Date() };

export interface NodeDepsOptions {
  config: Config;
  db: Db;
  blobRoot?: string;
  clock?: Clock;
  logger?: Logger;
  fanout?: LocalFanout;
  /** Another live gateway instead of this process's hub. */
  live?: LiveGateway;
  /** Hub settings (e.g. a short liveness interval in tests). */
  liveOptions?: Pick<NodeLiveHubOptions, 'livenessIntervalMs' | 'pollIntervalMs' | 'maxBehindBytes' | 'heartbeatIntervalMs' | 'leaseTtlMs'>;
  /** The Postgres URL when not on PGlite: other processes are reached with LISTEN/NOTIFY. */
  databaseUrl?: string;
  /** Counters for GET /metrics (METRICS=on); without them nothing is measured. */
  metrics?: PromMetrics;
  /** True until the database has its schema (Deps.databasePending). */
  databasePending?(): boolean;
}

export interface NodeDeps extends Deps {
  fanout: LocalFanout;
  /** Stops the live hub's timers and the LISTEN connection. */
  stop(): Promise<void>;
}

export async function buildNodeDeps(options: NodeDepsOptions): Promise<NodeDeps> {
  const { config, db } = options;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? jsonLogger(config.LOG_LEVEL);
  const { fanout, live, stop } = await buildLive(options, clock, logger);
  const { metrics } = options;
  if (metrics) fanout.onEvents((_groupId, events) => metrics.eventsFannedOut.inc(events.length));
  return {
    config,
    db,
    blobs: config.BLOB_STORE === 's3' ? s3BlobStore(s3Options(config)) : fsBlobStore(resolve(options.blobRoot ?? join(config.DATA_DIR, 'blobs'))),
    fanout,
    live,
    stop,
    clock,
    limiter: createPgLimiter(db, clock, config.RATE_LIMIT),
    metrics,
    databasePending: options.databasePending,
    hasher: await loadHasher(config.PASSWORD_HASH_COST),
    sessions: new SessionCache(),
    logger,
    docsAssets: nodeDocsAssets(),
    clientIp: nodeClientIp(config.TRUST_PROXY),
    defer(work) {
      work.catch((err) => logger.log('error', { msg: 'deferred work failed', error: err instanceof Error ? err.name : String(err) }));
    },
  };
}

/**
 * This process's live hub on the in-process fan-out; with a Postgres URL also NOTIFY to and LISTEN
 * from the other processes on the same database (PGlite is one process: nothing to tell).
 */
async function buildLive(options: NodeDepsOptions, clock: Clock, logger: Logger) {
  const { db, databaseUrl } = options;
  const self = randomUUID();
  const sent = options.metrics?.notices.labels('sent');
  const notify = databaseUrl ? (notice: LiveNotice) => (sent?.inc(), sendNotice(db, notice)) : undefined;
  const fanout = options.fanout ?? new LocalFanout(notify && ((groupId, events) => notify(eventsNotice(self, groupId, events))));
  if (options.live) return { fanout, live: options.live, stop: async () => {} };
  const received = options.metrics?.notices.labels('received');

  const hub = new NodeLiveHub({
    db,
    clock,
    logger,
    jwtSecret: options.config.jwtSecret,
    // Only other processes' notifications can go missing; PGlite is one process.
    pollIntervalMs: databaseUrl ? 1000 : 0,
    databasePending: options.databasePending,
    ...options.liveOptions,
    onDelivered: options.metrics && ((events) => options.metrics!.fannedOut(events, clock.now().getTime())),
    onTyping:
      notify &&
      ((groupId, userId, threadId) =>
        void notify({ p: self, g: groupId, t: { u: userId, th: threadId } }).catch(() => logger.log('warn', { msg: 'typing NOTIFY failed' }))),
  });
  const unlisten = hub.listen(fanout);
  const listener =
    databaseUrl &&
    listenForNotices(
      options.config.DATABASE_LISTEN_URL ?? databaseUrl,
      self,
      (notice) => {
        received?.inc();
        const farewell = farewellEvent(notice);
        if (farewell) hub.published(notice.g, [farewell]);
        else if (notice.t) hub.typing(notice.g, notice.t.u, notice.t.th);
        else if (typeof notice.s === 'number') hub.notified(notice.g, notice.s);
      },
      logger,
    );
  if (listener) await listener.ready;
  return {
    fanout,
    live: hub,
    async stop() {
      unlisten();
      await hub.close();
      if (listener) await listener.close();
    },
  };
}
