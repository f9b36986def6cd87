// The typed client's request loop against the real server: the contract's errors as ApiError,
// refresh on TOKEN_EXPIRED (once for many callers, tokens rotating), and creating POSTs retried
// after a lost answer without creating twice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, NetworkError, OrbitalClient, SecureClient, type TokenPair } from '../../src/client';
import { signAccessToken } from '../../src/domain/tokens';
import { unique } from '../support/api';
import { createTarget } from '../support/node-target';
import { offeredOperations, requireOperations, serverUrl } from '../support/offered';

let t: Awaited<ReturnType<typeof createTarget>>;
let server: string;
const PASSWORD = 'correct horse battery staple';

beforeAll(async () => {
  t = await createTarget();
  server = await serverUrl(t);
});
afterAll(() => t?.close());

/** A fetch that records every call (method, path) and can lose answers on purpose. */
function recordingFetch(loseAnswers: (method: string, path: string) => boolean = () => false) {
  const calls: string[] = [];
  const impl: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    const call = `${init?.method ?? 'GET'} ${url.pathname}`;
    calls.push(call);
    const res = await fetch(input, init);
    if (loseAnswers(init?.method ?? 'GET', url.pathname)) {
      await res.body?.cancel();
      throw new TypeError('fetch failed (answer lost on purpose)');
    }
    return res;
  };
  return { calls, impl };
}

/** An access token of this session that expired a minute ago (signed like the server signs). */
async function expired(access: string): Promise<string> {
  const claims = JSON.parse(Buffer.from(access.split('.')[1]!, 'base64url').toString()) as { sub: string; sid: string };
  const secret = new TextEncoder().encode(t.env.JWT_SECRET!);
  return signAccessToken(secret, claims.sub, claims.sid, new Date(Date.now() - 16 * 60_000));
}

async function newUser() {
  const api = new OrbitalClient({ server });
  const { secure, auth } = await SecureClient.register(api, { username: unique('http'), password: PASSWORD });
  return { api, secure, auth };
}

describe('errors', () => {
  it('surface as ApiError with the contract’s code, message, request id and details', async () => {
    const api = new OrbitalClient({ server });
    const err = await api.login(unique('nobody'), PASSWORD).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 401, code: 'INVALID_CREDENTIALS' });
    expect((err as ApiError).requestId).toMatch(/\S/);
    expect((err as ApiError).message).toMatch(/\S/);

    const bad = await api.register({ username: 'x', password: 'short', public_key: { kty: 'RSA' } }).catch((e: unknown) => e);
    expect(bad).toMatchObject({ status: 400, code: 'VALIDATION_ERROR' });
  });

  it('an unreachable server is a NetworkError after the retries a safe request gets', async () => {
    const api = new OrbitalClient({ server: 'http://127.0.0.1:9', retries: 2, backoffMs: 1 });
    await expect(api.config()).rejects.toBeInstanceOf(NetworkError);
  });
});

describe('tokens', () => {
  it('an expired access token is refreshed on TOKEN_EXPIRED and the call retried; the pair rotates', async () => {
    const { auth } = await newUser();
    const saved: (TokenPair | null)[] = [];
    const rec = recordingFetch();
    const api = new OrbitalClient({
      server,
      tokens: { access_token: await expired(auth.access_token), refresh_token: auth.refresh_token },
      onTokens: (pair) => void saved.push(pair),
      fetch: rec.impl,
      refreshMarginMs: -Infinity, // only the server's answer may trigger the refresh here
    });
    await expect(api.listGroups()).resolves.toEqual({ items: [] });
    expect(rec.calls).toEqual(['GET /api/groups', 'POST /api/auth/refresh', 'GET /api/groups']);
    expect(saved).toHaveLength(1);
    expect(saved[0]!.refresh_token).not.toBe(auth.refresh_token);
    expect(api.tokens).toEqual(saved[0]);
    await api.listGroups();
    expect(rec.calls).toHaveLength(4);
  });

  it('many calls waiting on an expired token share a single refresh', async () => {
    const { auth } = await newUser();
    const rec = recordingFetch();
    const api = new OrbitalClient({ server, tokens: { access_token: await expired(auth.access_token), refresh_token: auth.refresh_token }, fetch: rec.impl });
    const results = await Promise.all(Array.from({ length: 5 }, () => api.listGroups()));
    expect(results.every((r) => Array.isArray(r.items))).toBe(true);
    expect(rec.calls.filter((c) => c === 'POST /api/auth/refresh')).toHaveLength(1);
  });

  it('a pair another process already rotated is adopted instead of replaying the old refresh token', async () => {
    const { auth } = await newUser();
    let stored: TokenPair = { access_token: await expired(auth.access_token), refresh_token: auth.refresh_token };
    const store = { onTokens: (p: TokenPair | null) => void (p && (stored = p)), loadTokens: () => stored };
    const first = new OrbitalClient({ server, tokens: stored, ...store });
    const secondCalls = recordingFetch();
    const second = new OrbitalClient({ server, tokens: stored, ...store, fetch: secondCalls.impl });
    await first.listGroups(); // rotates the pair and stores it
    expect(stored.refresh_token).not.toBe(auth.refresh_token);
    await second.listGroups();
    expect(secondCalls.calls).toEqual(['GET /api/groups']);
    expect(second.tokens).toEqual(stored);
  });

  it('a session revoked elsewhere leaves the client logged out (onTokens(null)) with UNAUTHENTICATED', async (ctx) => {
    requireOperations(ctx, await offeredOperations(t), ['delete /api/users/me/sessions']);
    const { auth } = await newUser();
    const saved: (TokenPair | null)[] = [];
    const api = new OrbitalClient({ server, tokens: { access_token: await expired(auth.access_token), refresh_token: auth.refresh_token }, onTokens: (p) => void saved.push(p) });
    const other = new OrbitalClient({ server });
    await other.login(auth.user.username, PASSWORD);
    await other.revokeOtherSessions();
    await expect(api.listGroups()).rejects.toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
    expect(saved).toEqual([null]);
    expect(api.tokens).toBeNull();

    await other.logout();
    expect(other.tokens).toBeNull();
    await expect(other.listGroups()).rejects.toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
  });
});

describe('creating POSTs', () => {
  it('carry an Idempotency-Key, so a retry after a lost answer returns the first outcome and creates nothing more', async () => {
    const { auth, secure } = await newUser();
    let lost = 0;
    const rec = recordingFetch((method, path) => method === 'POST' && path === '/api/groups' && lost++ === 0);
    const api = new OrbitalClient({ server, tokens: auth, fetch: rec.impl, backoffMs: 1 });
    const retried = new SecureClient(api, secure.identity);
    const { group } = await retried.createOrbit('idempotent orbit');
    expect(rec.calls.filter((c) => c === 'POST /api/groups')).toHaveLength(2);
    const { items } = await api.listGroups();
    expect(items.map((g) => g.id)).toEqual([group.id]);
  });

  it('a POST without a key (join) is not repeated after a lost answer', async () => {
    const owner = await newUser();
    const { invite } = await owner.secure.createOrbit('join once');
    const joiner = await newUser();
    const rec = recordingFetch((method, path) => method === 'POST' && path === '/api/groups/join');
    const api = new OrbitalClient({ server, tokens: joiner.api.tokens, fetch: rec.impl, backoffMs: 1 });
    await expect(api.joinGroup(invite.code!)).rejects.toBeInstanceOf(NetworkError);
    expect(rec.calls.filter((c) => c === 'POST /api/groups/join')).toHaveLength(1);
  });
});
