// The audit trail: who did what to whom, when and from which network, for the operator. Rows are
// written in the transaction of the action they record (never one without the other) and hold ids,
// an action name, a short detail (a reason, a limit's name) and a truncated address: never
// content, names or secrets. Kept AUDIT_RETENTION_DAYS (the hourly cleanup removes older rows).
import { and, eq, gte, sql } from 'drizzle-orm';
import { auditEvents } from '../../db/schema';
import type { Executor } from '../../deps';
import { truncateAddress } from './address';

export const AUDIT_ACTIONS = [
  'account.created',
  'account.deleted',
  'password.changed',
  'sessions.revoked',
  'member.removed',
  'ownership.transferred',
  'key.rotated',
  'invite.created',
  'invite.revoked',
  'orbit.deleted',
  'rate_limit.lockout',
  'quota.changed',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** Who acted and from where: a user through the API, or the operator through `npm run admin`. */
export interface Witness {
  via: 'api' | 'admin';
  actorId: string | null;
  /** The client's address as the server saw it; stored truncated. */
  address: string | null;
}

export const byUser = (actorId: string, address: string | null): Witness => ({ via: 'api', actorId, address });
export const OPERATOR: Witness = { via: 'admin', actorId: null, address: null };

export interface AuditEntry {
  action: AuditAction;
  by: Witness;
  /** The user acted upon (a removed member, a deleted account …). */
  targetId?: string | null;
  groupId?: string | null;
  /** A reason or a limit's name; never content. */
  detail?: string | null;
  at: Date;
}

const row = (e: AuditEntry) => ({
  action: e.action,
  via: e.by.via,
  actorId: e.by.actorId,
  targetId: e.targetId ?? null,
  groupId: e.groupId ?? null,
  detail: e.detail ?? null,
  address: truncateAddress(e.by.address),
  at: e.at,
});

export async function recordAudit(tx: Executor, entry: AuditEntry): Promise<void> {
  await tx.insert(auditEvents).values(row(entry));
}

/**
 * A rate limit started refusing: one row per limit, target and network per window (`since`: the
 * window's start), however many attempts it refuses.
 */
export async function recordLockout(db: Executor, entry: Omit<AuditEntry, 'action'> & { since: Date }): Promise<void> {
  const r = row({ ...entry, action: 'rate_limit.lockout' });
  const seen = and(
    eq(auditEvents.action, r.action),
    sql`${auditEvents.detail} is not distinct from ${r.detail}`,
    sql`${auditEvents.targetId} is not distinct from ${r.targetId}`,
    sql`${auditEvents.address} is not distinct from ${r.address}`,
    gte(auditEvents.at, entry.since),
  );
  // Concurrent refusals would each find no row and each insert one: they take turns on a lock of
  // this (limit, target, network), and the second one's statement then sees the first's row.
  const turn = [r.action, r.detail, r.targetId, r.address].join('|');
  await db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${turn}, 0))`);
    await tx.execute(sql`
      insert into ${auditEvents} (action, via, actor_id, target_id, group_id, detail, address, at)
      select ${r.action}, ${r.via}, ${r.actorId}::uuid, ${r.targetId}::uuid, ${r.groupId}::uuid, ${r.detail}, ${r.address}, ${r.at}::timestamptz
      where not exists (select 1 from ${auditEvents} where ${seen})`);
  });
}
