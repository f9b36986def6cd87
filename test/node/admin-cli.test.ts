// `npm run admin`: each command against the server's own database (Postgres with TEST_DATABASE_URL,
// else the embedded data dir, with the server stopped as the README says), checked through the API.
// The first commands run as processes of their own, the rest as the same code in this process.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrbit, joinOrbit, post, registerUser, type TestUser } from '../support/api';
import { adminRunner } from '../support/admin-runner';
import { targetOf, freshDatabase, startServerProcess, type ServerProcess } from '../support/server-process';
import { TEST_ENV } from '../support/types';
import { newDataDir } from '../support/data-dirs';

const postgres = process.env.TEST_DATABASE_URL;

// A command that is its own process opens the database (1.5 s on an idle machine, 4 to 7 s beside
// the rest of the suite in CI).
describe('npm run admin', { timeout: 180_000 }, () => {
  const dataDir = newDataDir('orbital-admin-');
  let database: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  let env: Record<string, string>;
  let server: ServerProcess | undefined;
  let alice: TestUser, bob: TestUser, carol: TestUser;
  let orbit: Awaited<ReturnType<typeof createOrbit>>;
  let whileRunning: Awaited<ReturnType<typeof admin>> | undefined;
  const runner = adminRunner(() => env);
  const admin = runner.run;

  beforeAll(async () => {
    database = postgres ? await freshDatabase(postgres, 'orbital_admin') : undefined;
    env = { ...TEST_ENV, LOG_LEVEL: 'info', DATA_DIR: dataDir, ...(database ? { DATABASE_URL: database.url } : {}) };
    server = await startServerProcess(env);
    const t = targetOf(server);
    [alice, bob, carol] = [await registerUser(t), await registerUser(t), await registerUser(t)];
    orbit = await createOrbit(t, alice);
    await joinOrbit(t, bob, orbit.inviteCode);
    // The embedded database belongs to one process at a time.
    if (!database) {
      whileRunning = await runner.viaProcess('users', 'list');
      await server.kill('SIGTERM');
    }
  });
  afterAll(async () => {
    await runner.release();
    await server?.kill('SIGTERM');
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it.skipIf(postgres)('on the embedded database, refuses with one clear line while the server runs', () => {
    expect(whileRunning!.code).toBe(1);
    expect(whileRunning!.out).toContain(`DATA_DIR ${dataDir}`);
    expect(whileRunning!.out).not.toMatch(/\n\s+at /);
  });

  it('lists users with their orbit counts, and orbits by id without any ciphertext', async () => {
    const users = (await runner.viaProcess('users', 'list', '--json')).json().users;
    const byName = Object.fromEntries(users.map((u: { username: string }) => [u.username, u]));
    expect(byName[alice.username]).toMatchObject({ id: alice.id, orbits: 1, live_sessions: 1 });
    expect(byName[carol.username]).toMatchObject({ orbits: 0 });

    const listed = await admin('orbits', 'list', '--json');
    expect(listed.json().orbits).toEqual([expect.objectContaining({ id: orbit.id, owner: alice.username, members: 2, bytes_used: 0, files_used: 0 })]);
    expect(listed.out).not.toContain(orbit.group.encrypted_name);
    expect(listed.out).not.toContain(orbit.group.encrypted_group_key);
  });

  it('sets quota limits; refuses bad ids and numbers with a clear line', async () => {
    expect((await admin('orbits', 'quota', orbit.id, '--bytes', '1000', '--files', '3', '--json')).json().quota).toMatchObject({ bytes_limit: 1000, files_limit: 3 });
    const bad = await admin('orbits', 'quota', 'not-an-id', '--bytes', '5');
    expect([bad.code, bad.out.trim()]).toEqual([1, '"not-an-id" is not an orbit id.']);
    const nan = await admin('orbits', 'quota', orbit.id, '--bytes', '12abc');
    expect(nan.code).toBe(2);
    expect(nan.out).toContain('--bytes must be a whole number');
  });

  it('reports storage and what the next cleanup would remove', async () => {
    const storage = (await admin('storage', '--json')).json();
    expect(storage).toMatchObject({ bytes_stored: 0, files_stored: 0, uploads_in_progress: 0 });
    expect(storage.next_cleanup).toMatchObject({ media_expired: 0, sessions: 0 });
  });

  it('asks before destroying: without a terminal and without --yes nothing changes', async () => {
    const refused = await admin('users', 'delete', bob.username);
    expect(refused.code).toBe(2);
    expect(refused.out).toContain('pass --yes');
    expect((await admin('users', 'list', '--json')).json().users.map((u: { username: string }) => u.username)).toContain(bob.username);
    expect((await admin('users', 'delete', 'no_such_user', '--yes')).out.trim()).toBe('No user named "no_such_user".');
  });

  it('deletes an account, revokes sessions and resets a password, as the API then shows', async () => {
    expect((await admin('users', 'delete', bob.username, '--yes', '--json')).json()).toEqual({ deleted: bob.username, id: bob.id });
    expect((await admin('sessions', 'revoke', carol.username, '--yes', '--json')).json()).toEqual({ username: carol.username, revoked: 1 });
    const reset = (await admin('users', 'reset-password', alice.username, '--yes', '--json')).json();
    expect(reset.password).toMatch(/^[A-Za-z0-9_-]{24}$/);

    await runner.release();
    if (!database) server = await startServerProcess(env);
    const t = targetOf(server!);
    const login = (username: string, password: string) => t.fetch('/api/auth/login', post({ username, password }));
    expect((await login(bob.username, bob.password)).status).toBe(401);
    expect((await login(alice.username, alice.password)).status).toBe(401);
    const fresh = await login(alice.username, reset.password);
    expect(fresh.status).toBe(200);
    expect((await t.fetch('/api/auth/refresh', post({ refresh_token: carol.refresh }))).status).toBe(401);
    expect((await t.fetch('/api/auth/refresh', post({ refresh_token: alice.refresh }))).status).toBe(401);
    const auth = { Authorization: `Bearer ${(await fresh.json()).access_token}` };
    const group = await (await t.fetch(`/api/groups/${orbit.id}`, { headers: auth })).json();
    expect(group.member_count).toBe(1);
    const quota = await (await t.fetch(`/api/groups/${orbit.id}/quota`, { headers: auth })).json();
    expect(quota).toMatchObject({ bytes_limit: 1000, files_limit: 3 });
  });

  it('reads the audit trail: the operator’s actions and the users’ own, by user, orbit and action', async () => {
    if (!database) await server?.kill('SIGTERM');
    const mine = (await admin('audit', '--user', alice.username, '--json')).json().events;
    expect(mine.map((e: { action: string; via: string }) => `${e.via} ${e.action}`)).toEqual(['admin password.changed', 'api invite.created', 'api account.created']);
    // A deleted account has no name any more; its id finds its rows.
    const gone = (await admin('audit', '--user', bob.id, '--json')).json().events;
    expect(gone.map((e: { action: string }) => e.action)).toEqual(['account.deleted', 'member.removed', 'account.created']);
    expect(gone[0]).toMatchObject({ via: 'admin', actor_id: null, target_id: bob.id, address: null });
    const revoked = (await admin('audit', '--action', 'sessions.revoked', '--json')).json().events;
    expect(revoked).toEqual([expect.objectContaining({ via: 'admin', target_id: carol.id, detail: 'all' })]);
    expect((await admin('audit', '--orbit', orbit.id, '--limit', '1', '--json')).json().events).toEqual([expect.objectContaining({ action: 'member.removed', detail: 'deleted' })]);
    const quota = (await admin('audit', '--action', 'quota.changed', '--json')).json().events;
    expect(quota).toEqual([expect.objectContaining({ via: 'admin', actor_id: null, group_id: orbit.id, detail: 'bytes 1000, files 3', address: null })]);
    const bad = await admin('audit', '--action', 'everything');
    expect([bad.code, bad.out]).toEqual([2, expect.stringContaining('--action is one of account.created')]);
    // A day that does not exist is refused, not rolled over into March.
    const noDay = await admin('audit', '--since', '2026-02-30');
    expect([noDay.code, noDay.out]).toEqual([2, expect.stringContaining('--since must be an ISO 8601 time, got "2026-02-30"')]);
    expect((await admin('audit', '--since', '2026-02-28T23:00:00-05:00', '--json')).code).toBe(0);
  });
});
