// POST /api/auth/register | login | refresh | logout
import type { OpenAPIHono } from '@hono/zod-openapi';
import { login, logout, refresh, register as registerAccount } from '../../domain/auth';
import { publish } from '../../domain/tx';
import type { AppEnv } from '../../http/env';
import { passwordIpBudget, refreshIpBudget, registerIpBudget } from '../../http/ip-limits';
import { defineRoute, jsonBody, jsonResponse } from '../../http/route';
import { AuthResult, LoginBody, RefreshBody, RegisterBody } from './schemas';

const result = (description: string) => jsonResponse(description, AuthResult);

const registerRoute = defineRoute({
  method: 'post',
  path: '/api/auth/register',
  operationId: 'auth.register',
  errors: ['CONFLICT', 'FORBIDDEN', 'NOT_FOUND', 'RATE_LIMITED'],
  public: true,
  tags: ['auth'],
  summary: 'Create an account (joins the invite’s orbit when REGISTRATION=invite)',
  description:
    'With REGISTRATION=invite, `invite_code` is required: an orbit invite (the account joins that orbit, pending) or a registration code the operator issued (`npm run admin -- registration invite-code`; the account joins no orbit). Unknown, expired, revoked and used-up codes of either kind answer 404 NOT_FOUND. REGISTRATION=closed answers 403.',
  request: { body: jsonBody(RegisterBody) },
  middleware: [registerIpBudget],
  responses: { 201: result('account created') },
});

const loginRoute = defineRoute({
  method: 'post',
  path: '/api/auth/login',
  operationId: 'auth.login',
  errors: ['INVALID_CREDENTIALS', 'RATE_LIMITED'],
  public: true,
  tags: ['auth'],
  summary: 'Log in and start a session',
  description:
    'Failed password checks: at most 10 per (username, client address) and 50 per address in 15 min (429 with Retry-After). Failures of one username from everywhere beyond 10 in 15 min slow each check (up to 3 s) instead of refusing it, so strangers cannot lock the owner out.',
  request: { body: jsonBody(LoginBody) },
  middleware: [passwordIpBudget],
  responses: { 200: result('logged in') },
});

const refreshRoute = defineRoute({
  method: 'post',
  path: '/api/auth/refresh',
  operationId: 'auth.refresh',
  errors: ['UNAUTHENTICATED', 'RATE_LIMITED'],
  public: true,
  tags: ['auth'],
  summary: 'Rotate a refresh token for a new pair',
  request: { body: jsonBody(RefreshBody) },
  middleware: [refreshIpBudget],
  responses: { 200: result('new token pair') },
});

const logoutRoute = defineRoute({
  method: 'post',
  path: '/api/auth/logout',
  operationId: 'auth.logout',
  public: true,
  tags: ['auth'],
  summary: 'End the session of this refresh token',
  request: { body: jsonBody(RefreshBody) },
  responses: { 204: { description: 'logged out' } },
});

export function register(app: OpenAPIHono<AppEnv>) {
  app.openapi(registerRoute, async (c) => {
    const deps = c.get('deps');
    const body = c.req.valid('json');
    const out = await registerAccount(deps, {
      username: body.username,
      password: body.password,
      publicKey: body.public_key,
      inviteCode: body.invite_code,
      ip: deps.clientIp(c),
      userAgent: c.req.header('user-agent'),
    });
    publish(deps, out.events);
    c.header('Cache-Control', 'no-store');
    return c.json({ user: out.user, ...out.tokens }, 201);
  });

  app.openapi(loginRoute, async (c) => {
    const deps = c.get('deps');
    const body = c.req.valid('json');
    const out = await login(deps, { ...body, ip: deps.clientIp(c), userAgent: c.req.header('user-agent') });
    c.header('Cache-Control', 'no-store');
    return c.json({ user: out.user, ...out.tokens }, 200);
  });

  app.openapi(refreshRoute, async (c) => {
    const deps = c.get('deps');
    const out = await refresh(deps, { refreshToken: c.req.valid('json').refresh_token, ip: deps.clientIp(c) });
    c.header('Cache-Control', 'no-store');
    return c.json({ user: out.user, ...out.tokens }, 200);
  });

  app.openapi(logoutRoute, async (c) => {
    await logout(c.get('deps'), c.req.valid('json').refresh_token);
    return c.body(null, 204);
  });
}
