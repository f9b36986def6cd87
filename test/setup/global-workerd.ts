// workerd project setup: a database the Worker reaches through the Neon driver — the real
// Postgres (TEST_DATABASE_URL, a fresh database) or PGlite served over the wire protocol — and
// the WebSocket-to-TCP proxy in front of it.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { openNodePostgres } from '../../src/adapters/db-node-postgres';
import { openPglite } from '../../src/adapters/db-pglite';
import { migrate } from '../../src/db/migrate';
import { startWsTcpProxy } from '../../scripts/dev/ws-tcp-proxy';
import { copyDocsAssets } from '../../scripts/copy-docs-assets';

declare module 'vitest' {
  export interface ProvidedContext {
    workerdDatabaseUrl: string;
    wsProxy: string;
  }
}

export default async function setup(project: TestProject) {
  // The Worker's assets directory, which wrangler's build step fills (the test pool skips that step).
  copyDocsAssets();
  const base = process.env.TEST_DATABASE_URL;
  const stops: Array<() => Promise<unknown>> = [];
  let url: string;
  if (base) {
    const name = `orbital_w${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    await admin.query(`create database ${name}`);
    const u = new URL(base);
    u.pathname = `/${name}`;
    url = u.toString();
    const handle = openNodePostgres(url, 2);
    await migrate(handle.db);
    await handle.close();
    stops.push(async () => {
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
    });
  } else {
    const handle = await openPglite();
    await migrate(handle.db);
    const server = new PGLiteSocketServer({ db: handle.client, port: 0, host: '127.0.0.1', maxConnections: 64 });
    await server.start();
    const port = Number(server.getServerConn().split(':').pop());
    url = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
    stops.push(() => server.stop(), () => handle.close());
  }
  const dbUrl = new URL(url);
  const proxy = await startWsTcpProxy((host, port) => host === dbUrl.hostname && port === Number(dbUrl.port || 5432), { serialize: !base });
  stops.unshift(() => proxy.close());
  project.provide('workerdDatabaseUrl', url);
  project.provide('wsProxy', proxy.address);
  return async () => {
    for (const stop of stops) await stop().catch(() => undefined);
  };
}
