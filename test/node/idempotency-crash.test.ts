// Idempotency-Key across a killed process (Postgres: the test holds row locks from its own
// connections to stop the server at the right moment). The key's outcome is written in the create's
// own transaction, so a process killed before the commit leaves no thread behind its claim, and
// the retry that takes over the abandoned claim creates exactly one.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { b64, createOrbit, post, registerUser } from '../support/api';
import { targetOf, freshDatabase, startServerProcess, type ServerProcess } from '../support/server-process';
import { TEST_ENV } from '../support/types';

const postgres = process.env.TEST_DATABASE_URL;
if (!postgres) console.warn('idempotency-crash: skipped, it needs a real Postgres (set TEST_DATABASE_URL)');

describe.skipIf(!postgres)('Idempotency-Key and a process killed mid-create', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'orbital-idem-crash-'));
  const clients: pg.Client[] = [];
  const servers: ServerProcess[] = [];
  let database: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    for (const s of servers) await s.kill('SIGKILL');
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('killed before its commit: no thread behind the claim; the retry after the claim lapses creates exactly one', async () => {
    database = await freshDatabase(postgres!, 'orbital_idem_crash');
    const env = { ...TEST_ENV, LOG_LEVEL: 'info', DATA_DIR: dataDir, DATABASE_URL: database.url };
    const first = await startServerProcess(env);
    servers.push(first);
    const owner = await registerUser(targetOf(first));
    const orbit = await createOrbit(targetOf(first), owner);
    const connect = async () => {
      const c = new pg.Client({ connectionString: database!.url });
      await c.connect();
      clients.push(c);
      return c;
    };
    const [orbitLock, keyLock, look] = [await connect(), await connect(), await connect()];
    const count = async () => Number((await look.query('select count(*)::int as n from threads where group_id = $1', [orbit.id])).rows[0].n);

    // The create waits at the orbit's row while the test takes its key's row.
    await orbitLock.query('begin');
    await orbitLock.query('select 1 from groups where id = $1 for update', [orbit.id]);
    const key = `crash-${Date.now()}`;
    const body = { group_id: orbit.id, key_epoch: 1, encrypted_title: b64(24), encrypted_body: b64(100) };
    const send = (server: ServerProcess) => fetch(server.url + '/api/threads', post(body, { ...owner.auth, 'idempotency-key': key }));
    void send(first).catch(() => undefined); // its answer never comes: the process is killed
    await keyLock.query('begin');
    for (let claimed = 0; !claimed; ) {
      claimed = (await keyLock.query('select 1 from idempotency_keys where key = $1 for update', [key])).rowCount ?? 0;
      if (!claimed) await new Promise((r) => setTimeout(r, 20));
    }
    // Let the create go: it writes the thread and stops at the key's row, before its commit.
    await orbitLock.query('commit');
    await new Promise((r) => setTimeout(r, 1000));
    expect(await count()).toBe(0);

    await first.kill('SIGKILL');
    await keyLock.query('rollback');
    expect(await count()).toBe(0);
    const [claim] = (await look.query('select state from idempotency_keys where key = $1', [key])).rows;
    expect(claim).toEqual({ state: 'running' });

    // The claim of a process that died is taken over once it is old enough (5 minutes).
    await look.query(`update idempotency_keys set created_at = now() - interval '6 minutes' where key = $1`, [key]);
    const second = await startServerProcess(env);
    servers.push(second);
    const retried = await send(second);
    expect(retried.status).toBe(201);
    const again = await send(second);
    expect([again.status, again.headers.get('idempotent-replayed')]).toEqual([201, 'true']);
    expect((await again.json()).id).toBe((await retried.json()).id);
    expect(await count()).toBe(1);
  }, 120_000);
});
