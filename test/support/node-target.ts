// The Node target: a fresh database (PGlite on a copy of the migrated folder, or a Postgres database
// from the migrated template), the real Node server on a random port, real sockets.
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import WebSocket from 'ws';
import { parseConfig } from '../../src/config';
import { openNodePostgres } from '../../src/adapters/db-node-postgres';
import { openPglite } from '../../src/adapters/db-pglite';
import { runCleanup } from '../../src/domain/cleanup';
import { buildNodeDeps, type NodeDepsOptions } from '../../src/runtime/node-deps';
import { startServer, type RequestTimeouts } from '../../src/runtime/node-server';
import { NodeLiveHub } from '../../src/adapters/live-node';
import { ExchangeRecorder } from './openapi-check';
import { queueSocket } from './socket-queue';
import { SocketRefused, TEST_ENV, TEST_PGLITE_SETTINGS, type Target, type TargetOptions, type TestSocket } from './types';
import { withDatabase } from '../setup/global-node';

export const targetName = 'node' as const;

/** A Postgres database from the migrated template, or PGlite on a copy of the migrated folder in `dir`. */
async function openTestDatabase(dir: string) {
  const template = inject('pgTemplate');
  if (template) {
    const base = inject('pgBase');
    const name = `${inject('runId')}_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    await admin.query(`create database ${name} template ${template}`);
    await admin.end();
    const url = withDatabase(base, name);
    const handle = openNodePostgres(url, 10);
    return {
      db: handle.db,
      url,
      query: async (text: string, params?: unknown[]) => (await handle.pool.query(text, params as unknown[])).rows,
      close: async () => {
        await handle.close();
        const drop = new pg.Client({ connectionString: base });
        await drop.connect();
        await drop.query(`drop database if exists ${name} with (force)`);
        await drop.end();
      },
    };
  }
  const dataDir = join(dir, 'pglite');
  cpSync(inject('pgliteMigrated'), dataDir, { recursive: true });
  const handle = await openPglite({ dataDir, settings: TEST_PGLITE_SETTINGS });
  return {
    db: handle.db,
    url: undefined,
    query: async (text: string, params?: unknown[]) => (await handle.client.query(text, params)).rows as Record<string, unknown>[],
    close: () => handle.close(),
  };
}

export async function createTarget(
  options: TargetOptions & { live?: NodeDepsOptions['liveOptions']; timeouts?: RequestTimeouts } = {},
): Promise<Target & { deps: Awaited<ReturnType<typeof buildNodeDeps>>; databaseUrl?: string; url: string; httpServer: Awaited<ReturnType<typeof startServer>>['server'] }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'orbital-node-'));
  const env = { ...TEST_ENV, DATA_DIR: dataDir, ...options.env };
  const database = await openTestDatabase(dataDir);
  const config = parseConfig(env);
  const deps = await buildNodeDeps({
    config,
    db: database.db,
    blobRoot: join(dataDir, 'blobs'),
    databaseUrl: database.url,
    liveOptions: options.live,
    logger: options.logger,
  });
  const server = await startServer(deps, 0, '127.0.0.1', options.timeouts);
  // The server and its client share this process, whose event loop PGlite blocks for seconds at a
  // time: the server's 5 s keep-alive timer could then fire just as fetch reuses the idle
  // connection, a reset no client of a server in another process sees. Idle connections stay.
  if ('keepAliveTimeout' in server.server) server.server.keepAliveTimeout = 0;
  const withIp = (init: { ip?: string; headers?: HeadersInit } = {}) => {
    const headers = new Headers(init.headers);
    if (init.ip) headers.set('x-forwarded-for', init.ip);
    return headers;
  };
  const objects = join(dataDir, 'blobs', 'objects');
  const exchanges = new ExchangeRecorder();
  return {
    name: 'node',
    env,
    deps,
    databaseUrl: database.url,
    url: server.url,
    httpServer: server.server,
    fetch: async (path, init = {}) => {
      const res = await fetch(server.url + path, { ...init, headers: withIp(init) });
      await exchanges.record(init.method ?? 'GET', server.url + path, res);
      return res;
    },
    sql: async <T>(text: string, params?: unknown[]) => (await database.query(text, params)) as T[],
    cleanup: async (opts = {}) => {
      await runCleanup(deps, opts);
    },
    socket: (path, headers = {}) =>
      connectSocket(server.url, path, headers).catch((err) => {
        if (err instanceof SocketRefused) exchanges.recordRefusal(path, err.status, err.body);
        throw err;
      }),
    withDeps: (work) => work(deps),
    runLiveChecks: async () => {
      if (deps.live instanceof NodeLiveHub) await deps.live.runChecks();
    },
    blobKeys: async (prefix = '') => {
      const keys: string[] = [];
      const walk = (dir: string, rel: string) => {
        let entries: string[];
        try {
          entries = readdirSync(dir);
        } catch {
          return;
        }
        if (entries.some((e) => e === 'manifest.json' || e.endsWith('.part'))) keys.push(rel);
        for (const e of entries) if (statSync(join(dir, e)).isDirectory()) walk(join(dir, e), rel ? `${rel}/${e}` : e);
      };
      walk(objects, '');
      return keys.filter((k) => k.startsWith(prefix));
    },
    close: async () => {
      try {
        // Every answer of the test file, checked against the document the server serves.
        await exchanges.check(server.url);
      } finally {
        await closeAll();
      }
    },
  };
  async function closeAll() {
    await server.close();
    await database.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** A live socket to a Node server at `baseUrl`; rejects with SocketRefused when the upgrade is refused. */
export function connectSocket(baseUrl: string, path: string, headers: Record<string, string> = {}): Promise<TestSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(baseUrl.replace('http', 'ws') + path, { headers });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => reject(new SocketRefused(res.statusCode ?? 0, body)));
    });
    ws.once('error', (err) => reject(err));
    const socket = queueSocket(ws as never);
    ws.once('open', () => resolve(socket));
  });
}
