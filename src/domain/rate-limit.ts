// Fixed-window counters kept in Postgres, so every Node process and every Worker isolate
// shares them. One upsert per check: the window resets itself when it has ended.
import { sql } from 'drizzle-orm';
import { rateLimits } from '../db/schema';
import type { Clock, Db } from '../deps';
import { AppError } from './errors';
import { tagRefusal } from './limit-metrics';

export interface Window {
  limit: number;
  windowSec: number;
}

export interface Limiter {
  readonly enabled: boolean;
  /** Adds `cost` to the key's window; returns the total and when the window ends. */
  hit(key: string, window: Window, cost?: number): Promise<{ total: number; resetAt: Date }>;
  /** The current total without adding to it. */
  peek(key: string): Promise<{ total: number; resetAt: Date } | null>;
  /** Gives back `cost` taken by hit() in the current window (never below zero; a new window is untouched). */
  release(key: string, cost?: number): Promise<void>;
  reset(key: string): Promise<void>;
}

export function createPgLimiter(db: Db, clock: Clock, enabled: boolean): Limiter {
  return {
    enabled,
    async hit(key, window, cost = 1) {
      const now = clock.now();
      const end = new Date(now.getTime() + window.windowSec * 1000);
      const [row] = await db
        .insert(rateLimits)
        .values({ key, windowStart: now, windowEnd: end, hits: cost })
        .onConflictDoUpdate({
          target: rateLimits.key,
          set: {
            hits: sql`case when ${rateLimits.windowEnd} <= ${now} then ${cost} else ${rateLimits.hits} + ${cost} end`,
            windowStart: sql`case when ${rateLimits.windowEnd} <= ${now} then ${now} else ${rateLimits.windowStart} end`,
            windowEnd: sql`case when ${rateLimits.windowEnd} <= ${now} then ${end} else ${rateLimits.windowEnd} end`,
          },
        })
        .returning({ total: rateLimits.hits, resetAt: rateLimits.windowEnd });
      return row!;
    },
    async peek(key) {
      const rows = await db
        .select({ total: rateLimits.hits, resetAt: rateLimits.windowEnd })
        .from(rateLimits)
        .where(sql`${rateLimits.key} = ${key} and ${rateLimits.windowEnd} > ${clock.now()}`);
      return rows[0] ?? null;
    },
    async release(key, cost = 1) {
      await db
        .update(rateLimits)
        .set({ hits: sql`greatest(0, ${rateLimits.hits} - ${cost})` })
        .where(sql`${rateLimits.key} = ${key} and ${rateLimits.windowEnd} > ${clock.now()}`);
    },
    async reset(key) {
      await db.delete(rateLimits).where(sql`${rateLimits.key} = ${key}`);
    },
  };
}

/** `key`: the refusing limit's key, counted by name in the metrics. */
export function rateLimited(resetAt: Date, now: Date, details?: Record<string, unknown>, key?: string): AppError {
  const retryAfter = Math.max(1, Math.ceil((resetAt.getTime() - now.getTime()) / 1000));
  const error = new AppError('RATE_LIMITED', undefined, { retry_after: retryAfter, ...details }, retryAfter);
  return key === undefined ? error : tagRefusal(error, key, resetAt);
}

/** Counts one unit against each window; throws RATE_LIMITED on the first that is over. */
export async function consume(limiter: Limiter, clock: Clock, checks: Array<{ key: string; window: Window; cost?: number }>): Promise<void> {
  if (!limiter.enabled) return;
  for (const check of checks) {
    const { total, resetAt } = await limiter.hit(check.key, check.window, check.cost);
    if (total > check.window.limit) throw rateLimited(resetAt, clock.now(), undefined, check.key);
  }
}

/**
 * Takes one unit from each window before costly work, so concurrent attempts cannot all slip
 * under the limit. Over a limit: gives the units back and throws RATE_LIMITED. Otherwise returns
 * the refund to call when the attempt turns out not to count (e.g. a correct password).
 */
export async function reserve(limiter: Limiter, clock: Clock, checks: Array<{ key: string; window: Window }>): Promise<() => Promise<void>> {
  if (!limiter.enabled) return async () => undefined;
  const taken: string[] = [];
  const refund = async () => {
    for (const key of taken.splice(0)) await limiter.release(key);
  };
  for (const check of checks) {
    const { total, resetAt } = await limiter.hit(check.key, check.window);
    taken.push(check.key);
    if (total > check.window.limit) {
      await refund();
      throw rateLimited(resetAt, clock.now(), undefined, check.key);
    }
  }
  return refund;
}
