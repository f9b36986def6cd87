// workerd project setup. Each workerd runner (one Miniflare, running its share of the files one
// after another) asks this process for a database of its own when it starts, so files run on
// several runners at once without one file's cleanup or budgets reaching another's rows. A database
// is the real Postgres (TEST_DATABASE_URL: a copy of a migrated template) or PGlite served over the
// wire protocol (a copy of a migrated folder), with the WebSocket-to-TCP proxy the Neon driver
// uses, a plain TCP proxy where Hyperdrive's local connection string points, and a meter counting
// round trips at both.
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
import { TEST_PGLITE_SETTINGS } from '../support/types';
import { withDatabase } from './global-node';

/** What one runner's Worker is bound to. */
export interface WorkerdDatabase {
  databaseUrl: string;
  wsProxy: string;
  /** The same database through a plain TCP proxy: the Hyperdrive binding's local connection string. */
  hyperdriveUrl: string;
  /** GET: round trips counted at both proxies since the last POST (which resets them). */
  meterUrl: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** POST: a new database for a starting runner, as a WorkerdDatabase. */
    workerdDatabases: string;
  }
}

type Stop = () => Promise<unknown>;

/** A migrated database to copy: a Postgres template, or a PGlite folder. */
async function migratedOrigin(stops: Stop[]): Promise<{ copy(stops: Stop[]): Promise<string> }> {
  const base = process.env.TEST_DATABASE_URL;
  if (base) {
    const prefix = `orbital_w${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    stops.push(async () => {
      const { rows } = await admin.query<{ datname: string }>('select datname from pg_database where datname like $1', [`${prefix}%`]);
      for (const { datname } of rows) await admin.query(`drop database if exists ${datname} with (force)`);
      await admin.end();
    });
    await admin.query(`create database ${prefix}_tpl`);
    const handle = openNodePostgres(withDatabase(base, `${prefix}_tpl`), 2);
    await migrate(handle.db);
    await handle.close();
    let n = 0;
    return {
      async copy() {
        const name = `${prefix}_${++n}`;
        await admin.query(`create database ${name} template ${prefix}_tpl`);
        return withDatabase(base, name);
      },
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'orbital-workerd-'));
  stops.push(async () => rmSync(dir, { recursive: true, force: true }));
  const migrated = join(dir, 'migrated');
  const handle = await openPglite({ dataDir: migrated });
  await migrate(handle.db);
  await handle.close();
  let n = 0;
  return {
    async copy(own) {
      const dataDir = join(dir, `db${++n}`);
      cpSync(migrated, dataDir, { recursive: true });
      const db = await openPglite({ dataDir, settings: TEST_PGLITE_SETTINGS });
      const server = new PGLiteSocketServer({ db: db.client, port: 0, host: '127.0.0.1', maxConnections: 64 });
      await server.start();
      own.push(() => server.stop(), () => db.close());
      return `postgres://postgres:postgres@127.0.0.1:${server.getServerConn().split(':').pop()}/postgres`;
    },
  };
}

async function provision(origin: { copy(stops: Stop[]): Promise<string> }, stops: Stop[]): Promise<WorkerdDatabase> {
  const own: Stop[] = [];
  stops.unshift(async () => {
    for (const stop of own) await stop().catch(() => undefined);
  });
  const url = await origin.copy(own);
  const dbUrl = new URL(url);
  const dbPort = Number(dbUrl.port || 5432);
  const counter = await startRoundTripMeter();
  // PGlite serves one session at a time: the gate queues the others.
  const gate = process.env.TEST_DATABASE_URL ? undefined : createSessionGate();
  const proxy = await startWsTcpProxy((host, port) => host === dbUrl.hostname && port === dbPort, { gate, meter: counter.meter('neon') });
  const tcp = await startTcpProxy(dbUrl.hostname, dbPort, { gate, meter: counter.meter('hyperdrive') });
  own.unshift(() => proxy.close(), () => tcp.close(), () => counter.close());
  const viaTcp = new URL(url);
  viaTcp.host = tcp.address;
  // Miniflare refuses a Hyperdrive connection string without a password; trust auth never asks for it.
  viaTcp.password ||= 'unused';
  return { databaseUrl: url, wsProxy: proxy.address, hyperdriveUrl: viaTcp.toString(), meterUrl: counter.url };
}

export default async function setup(project: TestProject) {
  // The Worker's assets directory, which wrangler's build step fills (the test pool skips that step).
  copyDocsAssets();
  const stops: Stop[] = [];
  const origin = await migratedOrigin(stops);
  const broker = http.createServer((req, res) => {
    provision(origin, stops).then(
      (database) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(database)),
      (err) => res.writeHead(500).end(err instanceof Error ? (err.stack ?? err.message) : String(err)),
    );
  });
  await new Promise<void>((resolve) => broker.listen(0, '127.0.0.1', resolve));
  project.provide('workerdDatabases', `http://127.0.0.1:${(broker.address() as AddressInfo).port}/`);
  return async () => {
    await new Promise((resolve) => broker.close(resolve));
    // Newest first: each runner's proxies and database, then the template or folder.
    for (const stop of stops) await stop().catch(() => undefined);
  };
}
