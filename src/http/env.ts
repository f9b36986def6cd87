import type { Deps } from '../deps';

export interface Auth {
  userId: string;
  sessionId: string;
  /** Unix seconds when the access token expires. */
  expiresAt: number;
}

export type AppEnv = {
  Bindings: Record<string, unknown>;
  Variables: {
    deps: Deps;
    auth: Auth;
    requestId: string;
    /** Set by hono-rate-limiter (http/ip-limits.ts) for the budget it checked last. */
    rateLimit?: { limit: number; used: number; remaining: number; resetTime: Date | undefined };
  };
};
