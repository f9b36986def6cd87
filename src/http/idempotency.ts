// Idempotency-Key on creating POSTs: keyed by (user, path, key). The first request claims the key
// with one insert; a retry gets the first outcome (same status, the resource as it is now); a
// different body or a retry while the first still runs is 409. Failed attempts release the key.
import { and, eq, lt, or } from 'drizzle-orm';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { idempotencyKeys } from '../db/schema';
import { bytesToHex, sha256 } from '../domain/bytes';
import { AppError } from '../domain/errors';
import type { AppEnv } from './env';

export const IDEMPOTENCY_TTL_MS = 48 * 3600_000;
/** A claim older than this whose request never finished (a crashed process) may be taken over. */
const ABANDONED_MS = 5 * 60_000;
const KEY = /^[\x21-\x7e]{1,64}$/;

export interface Created<T> {
  status: ContentfulStatusCode;
  body: T;
  /** Id to reload the resource by on a retry. */
  resourceId?: string;
}

/**
 * Callers `return await` it: an invalid key rejects before the first await, and workerd reports
 * a rejection whose handler arrives a microtask later (`return promise`) as unhandled.
 */
export async function idempotent<T>(
  c: Context<AppEnv>,
  input: unknown,
  create: () => Promise<Created<T>>,
  reload?: (id: string) => Promise<unknown>,
): Promise<Response> {
  const key = c.req.header('idempotency-key');
  if (key === undefined) {
    const out = await create();
    return c.json(out.body as object, out.status);
  }
  if (!KEY.test(key)) throw new AppError('VALIDATION_ERROR', 'Idempotency-Key must be 1–64 visible ASCII characters.');
  const { db, clock } = c.get('deps');
  const userId = c.get('auth').userId;
  const route = `${c.req.method} ${c.req.path}`;
  const requestHash = bytesToHex(await sha256(JSON.stringify(input ?? null)));
  const now = clock.now();
  const where = and(eq(idempotencyKeys.userId, userId), eq(idempotencyKeys.route, route), eq(idempotencyKeys.key, key));

  // One insert claims the key; an expired claim, or one abandoned by a crashed request, gives way.
  const claimed = await db
    .insert(idempotencyKeys)
    .values({ userId, route, key, requestHash, state: 'running', createdAt: now })
    .onConflictDoUpdate({
      target: [idempotencyKeys.userId, idempotencyKeys.route, idempotencyKeys.key],
      set: { requestHash, state: 'running', createdAt: now, status: null, resourceId: null, response: null },
      setWhere: or(
        lt(idempotencyKeys.createdAt, new Date(now.getTime() - IDEMPOTENCY_TTL_MS)),
        and(eq(idempotencyKeys.state, 'running'), lt(idempotencyKeys.createdAt, new Date(now.getTime() - ABANDONED_MS))),
      ),
    })
    .returning({ key: idempotencyKeys.key });

  if (!claimed.length) {
    const [first] = await db.select().from(idempotencyKeys).where(where);
    if (!first) throw new AppError('CONFLICT', 'This Idempotency-Key was just released; retry.');
    if (first.requestHash !== requestHash) throw new AppError('CONFLICT', 'This Idempotency-Key was used with a different request.');
    if (first.state === 'running') throw new AppError('CONFLICT', 'A request with this Idempotency-Key is still running.');
    let body = first.response;
    if (reload && first.resourceId) {
      try {
        body = await reload(first.resourceId);
      } catch (err) {
        if (!(err instanceof AppError && err.code === 'NOT_FOUND')) throw err;
      }
    }
    c.header('Idempotent-Replayed', 'true');
    return c.json(body as object, first.status as ContentfulStatusCode);
  }

  let out: Created<T>;
  try {
    out = await create();
  } catch (err) {
    await db.delete(idempotencyKeys).where(where);
    throw err;
  }
  await db
    .update(idempotencyKeys)
    .set({ state: 'done', status: out.status, resourceId: out.resourceId ?? null, response: out.body as object })
    .where(where);
  return c.json(out.body as object, out.status);
}
