import { z } from '@hono/zod-openapi';
import { ciphertext, idParam, timestamp, TOO_LARGE, uuid } from '../../http/schemas';
import { unstorableJson } from '../../domain/json-input';
import { MAX_LISTED_SESSIONS } from '../../domain/user-sessions';
import { password, PublicKey } from '../auth/schemas';

export { User } from '../auth/schemas';

export const MAX_BACKUP_BYTES = 16 * 1024;
export const MAX_KDF_BYTES = 1024;

/** A password being checked (not set): any length the login form accepts. */
const givenPassword = z.string().min(1).max(1024);

export const PasswordBody = z.object({ current_password: givenPassword, new_password: password }).openapi('PasswordChange');
export const DeleteAccountBody = z.object({ password: givenPassword }).openapi('DeleteAccount');
export const PublicKeyBody = z.object({ public_key: PublicKey }).openapi('PublicKeyChange');

export const Session = z
  .object({ id: uuid, created_at: timestamp, last_used_at: timestamp, user_agent: z.string().nullable(), current: z.boolean() })
  .openapi('Session');
export const SessionList = z
  .object({ items: z.array(Session).openapi({ description: `Live sessions, most recently used first (at most ${MAX_LISTED_SESSIONS}).` }) })
  .openapi('SessionList');

const kdf = z
  .record(z.string(), z.unknown())
  .superRefine((value, ctx) => {
    const unstorable = unstorableJson(value);
    if (unstorable) {
      ctx.addIssue({ code: 'custom', message: unstorable });
      return;
    }
    if (new TextEncoder().encode(JSON.stringify(value)).length > MAX_KDF_BYTES) {
      ctx.addIssue({ code: 'custom', message: `kdf is larger than ${MAX_KDF_BYTES} bytes of JSON`, params: { reason: TOO_LARGE, limit: MAX_KDF_BYTES } });
    }
  })
  .openapi({ type: 'object', description: `The client's KDF parameters (opaque to the server), at most ${MAX_KDF_BYTES} bytes of JSON.` });

export const KeyBackup = z
  .object({ backup: ciphertext(MAX_BACKUP_BYTES, 'backup'), kdf })
  .openapi('KeyBackup', { description: 'The private key encrypted with a recovery secret that is not the login password.' });

export const CoMemberKey = z
  .object({ user_id: uuid, username: z.string(), public_key: z.record(z.string(), z.unknown()), key_version: z.number().int() })
  .openapi('CoMemberKey');

export const sessionIdParam = idParam('sessionId');
export const userIdParam = z.object({
  userId: z
    .union([uuid, z.literal('me')])
    .openapi({ param: { name: 'userId', in: 'path' }, description: 'A user id, or `me`' }),
});
