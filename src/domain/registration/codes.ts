// Registration codes: issued by the operator (`npm run admin -- registration invite-code`) so that
// someone may create an account under REGISTRATION=invite without joining an orbit, which is how
// the first account of such a server is made. Same alphabet, randomness and keyed hash as orbit
// invites; a code that is unknown, expired, revoked or used up reads exactly as an unknown invite.
import { and, asc, eq, gt, isNull, lt, or, sql } from 'drizzle-orm';
import { registrationCodes } from '../../db/schema';
import type { Executor } from '../../deps';
import { AppError } from '../errors';
import { generateInviteCode, hashCode, INVITE_CODE } from '../invites';

export const REGISTRATION_CODE_TTL = { defaultSec: 7 * 86_400, minSec: 60, maxSec: 30 * 86_400 };
export const MAX_REGISTRATION_USES = 1000;

type Row = typeof registrationCodes.$inferSelect;

export function registrationCodeView(row: Row, code?: string) {
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

export async function createRegistrationCode(db: Executor, secret: Uint8Array, input: { now: Date; expiresInSec?: number; maxUses?: number }) {
  const ttl = input.expiresInSec ?? REGISTRATION_CODE_TTL.defaultSec;
  if (!Number.isInteger(ttl) || ttl < REGISTRATION_CODE_TTL.minSec || ttl > REGISTRATION_CODE_TTL.maxSec) {
    throw new AppError('VALIDATION_ERROR', 'A registration code lasts from 1 minute to 30 days.');
  }
  const maxUses = input.maxUses ?? 1;
  if (!Number.isInteger(maxUses) || maxUses < 1 || maxUses > MAX_REGISTRATION_USES) {
    throw new AppError('VALIDATION_ERROR', `A registration code admits 1 to ${MAX_REGISTRATION_USES} accounts.`);
  }
  const code = generateInviteCode();
  const [row] = await db
    .insert(registrationCodes)
    .values({ codeHash: await hashCode(secret, 'registration', code), codeHint: code.slice(0, 2), createdAt: input.now, expiresAt: new Date(input.now.getTime() + ttl * 1000), maxUses })
    .returning();
  return registrationCodeView(row!, code);
}

const usable = (now: Date) => and(isNull(registrationCodes.revokedAt), gt(registrationCodes.expiresAt, now), lt(registrationCodes.uses, registrationCodes.maxUses));

/**
 * Takes one use of `code` if it is a usable registration code (inside the registration's
 * transaction, so a failed registration gives the use back); false when it is not one.
 */
export async function useRegistrationCode(tx: Executor, secret: Uint8Array, code: string, now: Date): Promise<boolean> {
  if (!INVITE_CODE.test(code)) return false;
  const hash = await hashCode(secret, 'registration', code);
  // One statement: concurrent registrations with the last use cannot both take it.
  const used = await tx
    .update(registrationCodes)
    .set({ uses: sql`${registrationCodes.uses} + 1` })
    .where(and(eq(registrationCodes.codeHash, hash), usable(now)))
    .returning({ id: registrationCodes.id });
  return used.length > 0;
}

/** Whether `code` is a registration code that can still admit someone (read only). */
export async function isUsableRegistrationCode(db: Executor, secret: Uint8Array, code: string, now: Date): Promise<boolean> {
  if (!INVITE_CODE.test(code)) return false;
  const hash = await hashCode(secret, 'registration', code);
  const [row] = await db.select({ id: registrationCodes.id }).from(registrationCodes).where(and(eq(registrationCodes.codeHash, hash), usable(now)));
  return Boolean(row);
}

/** Codes that can still admit someone, oldest first. */
export async function listRegistrationCodes(db: Executor, now: Date) {
  const rows = await db.select().from(registrationCodes).where(usable(now)).orderBy(asc(registrationCodes.createdAt));
  return rows.map((row) => registrationCodeView(row));
}

/** Revokes a code, named by its id or by the code itself; NOT_FOUND when there is no such active code. */
export async function revokeRegistrationCode(db: Executor, secret: Uint8Array, idOrCode: string, now: Date) {
  const byId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(idOrCode);
  if (!byId && !INVITE_CODE.test(idOrCode)) throw new AppError('NOT_FOUND', 'No such registration code.');
  const which = byId ? eq(registrationCodes.id, idOrCode) : eq(registrationCodes.codeHash, await hashCode(secret, 'registration', idOrCode));
  const [row] = await db.update(registrationCodes).set({ revokedAt: now }).where(and(which, isNull(registrationCodes.revokedAt))).returning();
  if (!row) throw new AppError('NOT_FOUND', 'No such registration code.');
  return registrationCodeView(row);
}

/** What the retention cleanup removes: codes that can no longer admit anyone. */
export const spentRegistrationCodes = (now: Date) =>
  or(lt(registrationCodes.expiresAt, now), sql`${registrationCodes.revokedAt} is not null`, sql`${registrationCodes.uses} >= ${registrationCodes.maxUses}`)!;
