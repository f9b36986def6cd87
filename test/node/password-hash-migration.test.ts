// Migration 0008 on a database that has accounts: every hash made before the UTF-8 fix is marked
// `legacy:` (and so gets the prefix check once); one made after it is not; a second pass changes nothing.
import { afterAll, expect, it } from 'vitest';
import { openPglite } from '../../src/adapters/db-pglite';
import { bundledMigrations, migrate } from '../../src/db/migrate';
import { loadHasher } from '../../src/runtime/node-deps';
import { LEGACY_UNICODE_HASH, UNICODE_PASSWORD } from '../support/password-hashes';

const handle = await openPglite();
afterAll(() => handle.close());
const level = bundledMigrations.findIndex((m) => m.tag === '0008_password_hash_legacy');
const made = LEGACY_UNICODE_HASH.slice('legacy:'.length);
const insert = (name: string, hash: string) =>
  handle.client.query(`insert into users (username, username_lower, password_hash, public_key) values ($1, $1, $2, '{}') returning id`, [name, hash]);
const stored = async (name: string) => (await handle.client.query<{ password_hash: string }>('select password_hash from users where username = $1', [name])).rows[0]!.password_hash;

it('marks the hashes stored before it, not the ones made after, and only once', async () => {
  await migrate(handle.db, bundledMigrations.slice(0, level));
  await insert('before', made);
  await migrate(handle.db);
  expect(await stored('before')).toBe(LEGACY_UNICODE_HASH);
  const hasher = await loadHasher('insecure-test');
  expect(await hasher.verify(await stored('before'), UNICODE_PASSWORD)).toEqual({ ok: true, outdated: true });
  await insert('after', await hasher.hash(UNICODE_PASSWORD));
  await migrate(handle.db);
  expect(await stored('after')).toMatch(/^\$argon2id\$/);
  expect(await stored('before')).toBe(LEGACY_UNICODE_HASH);
});
