// Rate-limit lockouts in the audit trail: a refusal by a password or join budget is recorded once
// per limit, target and network per window (however many attempts it refuses), then rethrown.
import type { Clock, Executor } from '../../deps';
import { AppError } from '../errors';
import { limitName, refusalLimit, refusalResetAt } from '../limit-metrics';
import type { Window } from '../rate-limit';
import { recordLockout } from './record';

export interface LockedOut {
  /** The caller when known (a session holder), else null. */
  actorId?: string | null;
  /** The account the refused attempts were aimed at, when it exists. */
  targetId?: string | null;
  address: string | null;
}

/** A catch handler for a limiter call over `checks`: records a RATE_LIMITED refusal, rethrows anything. */
export function auditLockout(deps: { db: Executor; clock: Clock }, checks: Array<{ key: string; window: Window }>, who: LockedOut) {
  return async (err: unknown): Promise<never> => {
    if (err instanceof AppError && err.code === 'RATE_LIMITED') {
      const limit = refusalLimit(err);
      const window = checks.find((c) => limitName(c.key) === limit)?.window;
      const now = deps.clock.now();
      // The limiter's windows are fixed: this one began windowSec before it ends. Looking back
      // windowSec from now instead would find the previous window's row and record nothing.
      const end = refusalResetAt(err) ?? now;
      await recordLockout(deps.db, {
        by: { via: 'api', actorId: who.actorId ?? null, address: who.address },
        targetId: who.targetId ?? null,
        detail: limit,
        at: now,
        since: new Date(end.getTime() - (window?.windowSec ?? 0) * 1000),
      });
    }
    throw err;
  };
}
