// Per-IP request budgets through hono-rate-limiter, counted in our Postgres windows (rate-limit.ts)
// so every Node process and every Worker isolate shares them. Per-username budgets need the body
// and stay in the domain (auth.ts) on the same Limiter.
import type { Context, MiddlewareHandler } from 'hono';
import { rateLimiter, type ClientRateLimitInfo, type Store } from 'hono-rate-limiter';
import type { Deps } from '../deps';
import { auditLockout } from '../domain/audit/lockout';
import { AppError } from '../domain/errors';
import { limitKey, limits } from '../domain/limits';
import { rateLimited, type Limiter, type Window } from '../domain/rate-limit';
import type { AppEnv } from './env';

/** hono-rate-limiter's Store over our Limiter port. */
export class LimiterStore implements Store<AppEnv> {
  readonly localKeys = false;
  constructor(
    private readonly limiter: Limiter,
    private readonly window: Window,
  ) {}

  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    const state = await this.limiter.peek(key);
    return state ? { totalHits: state.total, resetTime: state.resetAt } : undefined;
  }

  async increment(key: string): Promise<ClientRateLimitInfo> {
    const { total, resetAt } = await this.limiter.hit(key, this.window);
    return { totalHits: total, resetTime: resetAt };
  }

  async decrement(key: string): Promise<void> {
    await this.limiter.release(key);
  }

  async resetKey(key: string): Promise<void> {
    await this.limiter.reset(key);
  }
}

interface IpBudget {
  key: (ip: string) => string;
  /** A refusal is a lockout in the audit trail (password guessing), not just load shedding. */
  audited?: boolean;
  window: (budgets: ReturnType<typeof limits>) => Window;
  /** Only requests for which this is true keep their unit (e.g. failed password checks); default all. */
  counts?: (c: Context<AppEnv>) => boolean;
}

/**
 * A per-IP budget. The unit is taken before the handler runs (before any argon2 work), so parallel
 * attempts cannot overrun it; with `counts`, requests that turn out not to count give it back.
 * Built once per Deps: once per process on Node, per request on Workers (whose I/O is per request).
 */
function ipBudget(budget: IpBudget): MiddlewareHandler<AppEnv> {
  const built = new WeakMap<Deps, MiddlewareHandler<AppEnv>>();
  const build = (deps: Deps): MiddlewareHandler<AppEnv> => {
    const window = budget.window(limits(deps.config));
    return rateLimiter<AppEnv>({
      windowMs: window.windowSec * 1000,
      limit: window.limit,
      store: new LimiterStore(deps.limiter, window),
      keyGenerator: (c) => budget.key(deps.clientIp(c)),
      skip: () => !deps.limiter.enabled,
      standardHeaders: false,
      ...(budget.counts ? { skipSuccessfulRequests: true, requestWasSuccessful: (c: Context<AppEnv>) => !budget.counts!(c) } : {}),
      // Our error shape and Retry-After, through the app's one error handler.
      // Not async: a refusal that is not audited throws at once, as the limiter's own call expects.
      handler: (c) => {
        const info = c.get('rateLimit');
        const reset = info?.resetTime ?? new Date(deps.clock.now().getTime() + window.windowSec * 1000);
        const ip = deps.clientIp(c);
        const refusal = rateLimited(reset, deps.clock.now(), undefined, budget.key(ip));
        if (!budget.audited) throw refusal;
        return auditLockout(deps, [{ key: budget.key(ip), window }], { address: ip })(refusal);
      },
    }) as MiddlewareHandler<AppEnv>;
  };
  return (c, next) => {
    const deps = c.get('deps');
    let middleware = built.get(deps);
    if (!middleware) built.set(deps, (middleware = build(deps)));
    return middleware(c, next);
  };
}

const failedPasswordCheck = (c: Context<AppEnv>) => c.error instanceof AppError && c.error.code === 'INVALID_CREDENTIALS';

/** Failed logins per IP (password change and account deletion use the account's own budget: strangers cannot spend it). */
export const passwordIpBudget = ipBudget({
  key: limitKey.passwordIp,
  window: (b) => b.passwordFailuresPerIp,
  audited: true,
  counts: failedPasswordCheck,
});

/** Registration attempts per IP. */
export const registerIpBudget = ipBudget({ key: limitKey.registerIp, window: (b) => b.registrationsPerIp });

/** Refresh attempts per IP. */
export const refreshIpBudget = ipBudget({ key: limitKey.refreshIp, window: (b) => b.refreshesPerIp });
