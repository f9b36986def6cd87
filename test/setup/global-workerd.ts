// workerd project setup: a database the Worker reaches through the Neon driver — the real
// Postgres (TEST_DATABASE_URL, a fresh database) or PGlite served over the wire protocol — and
// the WebSocket-to-TCP proxy in front of it; a plain TCP proxy where Hyperdrive's local connection
// string points; a meter counting round trips at both.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { openNodePostgres } from '../../src/adapters/db-node-postgres';
import { openPglite } from '../../src/adapters/db-pglite';
import { migrate } from '../../src/db/migrate';
import { startTcpProxy, startWsTcpProxy } from '../../scripts/dev/ws-tcp-proxy';
import { createSessionGate } from '../../scripts/dev/session-gate';
import { startRoundTripMeter } from './round-trip-meter';
import { copyDocsAssets } from '../../scripts/copy-docs-assets';

declare module 'vitest' {
  export interface ProvidedContext {
    workerdDatabaseUrl: string;
    wsProxy: string;
    /** The same database through a plain TCP proxy: the Hyperdrive binding's local connection string. */
    hyperdriveUrl: string;
    /** GET: round trips counted at both proxies since the last POST (which resets them). */
    meterUrl: string;
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
  const dbPort = Number(dbUrl.port || 5432);
  const counter = await startRoundTripMeter();
  const gate = base ? undefined : createSessionGate();
  const proxy = await startWsTcpProxy((host, port) => host === dbUrl.hostname && port === dbPort, { gate, meter: counter.meter('neon') });
  const tcp = await startTcpProxy(dbUrl.hostname, dbPort, { gate, meter: counter.meter('hyperdrive') });
  stops.unshift(() => proxy.close(), () => tcp.close(), () => counter.close());
  const viaTcp = new URL(url);
  viaTcp.host = tcp.address;
  // Miniflare refuses a Hyperdrive connection string without a password; trust auth never asks for it.
  viaTcp.password ||= 'unused';
  project.provide('workerdDatabaseUrl', url);
  project.provide('wsProxy', proxy.address);
  project.provide('hyperdriveUrl', viaTcp.toString());
  project.provide('meterUrl', counter.url);
  return async () => {
    for (const stop of stops) await stop().catch(() => undefined);
  };
}
