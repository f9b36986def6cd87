// The thread-list benchmark's database: a fresh Postgres database, migrated, holding one orbit
// with 10,000 threads (two replies each, read markers on half) and a live session to call with.
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { openNodePostgres } from '../src/adapters/db-node-postgres';
import { migrate } from '../src/db/migrate';
import { signAccessToken } from '../src/domain/tokens';

export const BENCH_SECRET = 'orbital-bench-secret-0123456789-abcdefghijklmnop';

export interface BenchDatabase {
  url: string;
  groupId: string;
  userId: string;
  token: string;
  drop(): Promise<void>;
}

export async function createBenchDatabase(base: string, threads = 10_000): Promise<BenchDatabase> {
  const name = `orbital_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  const handle = openNodePostgres(url.toString(), 2);
  await migrate(handle.db);

  const userId = randomUUID();
  const otherId = randomUUID();
  const sessionId = randomUUID();
  const groupId = randomUUID();
  const q = (text: string, params: unknown[] = []) => handle.pool.query(text, params);
  await q(
    `insert into users (id, username, username_lower, password_hash, public_key)
     values ($1, 'bench', 'bench', 'x', '{}'), ($2, 'other', 'other', 'x', '{}')`,
    [userId, otherId],
  );
  await q(`insert into sessions (id, user_id, expires_at) values ($1, $2, now() + interval '1 day')`, [sessionId, userId]);
  await q(
    `insert into groups (id, encrypted_name, created_by, owner_id, member_count, max_members, last_seq)
     values ($1, decode('00', 'hex'), $2, $2, 2, 100, $3)`,
    [groupId, userId, threads * 3],
  );
  await q(`insert into group_members (group_id, user_id, role) values ($1, $2, 'owner'), ($1, $3, 'member')`, [groupId, userId, otherId]);
  await q(`insert into member_keys (group_id, user_id, key_epoch, encrypted_group_key) values ($1, $2, 1, decode('00', 'hex')), ($1, $3, 1, decode('00', 'hex'))`, [
    groupId,
    userId,
    otherId,
  ]);
  await q(`insert into group_quotas (group_id) values ($1)`, [groupId]);
  // Thread i has seq 3i - 2 and replies at 3i - 1 and 3i; ciphertext sizes like short real posts.
  await q(
    `insert into threads (group_id, author_id, key_epoch, encrypted_title, encrypted_body, reply_count, last_activity_seq, seq, created_at, last_activity_at)
     select $1, case when i % 2 = 0 then $2::uuid else $3::uuid end, 1,
            decode(repeat(md5(i::text), 3), 'hex'),
            decode(repeat(md5(i::text), 19), 'hex'),
            2, 3 * i, 3 * i - 2, now() - (($4 - i) || ' seconds')::interval, now() - (($4 - i) || ' seconds')::interval
     from generate_series(1, $4::int) i`,
    [groupId, userId, otherId, threads],
  );
  await q(
    `insert into replies (thread_id, group_id, author_id, key_epoch, encrypted_body, seq)
     select t.id, t.group_id, $2, 1, decode(repeat(md5(t.seq::text), 8), 'hex'), t.seq + k
     from threads t, generate_series(1, 2) k where t.group_id = $1`,
    [groupId, otherId],
  );
  await q(`insert into read_markers (thread_id, user_id, last_read_seq) select id, $2, seq + 1 from threads where group_id = $1 and seq % 2 = 1`, [groupId, userId]);
  await q('analyze');
  await handle.close();

  const token = await signAccessToken(new TextEncoder().encode(BENCH_SECRET), userId, sessionId, new Date());
  return {
    url: url.toString(),
    groupId,
    userId,
    token,
    async drop() {
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}
