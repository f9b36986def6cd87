// An orbit for the live benchmarks, written straight into a Postgres database in a few statements:
// `people` members (the first is the owner), each with a live session, and their access tokens.
import { randomUUID } from 'node:crypto';
import { openNodePostgres } from '../src/adapters/db-node-postgres';
import { migrate } from '../src/db/migrate';
import { signAccessToken } from '../src/domain/tokens';

export async function seedOrbit(url: string, people: number, jwtSecret: Uint8Array): Promise<{ groupId: string; tokens: string[] }> {
  const handle = openNodePostgres(url, 2);
  await migrate(handle.db);
  const q = (text: string, params: unknown[] = []) => handle.pool.query(text, params);
  const tag = randomUUID().slice(0, 8); // several orbits in one database: names stay unique
  const members = Array.from({ length: people }, (_, i) => ({ user: randomUUID(), session: randomUUID(), name: `live_${tag}_${i}` }));
  const groupId = randomUUID();
  const owner = members[0]!.user;
  try {
    await q(
      `insert into users (id, username, username_lower, password_hash, public_key) select u, n, n, 'x', '{}' from unnest($1::uuid[], $2::text[]) as t(u, n)`,
      [members.map((m) => m.user), members.map((m) => m.name)],
    );
    await q(`insert into sessions (id, user_id, expires_at) select s, u, now() + interval '1 day' from unnest($1::uuid[], $2::uuid[]) as t(s, u)`, [
      members.map((m) => m.session),
      members.map((m) => m.user),
    ]);
    await q(
      `insert into groups (id, encrypted_name, created_by, owner_id, member_count, max_members, last_seq) values ($1, decode('00', 'hex'), $2, $2, $3, $3, 0)`,
      [groupId, owner, members.length],
    );
    await q(`insert into group_members (group_id, user_id, role) select $1, u, case when u = $2 then 'owner' else 'member' end from unnest($3::uuid[]) as t(u)`, [
      groupId,
      owner,
      members.map((m) => m.user),
    ]);
    await q(`insert into member_keys (group_id, user_id, key_epoch, encrypted_group_key) select $1, u, 1, decode('00', 'hex') from unnest($2::uuid[]) as t(u)`, [
      groupId,
      members.map((m) => m.user),
    ]);
    await q(`insert into group_quotas (group_id) values ($1)`, [groupId]);
  } finally {
    await handle.close();
  }
  const tokens = await Promise.all(members.map((m) => signAccessToken(jwtSecret, m.user, m.session, new Date())));
  return { groupId, tokens };
}
