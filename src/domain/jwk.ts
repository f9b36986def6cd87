// A user's public key: a JWK for RSA-OAEP or ECDH (EC / OKP). Private members are refused,
// so a careless client can never upload its private key.
import { z } from 'zod';
import { unstorableJson } from './json-input';

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const b64url = z.string().regex(/^[A-Za-z0-9_-]+$/, 'must be base64url').max(2048);
export const MAX_JWK_BYTES = 8 * 1024;

const rsa = z.looseObject({ kty: z.literal('RSA'), n: b64url, e: b64url.max(16), alg: z.enum(['RSA-OAEP', 'RSA-OAEP-256', 'RSA-OAEP-384', 'RSA-OAEP-512']).optional() });
const ec = z.looseObject({ kty: z.literal('EC'), crv: z.enum(['P-256', 'P-384', 'P-521']), x: b64url, y: b64url });
const okp = z.looseObject({ kty: z.literal('OKP'), crv: z.enum(['X25519', 'X448']), x: b64url });

export const publicJwk = z
  .discriminatedUnion('kty', [rsa, ec, okp])
  .superRefine((jwk, ctx) => {
    const unstorable = unstorableJson(jwk);
    if (unstorable) {
      ctx.addIssue({ code: 'custom', message: unstorable });
      return;
    }
    const present = PRIVATE_MEMBERS.filter((m) => m in jwk);
    if (present.length) ctx.addIssue({ code: 'custom', message: `must be a public key; remove the private members ${present.join(', ')}` });
    if (JSON.stringify(jwk).length > MAX_JWK_BYTES) ctx.addIssue({ code: 'custom', message: `must be at most ${MAX_JWK_BYTES} bytes` });
  });

export type PublicJwk = z.infer<typeof publicJwk>;
