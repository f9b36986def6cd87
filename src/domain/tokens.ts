// Access tokens: short JWTs (HS256 pinned, typ "access", issuer and audience checked) naming the
// user and the session; refresh tokens and tickets: opaque random strings stored only as hashes.
import { decodeProtectedHeader, errors, jwtVerify, SignJWT } from 'jose';
import { base64url, hmacKey, randomBytes, sha256 } from './bytes';
import { AppError } from './errors';

export const ACCESS_TTL_SEC = 15 * 60;
const ISSUER = 'orbital-relay';
const AUDIENCE = 'orbital';
const ALG = 'HS256';

export interface AccessClaims {
  userId: string;
  sessionId: string;
  expiresAt: number;
}

export async function signAccessToken(secret: Uint8Array, userId: string, sessionId: string, now: Date): Promise<string> {
  const iat = Math.floor(now.getTime() / 1000);
  return new SignJWT({ sid: sessionId, typ: 'access' })
    .setProtectedHeader({ alg: ALG, typ: 'JWT' })
    .setSubject(userId)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(iat)
    .setExpirationTime(iat + ACCESS_TTL_SEC)
    .sign(await hmacKey(secret));
}

// Tokens that passed the check, per secret. The check of one token string under one secret always
// gives the same answer, so each token is checked once per process (an HMAC on the crypto thread
// pool: a seventh of a thread-list request's CPU), not on every request; its expiry is still
// checked on every use, and the session's liveness after this (sessions.ts). Only tokens that
// verified get in, so a caller cannot fill it without valid tokens; bounded, oldest out.
const verified = new WeakMap<Uint8Array, Map<string, AccessClaims>>();
const MAX_VERIFIED = 20_000;

export async function verifyAccessToken(secret: Uint8Array, token: string, now: Date): Promise<AccessClaims> {
  let known = verified.get(secret);
  if (!known) verified.set(secret, (known = new Map()));
  const hit = known.get(token);
  if (hit) {
    // As jose decides it: expired once `exp` is at or before the current second.
    if (hit.expiresAt > Math.floor(now.getTime() / 1000)) return hit;
    known.delete(token);
    throw new AppError('TOKEN_EXPIRED');
  }
  const claims = await checkAccessToken(secret, token, now);
  if (known.size >= MAX_VERIFIED) known.delete(known.keys().next().value!);
  known.set(token, claims);
  return claims;
}

async function checkAccessToken(secret: Uint8Array, token: string, now: Date): Promise<AccessClaims> {
  try {
    // The header is pinned before jose sees the token: only our algorithm and no extensions
    // (crit, b64, jku…). jose refuses those too, but it rejects them before its first await,
    // which workerd reports as an unhandled rejection even though we catch it.
    const header = decodeProtectedHeader(token);
    if (header.alg !== ALG || Object.keys(header).some((k) => k !== 'alg' && k !== 'typ')) throw new AppError('UNAUTHENTICATED');
    const { payload } = await jwtVerify(token, await hmacKey(secret), {
      algorithms: [ALG],
      issuer: ISSUER,
      audience: AUDIENCE,
      requiredClaims: ['sub', 'exp', 'sid'],
      currentDate: now,
    });
    if (payload.typ !== 'access') throw new AppError('UNAUTHENTICATED');
    if (typeof payload.sid !== 'string' || typeof payload.sub !== 'string') throw new AppError('UNAUTHENTICATED');
    return Object.freeze({ userId: payload.sub, sessionId: payload.sid, expiresAt: payload.exp! });
  } catch (err) {
    if (err instanceof errors.JWTExpired) throw new AppError('TOKEN_EXPIRED');
    throw new AppError('UNAUTHENTICATED', 'The access token is not valid; please log in again.');
  }
}

/** 256-bit opaque secret and the hash we keep of it. */
export async function newOpaqueToken(): Promise<{ token: string; hash: string }> {
  const token = base64url(randomBytes(32));
  return { token, hash: await hashOpaqueToken(token) };
}

/** base64 SHA-256 (the bytea column's app-side form). */
export async function hashOpaqueToken(token: string): Promise<string> {
  return Buffer.from(await sha256(token)).toString('base64');
}
