import { z } from '@hono/zod-openapi';
import { publicJwk } from '../../domain/jwk';
import { storableText, timestamp, uuid } from '../../http/schemas';

export const username = z.string().regex(/^[A-Za-z0-9_]{3,50}$/, 'must be 3–50 letters, digits or underscores');
export const password = z.string().min(12, 'must be at least 12 characters').max(256, 'must be at most 256 characters');
export const PublicKey = publicJwk.openapi('PublicKey', { description: 'JWK public key (RSA-OAEP, or EC/OKP for ECDH); private members are refused' });

export const User = z
  .object({ id: uuid, username: z.string(), public_key: z.record(z.string(), z.unknown()), key_version: z.number().int(), created_at: timestamp })
  .openapi('User');

export const AuthResult = z
  .object({ user: User, access_token: z.string(), refresh_token: z.string(), expires_in: z.number().int() })
  .openapi('AuthResult');

export const RegisterBody = z
  .object({ username, password, public_key: PublicKey, invite_code: z.string().max(64).optional() })
  .openapi('RegisterBody');

export const LoginBody = z.object({ username: storableText(64), password: z.string().max(1024) }).openapi('LoginBody');
export const RefreshBody = z.object({ refresh_token: z.string().min(1).max(256) }).openapi('RefreshBody');
