// A database that is down or missing: the Node server still starts (as `npm start` does), answers
// 503 UNAVAILABLE with Retry-After on every route that needs it, and logs the error's class and
// our own code location only — never the driver's text, which carries SQL and bound parameters.
import { createServer } from 'node:net';
import WebSocket from 'ws';
import pg from 'pg';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createOrbit, post, publicKey, registerUser } from '../support/api';
import { livePath } from '../support/live';
import { databaseNamed, freshDatabase, runEntry, startServerProcess, targetOf, type ServerProcess } from '../support/server-process';
import { holdablePath } from '../support/tcp-path';
import { expectCleanLog, expectUnavailableAnswers } from '../support/unavailable';

let server: ServerProcess | undefined;
afterEach(async () => {
  await server?.kill('SIGTERM');
  server = undefined;
});

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function expectUnavailable(databaseUrl: string) {
  server = await startServerProcess({ DATABASE_URL: databaseUrl, JWT_SECRET: 'x'.repeat(40), RATE_LIMIT: 'on' }, 60_000, 'listening');
  const username = await expectUnavailableAnswers((path, init) => fetch(server!.url + path, init));
  // The server listens before its first migration try ends, and logs in batches (up to 100 ms late).
  await vi.waitFor(() => expect(server!.output()).toContain('database unavailable at start'), { timeout: 10_000, interval: 50 });
  // Our own code's location only (a driver's or the runtime's frames are left out).
  for (const entry of expectCleanLog(server.output().split('\n'), username)) if (entry.at !== undefined) expect(entry.at).toMatch(/^(src|dist)\//);
}

describe('database down or missing (Node)', () => {
  it('nothing listening on the database port: 503 UNAVAILABLE with Retry-After', async () => {
    await expectUnavailable(`postgres://postgres@127.0.0.1:${await closedPort()}/orbital`);
  });

  it.skipIf(!process.env.TEST_DATABASE_URL)('a database that does not exist: 503 UNAVAILABLE; once created, migrated and served', async () => {
    const database = databaseNamed(process.env.TEST_DATABASE_URL!, 'orbital_missing');
    await expectUnavailable(database.url);
    try {
      await database.create();
      // Reachable but still without its tables until the next migration try (up to 5 s later):
      // 503 meanwhile, /ready included, never a 500 from a missing table.
      const meanwhile = new Set<string>();
      while (!server!.output().includes('migrations applied')) {
        const [ready, login] = await Promise.all([fetch(server!.url + '/ready'), fetch(server!.url + '/api/auth/login', post({ username: 'nobody_here', password: 'a long password' }))]);
        meanwhile.add(`ready ${ready.status}`).add(`login ${login.status}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      // (The log line trails the migration by up to 100 ms: answers of a served database may come first.)
      expect([...meanwhile].filter((seen) => !['ready 200', 'login 401'].includes(seen)).sort()).toEqual(['login 503', 'ready 503']);
      const res = await fetch(server!.url + '/api/auth/register', post({ username: `back_${database.name.slice(-8)}`, password: 'a long password', public_key: publicKey() }));
      expect(res.status).toBe(201);
    } finally {
      await server?.kill('SIGTERM');
      await database.drop();
    }
  });
});

describe('a migration that takes long at start (Node, Postgres)', () => {
  /** A server started on a new database while another client holds the lock its migrations take (src/db/migrate.ts). */
  async function withMigrationsHeld(work: (ctx: { holder: pg.Client; name: string }) => Promise<void>) {
    const database = await freshDatabase(process.env.TEST_DATABASE_URL!, 'orbital_slow');
    const holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    try {
      await holder.query('select pg_advisory_lock(727001)');
      server = await startServerProcess({ DATABASE_URL: database.url, JWT_SECRET: 'x'.repeat(40), RATE_LIMIT: 'off' }, 20_000, 'listening');
      await work({ holder, name: database.name });
    } finally {
      await holder.end();
      await server?.kill('SIGKILL');
      server = undefined;
      await database.drop();
    }
  }

  it.skipIf(!process.env.TEST_DATABASE_URL)('the server listens meanwhile: /health 200, every other route 503; served once it ends', { timeout: 60_000 }, async () => {
    await withMigrationsHeld(async ({ holder }) => {
      const answers = async () => {
        const [health, ready, login] = await Promise.all([fetch(server!.url + '/health'), fetch(server!.url + '/ready'), fetch(server!.url + '/api/auth/login', post({ username: 'nobody_here', password: 'a long password' }))]);
        return { health: health.status, ready: ready.status, login: login.status, retryAfter: login.headers.get('retry-after') !== null, code: ((await login.json()) as { error: { code: string } }).error.code };
      };
      expect(await answers()).toEqual({ health: 200, ready: 503, login: 503, retryAfter: true, code: 'UNAVAILABLE' });
      await new Promise((resolve) => setTimeout(resolve, 2000));
      expect(await answers()).toEqual({ health: 200, ready: 503, login: 503, retryAfter: true, code: 'UNAVAILABLE' });
      await holder.query('select pg_advisory_unlock(727001)');
      await vi.waitFor(async () => expect((await fetch(server!.url + '/ready')).status).toBe(200), { timeout: 10_000, interval: 50 });
      const res = await fetch(server!.url + '/api/auth/register', post({ username: 'after_slow', password: 'a long password', public_key: publicKey() }));
      expect(res.status).toBe(201);
    });
  });

  it.skipIf(!process.env.TEST_DATABASE_URL)('SIGTERM meanwhile: exits 0 through its shutdown, and leaves no connection waiting on the lock', { timeout: 60_000 }, async () => {
    await withMigrationsHeld(async ({ holder, name }) => {
      const waiting = async () =>
        Number((await holder.query(`select count(*) from pg_stat_activity where datname = $1 and wait_event_type = 'Lock' and pid <> pg_backend_pid()`, [name])).rows[0].count);
      await vi.waitFor(async () => expect(await waiting()).toBe(1), { timeout: 10_000, interval: 100 });
      expect(await server!.kill('SIGTERM')).toBe(0);
      expect(server!.output()).toContain('"msg":"shutting down"');
      // Postgres learns of the client's end while its backend waits (client_connection_check_interval).
      await vi.waitFor(async () => expect(await waiting()).toBe(0), { timeout: 5000, interval: 100 });
    });
  });
});

describe('migrations the database refuses (Node, Postgres)', () => {
  const base = process.env.TEST_DATABASE_URL;
  /** A database whose schema is at odds with the first migration: a table of its own by that name. */
  async function conflicting(url: string) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('create table blob_deletions (id int)');
    await client.end();
  }
  /** Runs the server to its exit: its code and what it printed. */
  async function exitOf(env: Record<string, string>) {
    const proc = runEntry('src/runtime/node.ts', { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', JWT_SECRET: 'x'.repeat(40), RATE_LIMIT: 'off', ...env });
    const code = await Promise.race([proc.exited, new Promise<string>((resolve) => setTimeout(resolve, 40_000, 'still running'))]);
    await proc.kill('SIGKILL');
    return { code, output: proc.output() };
  }
  const expectStopped = ({ code, output }: { code: number | string | null; output: string }) => {
    expect(code, output).toBe(78);
    // Postgres' reason, not drizzle's "Failed query: CREATE TABLE …" with its statement.
    expect(output).toMatch(/"msg":"migrations failed; stopping","reason":"relation \\"blob_deletions\\" already exists"/);
    expect(output).not.toContain('Failed query');
  };

  it.skipIf(!base).each<{ title: string; env: Record<string, string> }>([
    { title: 'one process: exits 78 with the reason', env: {} },
    { title: 'WORKERS=2: the primary exits 78 too, after its workers listened (a supervisor restarts on failure)', env: { WORKERS: '2' } },
  ])('$title', { timeout: 60_000 }, async ({ env }) => {
    const database = await freshDatabase(base!, 'orbital_refused');
    try {
      await conflicting(database.url);
      expectStopped(await exitOf({ DATABASE_URL: database.url, ...env }));
    } finally {
      await database.drop();
    }
  });

  it.skipIf(!base)('a database missing at start and created at odds with the migrations: exits 78, not 503 for ever', { timeout: 60_000 }, async () => {
    const database = databaseNamed(base!, 'orbital_late');
    // Made from a template holding the table: it never exists without it (a retry could slip in between).
    const template = await freshDatabase(base!, 'orbital_template');
    await conflicting(template.url);
    try {
      const run = exitOf({ DATABASE_URL: database.url });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await database.create(template.name);
      expectStopped(await run);
    } finally {
      await database.drop();
      await template.drop();
    }
  });
});

describe('a database that stops answering (Node, Postgres)', () => {
  it.skipIf(!process.env.TEST_DATABASE_URL)('does not hold up SIGTERM: the server still exits, its live sockets closed 1001', { timeout: 120_000 }, async () => {
    const base = new URL(process.env.TEST_DATABASE_URL!);
    const database = await freshDatabase(base.toString(), 'orbital_held');
    const path = await holdablePath(base);
    try {
      const url = new URL(database.url);
      url.host = `127.0.0.1:${path.port}`;
      server = await startServerProcess({ DATABASE_URL: url.toString(), JWT_SECRET: 'x'.repeat(40), RATE_LIMIT: 'off' });
      const t = targetOf(server);
      const owner = await registerUser(t);
      const orbit = await createOrbit(t, owner);
      const ws = new WebSocket(server.url.replace('http', 'ws') + livePath(orbit.id), { headers: owner.auth });
      await new Promise((resolve, reject) => (ws.once('message', resolve), ws.once('error', reject)));
      const closed = new Promise<number>((resolve) => ws.once('close', resolve));
      path.hold();
      // A readiness probe gets its answer (503) in bounded time, not after the pool's 35 s.
      const asked = Date.now();
      expect((await fetch(server.url + '/ready')).status).toBe(503);
      expect(Date.now() - asked).toBeLessThan(10_000);
      server.proc.kill('SIGTERM');
      const exited = await Promise.race([server.exited.then(() => 'exited'), new Promise((r) => setTimeout(r, 60_000, 'still running'))]);
      expect([exited, await closed]).toEqual(['exited', 1001]);
    } finally {
      path.close();
      await server?.kill('SIGKILL');
      await database.drop();
    }
  });
});
