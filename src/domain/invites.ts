// Invite codes: 8 characters [A-Za-z0-9] drawn without bias from a CSPRNG, stored only as an
// HMAC under a key derived from the server secret with HKDF and its own label (a leaked database
// does not reveal usable codes, and the token-signing key is never used for anything else).
import { and, asc, count, eq, gt, inArray, isNull, lt, sql } from 'drizzle-orm';
import { invites } from '../db/schema';
import type { Executor } from '../deps';
import { hkdfSha256, hmacSha256, randomBytes } from './bytes';
import { AppError } from './errors';
import { afterTimeId, exactTime } from './keyset';
import { recordAudit, type Witness } from './audit/record';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const INVITE_CODE = /^[A-Za-z0-9]{8}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const MAX_ACTIVE_INVITES = 50;
export const DEFAULT_INVITE_TTL_SEC = 604_800;

export function generateInviteCode(length = 8): string {
  let code = '';
  while (code.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 4 × 62: bytes at or above it would favour the first letters.
      if (byte < 248 && code.length < length) code += ALPHABET[byte % 62];
    }
  }
  return code;
}

const INVITE_KEY_LABEL = 'orbital invite code hmac v1';
const inviteKeys = new WeakMap<Uint8Array, Promise<Uint8Array>>();

/** The invite HMAC key: HKDF-SHA256 of the server secret, labelled, so it is separate from the JWT key. */
function inviteKey(secret: Uint8Array): Promise<Uint8Array> {
  let key = inviteKeys.get(secret);
  if (!key) inviteKeys.set(secret, (key = hkdfSha256(secret, INVITE_KEY_LABEL)));
  return key;
}

/** A code's stored form: HMAC under the invite key, `kind` keeping orbit invites and registration codes apart. */
export async function hashCode(secret: Uint8Array, kind: 'invite' | 'registration', code: string): Promise<string> {
  return Buffer.from(await hmacSha256(await inviteKey(secret), `${kind}:${code}`)).toString('base64');
}

export const hashInviteCode = (secret: Uint8Array, code: string) => hashCode(secret, 'invite', code);

/**
 * The hash invites created before the derived key (keyed with the server secret itself) carry.
 * Looked up as well until they have all expired: invites live at most 30 days, so this goes in
 * the first release after 2027-01-04.
 */
async function legacyInviteHash(secret: Uint8Array, code: string): Promise<string> {
  return Buffer.from(await hmacSha256(secret, `invite:${code}`)).toString('base64');
}

/** The stored hashes a code may have: the current one first. */
async function codeHashes(secret: Uint8Array, code: string): Promise<string[]> {
  return [await hashInviteCode(secret, code), await legacyInviteHash(secret, code)];
}

export type InviteRow = typeof invites.$inferSelect;

export function inviteView(row: Pick<InviteRow, 'id' | 'codeHint' | 'expiresAt' | 'maxUses' | 'uses' | 'createdAt'>, code?: string) {
  return {
    id: row.id,
    code: code ?? null,
    code_hint: row.codeHint,
    expires_at: row.expiresAt.toISOString(),
    max_uses: row.maxUses,
    uses: row.uses,
    created_at: row.createdAt.toISOString(),
  };
}

/** Invites of an orbit that can still admit someone. */
const activeIn = (groupId: string, now: Date) =>
  and(eq(invites.groupId, groupId), isNull(invites.revokedAt), gt(invites.expiresAt, now), lt(invites.uses, invites.maxUses));

export async function createInvite(
  tx: Executor,
  secret: Uint8Array,
  input: { groupId: string; createdBy: string; now: Date; expiresInSec?: number; maxUses?: number; by: Witness },
) {
  // Callers hold the orbit row's lock (see groups.ts), so the count cannot go stale before the insert.
  const [active] = await tx.select({ n: count() }).from(invites).where(activeIn(input.groupId, input.now));
  if ((active?.n ?? 0) >= MAX_ACTIVE_INVITES) {
    throw new AppError('CONFLICT', `An orbit has at most ${MAX_ACTIVE_INVITES} active invites; revoke one first.`, { max_active_invites: MAX_ACTIVE_INVITES });
  }
  const code = generateInviteCode();
  const [row] = await tx
    .insert(invites)
    .values({
      groupId: input.groupId,
      codeHash: await hashInviteCode(secret, code),
      codeHint: code.slice(0, 2),
      createdBy: input.createdBy,
      createdAt: input.now,
      expiresAt: new Date(input.now.getTime() + (input.expiresInSec ?? DEFAULT_INVITE_TTL_SEC) * 1000),
      maxUses: input.maxUses ?? 1,
    })
    .returning();
  await recordAudit(tx, { action: 'invite.created', by: input.by, groupId: input.groupId, at: input.now });
  return { row: row!, code };
}

/** The invite a code names (optionally row-locked), whether or not it is still usable. */
export async function findInvite(tx: Executor, secret: Uint8Array, code: string, lock = false): Promise<InviteRow | null> {
  if (!INVITE_CODE.test(code)) return null;
  const query = tx.select().from(invites).where(inArray(invites.codeHash, await codeHashes(secret, code)));
  const [row] = lock ? await query.for('update') : await query;
  return row ?? null;
}

/**
 * An invite of this orbit by id, as the owner's list shows it (no code: it is not stored); NOT_FOUND
 * when gone, and with `revokedIsGone` also once revoked (what the owner deleted does not come back).
 */
export async function inviteById(db: Executor, groupId: string, inviteId: string, options: { revokedIsGone?: boolean } = {}) {
  const [row] = await db.select().from(invites).where(and(eq(invites.groupId, groupId), eq(invites.id, inviteId)));
  if (!row || (options.revokedIsGone && row.revokedAt)) throw new AppError('NOT_FOUND', 'No such invite.');
  return inviteView(row);
}

/** Unknown, expired, revoked and used-up codes all read the same. */
export const invalidInviteCode = () => new AppError('NOT_FOUND', 'This invite code is not valid.');

export function isUsable(row: InviteRow, now: Date): boolean {
  return !row.revokedAt && row.expiresAt > now && row.uses < row.maxUses;
}

export async function useInvite(tx: Executor, inviteId: string): Promise<void> {
  await tx.update(invites).set({ uses: sql`${invites.uses} + 1` }).where(eq(invites.id, inviteId));
}

/** Active invites in creation order (limit + 1 rows, for pageOf), each with its exact created_at for the cursor. */
export async function listActiveInvites(db: Executor, groupId: string, now: Date, page: { limit: number; after?: readonly [string, string] }) {
  const rows = await db
    .select({ row: invites, cursorAt: exactTime(invites.createdAt) })
    .from(invites)
    .where(and(activeIn(groupId, now), afterTimeId(invites.createdAt, invites.id, page.after)))
    .orderBy(asc(invites.createdAt), asc(invites.id))
    .limit(page.limit + 1);
  return rows.map((r) => ({ ...inviteView(r.row), cursorAt: r.cursorAt }));
}

/**
 * Revokes an invite of this orbit named by its code or by its id (the owner's list shows ids, not
 * codes). Revoking one that no longer admits anyone is a no-op; one the orbit never had is 404.
 */
export async function revokeInvite(tx: Executor, secret: Uint8Array, input: { groupId: string; codeOrId: string; now: Date; by: Witness }): Promise<void> {
  const { groupId, codeOrId, now } = input;
  const which = UUID.test(codeOrId)
    ? eq(invites.id, codeOrId.toLowerCase())
    : INVITE_CODE.test(codeOrId)
      ? inArray(invites.codeHash, await codeHashes(secret, codeOrId))
      : undefined;
  if (!which) throw new AppError('NOT_FOUND', 'No such invite.');
  const [row] = await tx
    .update(invites)
    .set({ revokedAt: now })
    .where(and(eq(invites.groupId, groupId), which, isNull(invites.revokedAt)))
    .returning({ id: invites.id });
  if (row) return recordAudit(tx, { action: 'invite.revoked', by: input.by, groupId, at: now });
  // Revoked before (a retried DELETE answers the same); the trail has it once.
  const [known] = await tx.select({ id: invites.id }).from(invites).where(and(eq(invites.groupId, groupId), which));
  if (!known) throw new AppError('NOT_FOUND', 'No such invite.');
}
