// REGISTRATION=invite on a new server: nobody has an orbit to invite from, so the operator issues
// registration codes (`npm run admin -- registration invite-code`). Checked through the API of a
// real server process, on the embedded database (server stopped while the admin command runs, as
// the README says) or on Postgres with TEST_DATABASE_URL.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrbit, expectError, json, post, publicKey, registerUser, unique } from '../support/api';
import { adminRunner } from '../support/admin-runner';
import { targetOf, freshDatabase, startServerProcess, type ServerProcess } from '../support/server-process';
import { TEST_ENV } from '../support/types';
import { newDataDir } from '../support/data-dirs';

const postgres = process.env.TEST_DATABASE_URL;

describe('registration codes (REGISTRATION=invite)', () => {
  const dataDir = newDataDir('orbital-regcode-');
  let database: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  let env: Record<string, string>;
  let server: ServerProcess | undefined;

  const runner = adminRunner(() => env);
  const admin = runner.run;

  beforeAll(async () => {
    database = postgres ? await freshDatabase(postgres, 'orbital_regcode') : undefined;
    env = { ...TEST_ENV, REGISTRATION: 'invite', LOG_LEVEL: 'info', DATA_DIR: dataDir, ...(database ? { DATABASE_URL: database.url } : {}) };
  });
  afterAll(async () => {
    await runner.release();
    await server?.kill('SIGTERM');
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('the first account registers with the operator’s code and joins no orbit; used-up, revoked and unknown codes read as unknown invites', { timeout: 180_000 }, async () => {
    const issued = await runner.viaProcess('registration', 'invite-code', '--uses', '2', '--expires', '1h', '--json');
    expect(issued.code).toBe(0);
    const first = issued.json();
    expect(first).toMatchObject({ code: expect.stringMatching(/^[A-Za-z0-9]{8}$/), max_uses: 2, uses: 0 });
    expect(Date.parse(first.expires_at) - Date.now()).toBeGreaterThan(59 * 60_000);
    const revoked = (await admin('registration', 'invite-code', '--json')).json();
    const spare = (await admin('registration', 'invite-code', '--json')).json();
    expect((await admin('registration', 'revoke', revoked.code, '--yes', '--json')).json()).toEqual({ revoked: revoked.id });
    // Listed without the codes themselves: they are stored only as keyed hashes.
    const listed = await admin('registration', 'list', '--json');
    expect(listed.json().codes.map((c: { id: string }) => c.id).sort()).toEqual([first.id, spare.id].sort());
    expect(listed.out).not.toContain(first.code);

    await runner.release();
    server = await startServerProcess(env);
    const t = targetOf(server);
    const register = (code?: string) =>
      t.fetch('/api/auth/register', post({ username: unique(), password: 'a long enough password', public_key: publicKey(), ...(code ? { invite_code: code } : {}) }));
    await expectError(await register(), 400, 'VALIDATION_ERROR');
    await expectError(await register('Zz9Zz9Zz'), 404, 'NOT_FOUND');

    const alice = await registerUser(t, { inviteCode: first.code });
    expect((await json(await t.fetch('/api/groups', { headers: alice.auth }))).items ?? []).toEqual([]);
    await registerUser(t, { inviteCode: first.code });
    await expectError(await register(first.code), 404, 'NOT_FOUND'); // used up
    await expectError(await register(revoked.code), 404, 'NOT_FOUND');

    // A registration code is not an orbit invite, and trying it as one does not spend it.
    await expectError(await t.fetch('/api/groups/join', post({ invite_code: spare.code }, alice.auth)), 404, 'NOT_FOUND');
    await registerUser(t, { inviteCode: spare.code });

    // Orbit invites keep admitting new accounts into their orbit.
    const orbit = await createOrbit(t, alice);
    const guest = await registerUser(t, { inviteCode: orbit.inviteCode });
    const group = await json(await t.fetch(`/api/groups/${orbit.id}`, { headers: guest.auth }));
    expect(group.member_count).toBe(2);

    if (!database) await server.kill('SIGTERM');
    // Spent and revoked codes go with the next cleanup.
    expect((await admin('storage', '--json')).json().next_cleanup.registration_codes).toBe(3);
  });

  it('refuses bad options with one clear line and issues nothing', async () => {
    const unit = await admin('registration', 'invite-code', '--expires', '10x');
    expect([unit.code, unit.out]).toEqual([2, expect.stringContaining('--expires takes a number and a unit')]);
    const none = await admin('registration', 'invite-code', '--uses', '0');
    expect([none.code, none.out.trim()]).toEqual([1, 'A registration code admits 1 to 1000 accounts.']);
    const long = await admin('registration', 'invite-code', '--expires', '31d');
    expect([long.code, long.out.trim()]).toEqual([1, 'A registration code lasts from 1 minute to 30 days.']);
    const missing = await admin('registration', 'revoke', 'Qq1Qq1Qq', '--yes');
    expect([missing.code, missing.out.trim()]).toEqual([1, 'No such registration code.']);
    expect((await admin('registration', 'list', '--json')).json().codes).toEqual([]);
  });
});
