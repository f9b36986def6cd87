// Builds the ports for the Node runtime from a configuration and an open database.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context } from 'hono';
import type { Config } from '../config';
import type { Clock, Db, Deps, LiveGateway, Logger, PasswordHasher } from '../deps';
import { fsBlobStore } from '../adapters/blob-fs';
import { nodeDocsAssets } from '../adapters/docs-assets-node';
import { LocalFanout } from '../adapters/fanout-local';
import { jsonLogger } from '../adapters/logger-json';
import { argon2Hasher } from '../domain/password-hasher';
import { createPgLimiter } from '../domain/rate-limit';
import { SessionCache } from '../domain/session-cache';

let hasher: Promise<PasswordHasher> | undefined;

/** The argon2 WASM module, compiled once per process. */
export function loadHasher(): Promise<PasswordHasher> {
  hasher ??= (async () => {
    const path = createRequire(import.meta.url).resolve('@phi-ag/argon2/argon2.wasm');
    const { instance } = await WebAssembly.instantiate(await readFile(path));
    return argon2Hasher(instance);
  })();
  return hasher;
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
  live?: LiveGateway;
  /** The Postgres URL when not on PGlite: other processes are reached with LISTEN/NOTIFY. */
  databaseUrl?: string;
}

export async function buildNodeDeps(options: NodeDepsOptions): Promise<Deps & { fanout: LocalFanout }> {
  const { config, db } = options;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? jsonLogger(config.LOG_LEVEL);
  return {
    config,
    db,
    blobs: fsBlobStore(resolve(options.blobRoot ?? join(config.DATA_DIR, 'blobs'))),
    fanout: options.fanout ?? new LocalFanout(),
    live: options.live ?? unavailableLive,
    clock,
    limiter: createPgLimiter(db, clock, config.RATE_LIMIT),
    hasher: await loadHasher(),
    sessions: new SessionCache(),
    logger,
    docsAssets: nodeDocsAssets(),
    clientIp: nodeClientIp(config.TRUST_PROXY),
    defer(work) {
      work.catch((err) => logger.log('error', { msg: 'deferred work failed', error: err instanceof Error ? err.name : String(err) }));
    },
  };
}

const unavailableLive: LiveGateway = {
  upgrade() {
    throw new Error('live sockets are not wired on this server');
  },
  async countSockets() {
    return 0;
  },
};
