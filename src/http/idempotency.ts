// Idempotency-Key on creating POSTs: keyed by (user, path, key). The first request claims the key
// with one insert; a retry gets the first outcome (same status, the resource as it is now); a
// different body or a retry while the first still runs is 409. Failed attempts release the key.
// The outcome is recorded in the create's own transaction: a process killed after the commit
// leaves the key done, never a resource behind a claim that a later retry would take over.
// The table keeps no secret and no content: only the status, the resource id and, where nothing
// can be reloaded, a body without secrets. A retry reloads the resource; one deleted since answers
// as a read of it would (404), so deleting content leaves nothing of it here.
import { and, eq, lt, or } from 'drizzle-orm';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { idempotencyKeys } from '../db/schema';
import { bytesToHex, sha256 } from '../domain/bytes';
import { AppError } from '../domain/errors';
import type { AppEnv } from './env';
import type { Tx } from '../deps';
import { write, type Outbox } from '../domain/tx';

export const IDEMPOTENCY_TTL_MS = 48 * 3600_000;
/** A claim older than this whose request never finished (a crashed process) may be taken over. */
const ABANDONED_MS = 5 * 60_000;
const KEY = /^[\x21-\x7e]{1,64}$/;
const UUID_IN_PATH = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

export interface Created<T> {
  status: ContentfulStatusCode;
  body: T;
  /** Id to reload the resource by on a retry. */
  resourceId?: string;
  /**
   * What the table keeps for a retry, handed to `reload` (or answered as is without one). Never a
   * secret (an invite code) or ciphertext; default: nothing when the resource can be reloaded,
   * else the body.
   */
  kept?: unknown;
}

/** A create: its writes in one transaction, and the answer made from them (inside it too). */
export interface Creation<R, T> {
  write(tx: Tx, outbox: Outbox): Promise<R>;
  answer(result: R, tx: Tx): Created<T> | Promise<Created<T>>;
}

/**
 * Callers `return await` it: an invalid key rejects before the first await, and workerd reports
 * a rejection whose handler arrives a microtask later (`return promise`) as unhandled.
 */
export async function idempotent<R, T>(
  c: Context<AppEnv>,
  input: unknown,
  creation: Creation<R, T>,
  /** The resource as it is now; throws NOT_FOUND when it is gone. */
  reload?: (id: string, kept: unknown) => Promise<unknown>,
): Promise<Response> {
  const deps = c.get('deps');
  const create = (settle?: (tx: Tx, out: Created<T>) => Promise<void>) =>
    write(deps, async (tx, outbox) => {
      const out = await creation.answer(await creation.write(tx, outbox), tx);
      await settle?.(tx, out);
      return out;
    });
  const key = c.req.header('idempotency-key');
  if (key === undefined) {
    const out = await create();
    return c.json(out.body as object, out.status);
  }
  if (!KEY.test(key)) throw new AppError('VALIDATION_ERROR', 'Idempotency-Key must be 1–64 visible ASCII characters.');
  const { db, clock } = deps;
  const userId = c.get('auth').userId;
  // Ids in the path as stored (lower case): the same request naming them in upper case is a retry.
  const route = `${c.req.method} ${c.req.path.replace(UUID_IN_PATH, (id) => id.toLowerCase())}`;
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
    // A resource deleted since answers NOT_FOUND, as reading it would.
    const body = reload && first.resourceId ? await reload(first.resourceId, first.response) : first.response;
    c.header('Idempotent-Replayed', 'true');
    return c.json(body as object, first.status as ContentfulStatusCode);
  }

  let out: Created<T>;
  try {
    out = await create(async (tx, made) => {
      await tx
        .update(idempotencyKeys)
        .set({ state: 'done', status: made.status, resourceId: made.resourceId ?? null, response: (made.kept ?? (reload ? null : made.body)) as object | null })
        .where(where);
    });
  } catch (err) {
    await db.delete(idempotencyKeys).where(where);
    throw err;
  }
  return c.json(out.body as object, out.status);
}
