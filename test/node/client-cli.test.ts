// The `orbital` CLI's account side as a person meets it: usage errors, --json errors in the
// contract's shape, a lost device restored from the key backup (and not with a wrong secret), and a
// key reset when there is no backup.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliJson, runCli, type CliUser } from '../support/cli-runner';
import { createTarget } from '../support/node-target';
import { offeredOperations, requireOperations, serverUrl } from '../support/offered';

let t: Awaited<ReturnType<typeof createTarget>>;
let server: string;
let offered = new Set<string>();
const dirs: string[] = [];
const home = (): CliUser => {
  const dir = mkdtempSync(join(tmpdir(), 'orbital-cli-'));
  dirs.push(dir);
  return { home: join(dir, 'home') };
};
const name = (p: string) => `${p}_${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  t = await createTarget();
  server = await serverUrl(t);
  offered = await offeredOperations(t);
});
afterAll(async () => {
  await t?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('orbital CLI', () => {
  it('explains its usage, and reports API errors in the contract’s shape with --json', async () => {
    const user = home();
    const unknown = await runCli(user, server, ['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Usage: orbital');

    const notLoggedIn = await runCli(user, server, ['orbits']);
    expect(notLoggedIn.code).toBe(2);
    expect(notLoggedIn.stderr).toMatch(/orbital register/);

    const badLogin = await runCli(user, server, ['--json', 'login', name('nobody')]);
    expect(badLogin.code).toBe(1);
    expect(badLogin.json().error).toMatchObject({ code: 'INVALID_CREDENTIALS', request_id: expect.any(String) });

    const offline = await runCli(user, 'http://127.0.0.1:9', ['--json', 'login', name('x')]);
    expect(offline.code).toBe(1);
    expect(offline.json().error.code).toBe('NETWORK');
  });

  it('a second account never overwrites the key in a home', async () => {
    const user = home();
    await cliJson(user, server, ['register', name('first')]);
    const second = await runCli(user, server, ['register', name('second')]);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/--home/);
  });

  it('a lost device comes back through the key backup with the recovery secret, and not without it', async (ctx) => {
    requireOperations(ctx, offered, ['put /api/users/me/key-backup', 'get /api/users/me/key-backup']);
    const username = name('carol');
    const first = home();
    const registered = await cliJson(first, server, ['register', username, '--backup']);
    expect(registered.recovery_secret).toMatch(/^([A-Z2-9]{4}-){6}[A-Z2-9]{4}$/);

    const wrong = await runCli({ home: home().home, env: { ORBITAL_RECOVERY_SECRET: 'AAAA-BBBB' } }, server, ['login', username]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/recovery secret does not open/);

    const second: CliUser = { home: home().home, env: { ORBITAL_RECOVERY_SECRET: registered.recovery_secret } };
    const restored = await cliJson(second, server, ['login', username]);
    expect(restored.key).toBe('restored');
    expect(statSync(join(second.home, 'identity.json')).mode & 0o777).toBe(0o600);
    const me = await cliJson(second, server, ['whoami']);
    expect(me.fingerprint).toBe(registered.fingerprint);
  });

  it('without a backup, a lost key is replaced only when confirmed, and memberships wait for the new key', async (ctx) => {
    requireOperations(ctx, offered, ['put /api/users/me/public-key', 'get /api/users/me']);
    const username = name('dave');
    const first = home();
    const registered = await cliJson(first, server, ['register', username]);
    const created = await cliJson(first, server, ['orbit', 'create', 'dave’s orbit']);

    const fresh = home();
    const login = await cliJson(fresh, server, ['login', username]);
    expect(login.key).toBe('missing');
    expect(existsSync(join(fresh.home, 'identity.json'))).toBe(false);
    const unconfirmed = await runCli(fresh, server, ['keys', 'reset']);
    expect(unconfirmed.code).toBe(2);

    const reset = await cliJson(fresh, server, ['keys', 'reset', '--yes']);
    expect(reset.fingerprint).not.toBe(registered.fingerprint);
    const orbits = await cliJson(fresh, server, ['orbits']);
    expect(orbits.items).toEqual([expect.objectContaining({ id: created.group.id, key_status: 'pending', name: null })]);
  });
});
