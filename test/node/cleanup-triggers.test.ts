// The Node triggers of cleanup: `npm run cleanup` (dry run, --now) and the hourly schedule that
// only one process at a time runs (a Postgres advisory lock).
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { openPglite } from '../../src/adapters/db-pglite';
import { CLEANUP_LOCK_KEY, cleanupOnce, scheduleCleanup } from '../../src/runtime/node-cleanup';
import { createOrbit, registerUser } from '../support/api';
import { uploadFile } from '../support/media';
import { newDataDir } from '../support/data-dirs';

const run = promisify(execFile);

describe('npm run cleanup', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = newDataDir('orbital-cli-');
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  const cli = async (...args: string[]) => {
    const env = { ...process.env, DATA_DIR: dataDir, DATABASE_URL: '', LOG_LEVEL: 'silent' };
    const { stdout } = await run(process.execPath, ['dist/cleanup.js', ...args], { env });
    return JSON.parse(stdout.trim().split('\n').pop()!);
  };

  it('counts with --dry-run, acts with --now, and is idempotent', async () => {
    expect(await cli('--dry-run')).toMatchObject({ dry_run: true, media_expired: 0 });
    // Seed straight into the embedded database the CLI just created and migrated.
    const handle = await openPglite({ dataDir: join(dataDir, 'pglite') });
    const { rows } = await handle.client.query<{ id: string }>(
      `with u as (insert into users (username, username_lower, password_hash, public_key) values ('cli_user', 'cli_user', 'x', '{}') returning id),
            g as (insert into groups (encrypted_name, max_members, owner_id) select '\\x00', 100, u.id from u returning id),
            q as (insert into group_quotas (group_id, bytes_used, files_used) select id, 10, 1 from g)
       insert into media (group_id, key_epoch, encrypted_metadata, encryption_iv, size_bytes, chunk_count, status, blob_key, upload_expires_at, uploaded_at, expires_at, seq)
       select g.id, 1, '\\x00', 'iv', 10, 1, 'complete', 'media/' || g.id || '/x', now(), now() - interval '8 days', now() - interval '1 day', 1 from g
       returning id`,
    );
    await handle.close();
    expect(rows).toHaveLength(1);

    expect(await cli('--dry-run')).toMatchObject({ dry_run: true, media_expired: 1 });
    expect(await cli('--now', '2000-01-01T00:00:00Z')).toMatchObject({ dry_run: false, media_expired: 0 });
    expect(await cli()).toMatchObject({ dry_run: false, media_expired: 1, blobs_deleted: 1, quotas_recomputed: 1 });
    expect(await cli('--dry-run')).toMatchObject({ media_expired: 0, blobs_deleted: 0 });
    await expect(run(process.execPath, ['dist/cleanup.js', '--now', 'soon'])).rejects.toMatchObject({ code: 2 });
  }, 300_000);
});

describe('the in-process schedule', () => {
  let t: Awaited<ReturnType<typeof createTarget>>;
  beforeAll(async () => {
    t = await createTarget();
  });
  afterAll(() => t?.close());

  it('runs soon after start and removes expired media', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const { mediaId } = await uploadFile(t, owner, orbit.id, 10);
    await t.sql(`update media set expires_at = now() - interval '1 second' where id = $1`, [mediaId]);
    const schedule = scheduleCleanup(t.deps, { useLock: Boolean(t.databaseUrl), firstAfterMs: 10 });
    await expect.poll(async () => (await t.sql(`select id from media where id = $1`, [mediaId])).length, { timeout: 10_000 }).toBe(0);
    await schedule.stop();
  });

  it.skipIf(!process.env.TEST_DATABASE_URL)('with Postgres, skips its run while another process holds the cleanup lock', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    // Another process's run, holding the lock until released.
    const other = t.deps.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${CLEANUP_LOCK_KEY.toString()}::bigint)`);
      locked();
      await held;
    });
    await isLocked;
    expect(await cleanupOnce(t.deps, true)).toBeNull();
    release();
    await other;
    expect(await cleanupOnce(t.deps, true)).toMatchObject({ media_expired: expect.any(Number) });
  });
});
