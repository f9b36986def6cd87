// The cap of 5 live sockets per user per orbit holds across Node processes on one Postgres: leases
// in the database, given back on close, and lapsing when the process that held them is gone.
// Needs a real Postgres: PGlite is one process.
import { rmSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrbit, registerUser } from '../support/api';
import { livePath } from '../support/live';
import { connectSocket } from '../support/node-target';
import { targetOf, freshDatabase, startServerProcess, type ServerProcess } from '../support/server-process';
import { SocketRefused, TEST_ENV, type TestSocket } from '../support/types';
import { newDataDir } from '../support/data-dirs';

const postgres = process.env.TEST_DATABASE_URL;
if (!postgres) console.warn('live-socket-cap: skipped, it needs a real Postgres (set TEST_DATABASE_URL)');

/** Just enough of a target for the API helpers, pointed at one server process. */

describe.skipIf(!postgres)('the socket cap across two Node processes on one Postgres', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let db: pg.Client;
  let a: ServerProcess;
  let b: ServerProcess;
  const dataDirs = [0, 1].map(() => newDataDir('orbital-cap-'));

  beforeAll(async () => {
    database = await freshDatabase(postgres!, 'orbital_cap');
    const env = { ...TEST_ENV, LOG_LEVEL: 'info', DATABASE_URL: database.url };
    a = await startServerProcess({ ...env, DATA_DIR: dataDirs[0]! });
    b = await startServerProcess({ ...env, DATA_DIR: dataDirs[1]! });
    db = new pg.Client({ connectionString: database.url });
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
    await a?.kill('SIGTERM');
    await b?.kill('SIGTERM');
    await database?.drop();
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  });

  /** Opens sockets on both processes at once; returns the opened ones and the refusal statuses. */
  async function openMany(user: { auth: Record<string, string> }, groupId: string, perProcess: number) {
    const attempts = [a, b].flatMap((server) => Array.from({ length: perProcess }, () => connectSocket(server.url, livePath(groupId), user.auth)));
    const results = await Promise.allSettled(attempts);
    const opened = results.filter((r): r is PromiseFulfilledResult<TestSocket> => r.status === 'fulfilled').map((r) => r.value);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason instanceof SocketRefused ? r.reason.status : String(r.reason)));
    return { opened, refused };
  }

  it('of 8 simultaneous upgrades spread over both processes, 5 open and 3 get 429; a close frees a place on the other process', async () => {
    const owner = await registerUser(targetOf(a));
    const orbit = await createOrbit(targetOf(a), owner);
    const { opened, refused } = await openMany(owner, orbit.id, 4);
    expect([opened.length, refused]).toEqual([5, [429, 429, 429]]);

    opened[0]!.close();
    await opened[0]!.closed;
    let reopened: TestSocket | undefined;
    for (let attempt = 0; attempt < 50 && !reopened; attempt++) {
      reopened = await connectSocket((attempt % 2 ? a : b).url, livePath(orbit.id), owner.auth).catch(() => undefined);
      if (!reopened) await new Promise((r) => setTimeout(r, 100));
    }
    expect(reopened).toBeDefined();
    const sixth = await connectSocket(a.url, livePath(orbit.id), owner.auth).catch((e: unknown) => e);
    expect(sixth).toBeInstanceOf(SocketRefused);
    expect((sixth as SocketRefused).status).toBe(429);
    for (const s of [...opened.slice(1), reopened!]) s.close();
  });

  it('a place is free on every process once the client has seen its socket close: 20 rounds of close on one, open on the other at once', async () => {
    const owner = await registerUser(targetOf(a));
    const orbit = await createOrbit(targetOf(a), owner);
    const open: Array<{ socket: TestSocket; on: ServerProcess }> = [];
    for (let i = 0; i < 5; i++) open.push({ socket: await connectSocket(a.url, livePath(orbit.id), owner.auth), on: a });
    const refusals: unknown[] = [];
    for (let round = 0; round < 20; round++) {
      const leaving = open.shift()!;
      leaving.socket.close();
      await leaving.socket.closed;
      const other = leaving.on === a ? b : a;
      const next = await connectSocket(other.url, livePath(orbit.id), owner.auth).catch((e: unknown) => e);
      if (next instanceof SocketRefused) refusals.push(next.status);
      else open.push({ socket: next as TestSocket, on: other });
    }
    expect(refusals).toEqual([]);
    for (const { socket } of open) socket.close();
  });

  it("a crashed process's leases stop counting once they expire", async () => {
    const owner = await registerUser(targetOf(a));
    const orbit = await createOrbit(targetOf(a), owner);
    // Five leases of a process that died without giving them back, still within their lifetime.
    const insert = `insert into live_socket_leases (group_id, user_id, holder, expires_at)
      select $1, $2, gen_random_uuid(), now() + $3::interval from generate_series(1, 5)`;
    await db.query(insert, [orbit.id, owner.id, '1 minute']);
    const refused = await connectSocket(b.url, livePath(orbit.id), owner.auth).catch((e: unknown) => e);
    expect((refused as SocketRefused).status).toBe(429);
    // Their lifetime has passed (no process renews them): places are free again.
    await db.query(`update live_socket_leases set expires_at = now() - interval '1 second' where group_id = $1`, [orbit.id]);
    const { opened, refused: over } = await openMany(owner, orbit.id, 3);
    expect([opened.length, over]).toEqual([5, [429]]);
    for (const s of opened) s.close();
  });

  // Last: it stops process b.
  it('a restart: the sockets of a stopping process reconnect to the other at once when they see 1001, none refused', async () => {
    const owner = await registerUser(targetOf(a));
    const orbit = await createOrbit(targetOf(a), owner);
    const onB = await Promise.all(Array.from({ length: 5 }, () => connectSocket(b.url, livePath(orbit.id), owner.auth)));
    const reopened = onB.map(async (s) => {
      expect((await s.closed).code).toBe(1001);
      return connectSocket(a.url, livePath(orbit.id), owner.auth).then(
        (socket) => (socket.close(), 'open'),
        (err: unknown) => (err instanceof SocketRefused ? err.status : String(err)),
      );
    });
    await b.kill('SIGTERM');
    expect(await Promise.all(reopened)).toEqual(['open', 'open', 'open', 'open', 'open']);
  });
});
