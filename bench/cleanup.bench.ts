// Cleanup of 10,000 expired media spread over 100 orbits, each with its blob on disk and its
// upload event in the log: rows, events, quotas and blobs, in one runCleanup. Goal: < 10 s.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { openNodePostgres } from '../src/adapters/db-node-postgres';
import { openPglite } from '../src/adapters/db-pglite';
import { parseConfig } from '../src/config';
import { migrate } from '../src/db/migrate';
import type { Db } from '../src/deps';
import { runCleanup } from '../src/domain/cleanup';
import { buildNodeDeps } from '../src/runtime/node-deps';
import { round, type Bench } from './harness';
import { freshPostgres } from './postgres';

const ORBITS = 100;
const PER_ORBIT = 100;
const SIZE = 1000;

async function seed(db: Db, blobRoot: string): Promise<string[]> {
  const userId = randomUUID();
  await db.execute(sql`insert into users (id, username, username_lower, password_hash, public_key) values (${userId}, 'bench', 'bench', 'x', '{}')`);
  await db.execute(sql`
    insert into groups (id, encrypted_name, max_members, owner_id, created_by, last_seq, member_count)
    select gen_random_uuid(), '\\x00'::bytea, 100, ${userId}, ${userId}, ${PER_ORBIT}, 1 from generate_series(1, ${ORBITS})`);
  await db.execute(sql`
    insert into group_quotas (group_id, bytes_used, files_used, files_limit)
    select id, ${SIZE * PER_ORBIT}, ${PER_ORBIT}, 1000 from groups where owner_id = ${userId}`);
  await db.execute(sql`
    insert into media (id, group_id, author_id, key_epoch, encrypted_metadata, encryption_iv, size_bytes, chunk_count, status, blob_key,
                       created_at, last_chunk_at, upload_expires_at, uploaded_at, expires_at, seq)
    select x.mid, x.gid, ${userId}, 1, '\\x00'::bytea, 'iv', ${SIZE}, 1, 'complete', 'media/' || x.gid || '/' || x.mid,
           now() - interval '8 days', now() - interval '8 days', now() - interval '8 days', now() - interval '8 days', now() - interval '1 hour', x.n
      from (select g.id as gid, gen_random_uuid() as mid, n from groups g cross join generate_series(1, ${PER_ORBIT}) n where g.owner_id = ${userId}) x`);
  await db.execute(sql`
    insert into orbit_events (group_id, seq, type, actor_id, at, data, subject_id)
    select group_id, seq, 'media_uploaded', ${userId}, now() - interval '8 days', jsonb_build_object('id', id), id from media where author_id = ${userId}`);
  const result = (await db.execute(sql`select blob_key from media where author_id = ${userId}`)) as unknown as { rows: Array<{ blob_key: string }> };
  const keys = result.rows.map((r) => r.blob_key);
  // Each blob as the disk store keeps a completed file: one part and a manifest.
  const part = `000000.${'a'.repeat(64)}.part`;
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      for (let i = next++; i < keys.length; i = next++) {
        const dir = join(blobRoot, 'objects', keys[i]!);
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, part), Buffer.alloc(SIZE));
        await writeFile(join(dir, 'manifest.json'), JSON.stringify({ parts: [{ file: part, size: SIZE }] }));
      }
    }),
  );
  return keys;
}

async function measure(name: string, open: () => Promise<{ db: Db; close(): Promise<void> }>) {
  const dir = mkdtempSync(join(tmpdir(), 'orbital-bench-cleanup-'));
  const database = await open();
  try {
    await migrate(database.db);
    const config = parseConfig({ JWT_SECRET: 'bench-secret-0123456789-abcdefghijklmnop', DATA_DIR: dir, LOG_LEVEL: 'silent', RATE_LIMIT: 'off' });
    const deps = await buildNodeDeps({ config, db: database.db, blobRoot: join(dir, 'blobs') });
    const keys = await seed(database.db, join(dir, 'blobs'));
    const began = performance.now();
    const report = await runCleanup(deps);
    const seconds = (performance.now() - began) / 1000;
    const left = (await database.db.execute(sql`select count(*)::int as n from media`)) as unknown as { rows: Array<{ n: number }> };
    if (report.media_expired !== keys.length || report.blobs_deleted !== keys.length || Number(left.rows[0]!.n) !== 0) {
      throw new Error(`cleanup left work undone: ${JSON.stringify(report)}`);
    }
    return { database: name, 'expired media': keys.length, orbits: ORBITS, seconds: round(seconds, 2), 'media/s': Math.round(keys.length / seconds), 'blobs deleted': report.blobs_deleted!, 'quotas recomputed': report.quotas_recomputed! };
  } finally {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const bench: Bench = {
  name: 'cleanup',
  async run() {
    const rows: Array<Record<string, string | number>> = [await measure('PGlite (embedded)', () => openPglite())];
    const postgres = await freshPostgres();
    if (postgres) {
      rows.push(
        await measure('Postgres', async () => {
          const handle = openNodePostgres(postgres.url);
          return {
            db: handle.db,
            async close() {
              await handle.close();
              await postgres.drop();
            },
          };
        }),
      );
    }
    return {
      title: 'Cleanup: 10,000 expired media',
      rows,
      notes:
        'Goal: < 10 s. One runCleanup call: rows deleted and quotas released in batches of 500 (one transaction each), upload events scrubbed, ' +
        '10,000 media_expired events appended, the blob queue drained (10,000 folders removed from the disk store), touched quotas recomputed.',
    };
  },
};

export default bench;
