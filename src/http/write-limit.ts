import type { MiddlewareHandler } from 'hono';
import { AppError } from '../domain/errors';
import { limitKey, limits } from '../domain/limits';
import { consume } from '../domain/rate-limit';
import type { AppEnv } from './env';
import { sendError } from './errors';

/**
 * Per-user write budgets, by count and by bytes, on every authenticated write; `maxBody` is the
 * route's body cap. A declared Content-Length is charged up front (both runtimes stop reading a
 * body at its declared length). A body without one (chunked) is charged when its first bytes
 * arrive: the route's cap is taken, so concurrent streams cannot slip past the budget, and what
 * was not sent is given back once the handler is done. Every write pays for the bytes it read.
 */
export const writeLimit =
  (maxBody: number): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    const deps = c.get('deps');
    if (!deps.limiter.enabled) return next();
    const { userId } = c.get('auth');
    const budget = limits(deps.config);
    const bytesWindow = { key: limitKey.writeBytes(userId), window: budget.writeBytesPerUser };
    const declared = c.req.header('content-length');
    const charge = Number(declared ?? 0) || 0;
    await consume(deps.limiter, deps.clock, [
      { key: limitKey.writes(userId), window: budget.writesPerUser },
      ...(charge > 0 ? [{ ...bytesWindow, cost: charge }] : []),
    ]);
    // Checked before touching the body: on Node, reading `body` builds a full web Request.
    if (declared !== undefined) return next();
    const body = c.req.raw.body;
    if (body === null) return next();

    let read = 0;
    let charged = 0;
    let refused: AppError | undefined;
    const reader = body.getReader();
    const counted = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) return controller.close();
        if (!charged) {
          charged = maxBody;
          try {
            await consume(deps.limiter, deps.clock, [{ ...bytesWindow, cost: maxBody }]);
          } catch (err) {
            refused = err instanceof AppError ? err : undefined;
            // Errored, not thrown: the reader of the body sees the failure, nothing else does.
            controller.error(err);
            await reader.cancel().catch(() => undefined);
            return;
          }
        }
        read += value.byteLength;
        controller.enqueue(value);
      },
      cancel: (reason) => reader.cancel(reason),
    });
    c.req.raw = new Request(c.req.raw, { body: counted, duplex: 'half' } as RequestInit);
    try {
      await next();
    } finally {
      // Bytes past the cap are refused by the body limit that runs next (413), never stored.
      const unused = charged - Math.min(read, charged);
      if (unused > 0) await deps.limiter.release(bytesWindow.key, unused).catch(() => undefined);
    }
    // The refusal surfaced as a failed body read (a JSON parse error, a broken upload): say why.
    if (refused) c.res = sendError(c, refused);
  };
