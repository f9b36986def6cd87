// Two servers whose DATABASE_URL goes through PgBouncer in transaction mode (docs/CAPACITY.md, past
// Postgres' connection limit), their LISTEN straight to Postgres (DATABASE_LISTEN_URL): typing
// crosses from one process to the other (it travels only as a notification) and events written
// through one reach sockets on the other. PgBouncer 1.18 (Debian's) carries no named statements:
// the servers turn them off at the first refusal, so a write may answer 503 once, and is retried.
// Needs Postgres (TEST_DATABASE_URL) and pgbouncer (skipped without it; CI installs it and sets
// ORBITAL_REQUIRE_PGBOUNCER=1, which makes the skip a failure).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMember, createOrbit, post, registerUser, type TestOrbit, type TestUser } from '../support/api';
import { livePath, openLive } from '../support/live';
import { connectSocket } from '../support/node-target';
import { newDataDir } from '../support/data-dirs';
import { startPgBouncer, type PgBouncer } from '../support/pgbouncer';
import { freshDatabase, startServerProcess, targetOf, type ServerProcess } from '../support/server-process';
import type { Target } from '../support/types';

const postgres = process.env.TEST_DATABASE_URL;
const required = process.env.ORBITAL_REQUIRE_PGBOUNCER === '1';
if (!postgres) console.warn('pooler: skipped, it needs a real Postgres (set TEST_DATABASE_URL)');

/** A 503 is what the write that meets the pooler's first refusal of a named statement answers. */
async function retried<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (attempt === 3 || !/\b503\b/.test(String(err))) throw err;
    }
  }
}

describe.skipIf(!postgres)('two servers behind PgBouncer in transaction mode', { timeout: 120_000 }, () => {
  let bouncer: PgBouncer | null;
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  const servers: ServerProcess[] = [];
  let a: Target;
  let b: Target;

  beforeAll(async () => {
    bouncer = await startPgBouncer(postgres!);
    if (!bouncer) {
      if (required) throw new Error('pgbouncer is not installed (apt-get install pgbouncer), and ORBITAL_REQUIRE_PGBOUNCER=1');
      console.warn('pooler: skipped, pgbouncer is not installed (apt-get install pgbouncer)');
      return;
    }
    database = await freshDatabase(postgres!, 'orbital_pooler');
    const pooled = new URL(bouncer.url);
    pooled.pathname = `/${database.name}`;
    for (let i = 0; i < 2; i++) {
      servers.push(
        await startServerProcess({
          DATABASE_URL: pooled.toString(),
          DATABASE_LISTEN_URL: database.url,
          DATA_DIR: newDataDir('orbital-pooler-'),
          RATE_LIMIT: 'off',
          JWT_SECRET: 'pooler-test-secret-0123456789-abcdefghijklmnop',
        }),
      );
    }
    const target = (server: ServerProcess) => ({ ...targetOf(server), socket: (path: string, headers: Record<string, string>) => connectSocket(server.url, path, headers) }) as unknown as Target;
    [a, b] = [target(servers[0]!), target(servers[1]!)];
  });
  afterAll(async () => {
    for (const server of servers) await server.kill();
    await database?.drop();
    await bouncer?.stop();
  });

  it('typing and events cross from one process to the other', async ({ skip }) => {
    if (!bouncer) return skip();
    const owner: TestUser = await retried(() => registerUser(a));
    const orbit: TestOrbit = await retried(() => createOrbit(a, owner));
    const member = await retried(() => addMember(a, owner, orbit));
    const onA = await openLive(a, livePath(orbit.id), owner.auth);
    const onB = await openLive(b, livePath(orbit.id), member.auth);
    const thread = await retried(async () => {
      const res = await a.fetch('/api/threads', post({ group_id: orbit.id, key_epoch: 1, encrypted_title: 'dGl0bGU=', encrypted_body: 'Ym9keQ==' }, owner.auth));
      if (res.status !== 201) throw new Error(`thread create: ${res.status}`);
      return (await res.json()) as { id: string; seq: number };
    });
    expect(await onB.socket.next()).toMatchObject({ type: 'thread_created', seq: thread.seq });
    expect(await onA.socket.next()).toMatchObject({ type: 'thread_created', seq: thread.seq });
    onA.socket.send(JSON.stringify({ type: 'typing', thread_id: thread.id }));
    expect(await onB.socket.next()).toEqual({ type: 'typing', user_id: owner.id, thread_id: thread.id });
    onA.socket.close();
    onB.socket.close();
  });
});
