// Reading the audit trail (`npm run admin -- audit`), newest first.
import { and, desc, eq, gte, lt, or, type SQL } from 'drizzle-orm';
import { auditEvents } from '../../db/schema';
import type { Executor } from '../../deps';
import type { AuditAction } from './record';

export interface AuditFilter {
  /** Rows where this user acted or was acted upon. */
  userId?: string;
  groupId?: string;
  action?: AuditAction;
  since?: Date;
  limit: number;
}

export async function listAudit(db: Executor, filter: AuditFilter) {
  const where: SQL[] = [];
  if (filter.userId) where.push(or(eq(auditEvents.actorId, filter.userId), eq(auditEvents.targetId, filter.userId))!);
  if (filter.groupId) where.push(eq(auditEvents.groupId, filter.groupId));
  if (filter.action) where.push(eq(auditEvents.action, filter.action));
  if (filter.since) where.push(gte(auditEvents.at, filter.since));
  const rows = await db
    .select()
    .from(auditEvents)
    .where(where.length ? and(...where) : undefined)
    .orderBy(desc(auditEvents.at), desc(auditEvents.id))
    .limit(filter.limit);
  return rows.map((r) => ({
    at: r.at.toISOString(),
    action: r.action,
    via: r.via,
    actor_id: r.actorId,
    target_id: r.targetId,
    group_id: r.groupId,
    detail: r.detail,
    address: r.address,
  }));
}

/** What the retention cleanup removes. */
export const expiredAudit = (before: Date) => lt(auditEvents.at, before);
