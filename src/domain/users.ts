import { eq } from 'drizzle-orm';
import { users } from '../db/schema';
import type { Executor } from '../deps';

export type UserRow = typeof users.$inferSelect;

export function userView(u: Pick<UserRow, 'id' | 'username' | 'publicKey' | 'keyVersion' | 'createdAt'>) {
  return { id: u.id, username: u.username, public_key: u.publicKey, key_version: u.keyVersion, created_at: u.createdAt.toISOString() };
}

export async function findUserByName(db: Executor, username: string): Promise<UserRow | undefined> {
  const [row] = await db.select().from(users).where(eq(users.usernameLower, username.toLowerCase())).limit(1);
  return row;
}

export async function findUser(db: Executor, id: string): Promise<UserRow | undefined> {
  const [row] = await db.select().from(users).where(eq(users.id, id)).limit(1);
  return row;
}
