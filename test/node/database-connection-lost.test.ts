// Postgres ending the server's connections while writes are in flight (a restart, a failover, an
// operator's pg_terminate_backend): the writes caught in it fail with 503, the server stays up, and
// once the database is back every write succeeds. A connection checked out for a transaction
// carries no error listener of pg-pool's, so its reset used to be an uncaught error that ended the
// process. And connections that go silent (a partition) fail their statements after the pool's
// query timeout instead of holding its slots for ever. Needs Postgres (TEST_DATABASE_URL).
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { openNodePostgres } from '../../src/adapters/db-node-postgres';
import { databaseUnavailable } from '../../src/http/errors';
import { b64, createOrbit, post, registerUser, type TestUser } from '../support/api';
import { newThread } from '../support/content';
import { livePath } from '../support/live';
import { complete, uploadFile } from '../support/media';
import { freshDatabase, startServerProcess, targetOf, type ServerProcess } from '../support/server-process';
import { holdablePath } from '../support/tcp-path';
import type { Target } from '../support/types';

const base = process.env.TEST_DATABASE_URL;
if (!base) console.warn('database-connection-lost: skipped (set TEST_DATABASE_URL)');

let server: ServerProcess | undefined;
afterEach(async () => {
  await server?.kill('SIGKILL');
  server = undefined;
});

/** A server on a database of its own, an orbit in it, and an admin connection to that database's server. */
async function withServer(work: (ctx: { t: Target; owner: TestUser; orbitId: string; admin: pg.Client; name: string }) => Promise<void>) {
  const database = await freshDatabase(base!, 'orbital_lost');
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  try {
    server = await startServerProcess({ DATABASE_URL: database.url, JWT_SECRET: 'x'.repeat(40), RATE_LIMIT: 'off' });
    const t = targetOf(server);
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    await work({ t, owner, orbitId: orbit.id, admin, name: database.name });
    expect(server.proc.exitCode, server.output().slice(-2000)).toBeNull();
  } finally {
    await server?.kill('SIGKILL');
    server = undefined;
    await admin.end();
    await database.drop();
  }
}

const endConnections = (admin: pg.Client, name: string) =>
  admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [name]);

/** Runs `request` from 8 clients while `chaos` lasts; the answers' statuses, counted. */
async function during(chaos: () => Promise<void>, request: (i: number) => Promise<Response>) {
  const statuses = new Map<number | string, number>();
  let running = true;
  const clients = Array.from({ length: 8 }, async (_, i) => {
    while (running) {
      const status = await request(i).then(
        async (res) => (await res.arrayBuffer(), res.status),
        (err: Error) => `no answer: ${err.message}`,
      );
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  });
  await chaos();
  running = false;
  await Promise.all(clients);
  return statuses;
}

/** Every connection of the server's ended, over and over. */
const terminations = (admin: pg.Client, name: string) => async () => {
  for (let i = 0; i < 40; i++) {
    await endConnections(admin, name);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
};

describe.skipIf(!base)('Postgres ends the connections during writes (Node)', () => {
  it('answers 503 for the writes caught in it, stays up, and writes again afterwards', { timeout: 120_000 }, async () => {
    await withServer(async ({ t, owner, orbitId, admin, name }) => {
      const statuses = await during(terminations(admin, name), () =>
        t.fetch('/api/threads', post({ group_id: orbitId, key_epoch: 1, encrypted_title: b64(40), encrypted_body: b64(200) }, owner.auth)),
      );
      expect([...statuses.keys()].filter((s) => s !== 201 && s !== 503)).toEqual([]);
      expect(statuses.get(503) ?? 0, 'no write was caught by a termination').toBeGreaterThan(0);
      for (let i = 0; i < 5; i++) expect((await newThread(t, owner, orbitId)).id).toBeTruthy();
    });
  });

  it('never calls a file that exists "No such media" meanwhile', { timeout: 120_000 }, async () => {
    await withServer(async ({ t, owner, orbitId, admin, name }) => {
      const { mediaId } = await uploadFile(t, owner, orbitId, 1000);
      const reads = [`/api/media/${mediaId}/info`, `/api/media/${mediaId}/download`, `/api/media/upload/${mediaId}`];
      const statuses = await during(terminations(admin, name), (i) =>
        i % 4 === 3 ? complete(t, owner, mediaId) : t.fetch(reads[i % 4]!, { headers: owner.auth }),
      );
      expect([...statuses.keys()].filter((s) => s !== 200 && s !== 201 && s !== 503)).toEqual([]);
      expect(statuses.get(503) ?? 0).toBeGreaterThan(0);
    });
  });

  it('answers 503, not 500, when the database turns read-only (an old primary after a failover) or ends idle sessions', { timeout: 120_000 }, async () => {
    await withServer(async ({ t, owner, orbitId, admin, name }) => {
      const write = () => t.fetch('/api/threads', post({ group_id: orbitId, key_epoch: 1, encrypted_title: b64(40), encrypted_body: b64(200) }, owner.auth));
      await admin.query(`alter database ${name} set default_transaction_read_only = on`);
      await endConnections(admin, name); // new connections take the setting
      const readOnly = new Set<number>();
      for (let i = 0; i < 5; i++) readOnly.add((await write()).status);
      expect([...readOnly]).toEqual([503]);
      await admin.query(`alter database ${name} reset default_transaction_read_only`);
      // Sessions idle for 30 ms are ended by Postgres: the pool hands some out as the FATAL arrives.
      await admin.query(`alter database ${name} set idle_session_timeout = '30ms'`);
      await endConnections(admin, name);
      const idling = await during(() => new Promise((resolve) => setTimeout(resolve, 3000)), async () => {
        await new Promise((resolve) => setTimeout(resolve, 25 + Math.random() * 20));
        return write();
      });
      expect([...idling.keys()].filter((s) => s !== 201 && s !== 503)).toEqual([]);
      await admin.query(`alter database ${name} reset idle_session_timeout`);
      await endConnections(admin, name);
      // Connections ended just now may still be handed out once each (503); then writes go through.
      await vi.waitFor(async () => expect((await write()).status).toBe(201), { timeout: 10_000, interval: 100 });
    });
  });

  it('logs a database refusing connections once, not at every try of the live hub (each second), and its return', { timeout: 120_000 }, async () => {
    await withServer(async ({ owner, orbitId, admin, name }) => {
      const ws = new WebSocket(server!.url.replace('http', 'ws') + livePath(orbitId), { headers: owner.auth });
      await new Promise((resolve, reject) => (ws.once('message', resolve), ws.once('error', reject)));
      try {
        // Superusers included: nobody connects, so the hub's poll (every second) fails each time.
        await admin.query(`alter database ${name} allow_connections = false`);
        await endConnections(admin, name);
        // Meanwhile requests answer 503 (55000 "not currently accepting connections"), not 500.
        expect((await fetch(server!.url + '/api/users/me', { headers: owner.auth })).status).toBe(503);
        await new Promise((resolve) => setTimeout(resolve, 5000));
        await admin.query(`alter database ${name} allow_connections = true`);
        await vi.waitFor(() => expect(server!.output()).toContain('live hub task recovered'), { timeout: 15_000, interval: 100 });
        await vi.waitFor(() => expect(server!.output()).toContain('live LISTEN connection back'), { timeout: 15_000, interval: 100 });
        const messages = server!.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; task?: string });
        const count = (msg: string) => messages.filter((m) => m.msg.startsWith(msg)).map((m) => m.task ?? '-');
        expect(count('live hub task failed')).toEqual(['poll']);
        expect(count('live hub task recovered')).toEqual(['poll']);
        expect(count('live LISTEN connection lost')).toEqual(['-']);
      } finally {
        ws.close();
      }
    });
  });
});

describe.skipIf(!base)("connections that go silent (node-postgres pool with the server's bounds)", () => {
  it('fail their statements and transactions as unavailable within the timeout, and the pool serves again on new connections', async () => {
    const path = await holdablePath(new URL(base!));
    const url = new URL(base!);
    url.host = `127.0.0.1:${path.port}`;
    const handle = openNodePostgres(url.toString(), 2, { boundMs: 500 });
    try {
      await Promise.all([handle.db.execute(sql`select 1`), handle.db.execute(sql`select 1`)]); // both slots connected
      path.hold(); // every open connection goes silent; new ones still pass
      const started = Date.now();
      const failures = await Promise.allSettled([
        handle.db.execute(sql`select 1`),
        handle.db.transaction((tx) => tx.execute(sql`select 1`)),
      ]);
      expect(failures.map((f) => f.status === 'rejected' && databaseUnavailable(f.reason))).toEqual([true, true]);
      expect(Date.now() - started).toBeLessThan(10_000); // the bound + 5 s for an answer that never comes
      // Both slots were given back: new connections carry the next statements.
      const again = await Promise.all([handle.db.execute(sql`select 2 as n`), handle.db.transaction((tx) => tx.execute(sql`select 3 as n`))]);
      expect(again.map((r) => (r as unknown as { rows: Array<{ n: number }> }).rows[0]!.n)).toEqual([2, 3]);
    } finally {
      path.close();
      await handle.close().catch(() => {});
    }
  });

  it("ends a cut-off transaction on Postgres' side, so the rows it locked are free again within the bound", async () => {
    const path = await holdablePath(new URL(base!));
    const url = new URL(base!);
    url.host = `127.0.0.1:${path.port}`;
    const handle = openNodePostgres(url.toString(), 1, { boundMs: 1000 });
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    const table = `silent_lock_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    try {
      await admin.query(`create table ${table} (id int primary key, n int not null)`);
      await admin.query(`insert into ${table} values (1, 0)`);
      let locked!: () => void;
      const rowLocked = new Promise<void>((resolve) => (locked = resolve));
      const cut = handle.db.transaction(async (tx) => {
        await tx.execute(sql`update ${sql.raw(table)} set n = n + 1 where id = 1`);
        path.hold(); // the network goes: the row stays locked by a session nobody will talk to again
        locked();
        await tx.execute(sql`select 1`);
      });
      await rowLocked;
      const started = Date.now();
      await admin.query(`set lock_timeout = '20s'`);
      await admin.query(`update ${table} set n = 100 where id = 1`); // waits for that session to end
      // Postgres ends it after 1 s idle in its transaction, well before this side gives up on it (6 s).
      expect(Date.now() - started).toBeLessThan(4_000);
      await expect(cut).rejects.toSatisfy(databaseUnavailable);
      expect((await admin.query(`select n from ${table}`)).rows).toEqual([{ n: 100 }]);
    } finally {
      path.close();
      await admin.query(`drop table if exists ${table}`).catch(() => {});
      await admin.end();
      await handle.close().catch(() => {});
    }
  });
});
