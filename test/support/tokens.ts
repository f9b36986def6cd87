// Hand-made tokens for security tests, and accounts made straight in the database (for servers
// where nobody can register without an invite).
import { decodeJwt, SignJWT } from 'jose';
import { bearer, publicKey, unique } from './api';
import { TEST_ENV, type Target } from './types';

export const TEST_SECRET = new TextEncoder().encode(TEST_ENV.JWT_SECRET);

export interface TokenOverrides {
  sub?: string;
  sid?: string;
  typ?: string;
  iss?: string;
  aud?: string;
  /** Unix seconds. */
  exp?: number;
  alg?: 'HS256' | 'HS384' | 'HS512';
  secret?: Uint8Array;
}

/** An access token shaped like the server's, with any part overridden. */
export function signToken(o: TokenOverrides & { sub: string; sid: string }): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sid: o.sid, typ: o.typ ?? 'access' })
    .setProtectedHeader({ alg: o.alg ?? 'HS256', typ: 'JWT' })
    .setSubject(o.sub)
    .setIssuer(o.iss ?? 'orbital-relay')
    .setAudience(o.aud ?? 'orbital')
    .setIssuedAt(Math.min(now, (o.exp ?? now + 900) - 60))
    .setExpirationTime(o.exp ?? now + 900)
    .sign(o.secret ?? TEST_SECRET);
}

/** The claims of a token the server issued. */
export function claimsOf(token: string): { sub: string; sid: string; exp: number } {
  return decodeJwt(token) as { sub: string; sid: string; exp: number };
}

/** An account and a live session written directly into the database, with a valid access token. */
export async function seedUser(t: Target) {
  const username = unique('seed');
  const [user] = await t.sql<{ id: string }>(
    `insert into users (username, username_lower, password_hash, public_key) values ($1, $2, 'not-a-hash', $3) returning id`,
    [username, username.toLowerCase(), JSON.stringify(publicKey())],
  );
  const [session] = await t.sql<{ id: string }>(`insert into sessions (user_id, expires_at) values ($1, now() + interval '1 day') returning id`, [user!.id]);
  const access = await signToken({ sub: user!.id, sid: session!.id });
  return { id: user!.id, username, access, auth: bearer(access) };
}
