import { z } from '@hono/zod-openapi';
import { ciphertext, idParam, keyEpoch, page, timestamp, uuid } from '../../http/schemas';

export const GroupItem = z
  .object({
    id: uuid,
    encrypted_name: z.string(),
    role: z.enum(['owner', 'member']),
    owner_id: uuid.nullable(),
    member_count: z.number().int(),
    key_epoch: z.number().int(),
    key_status: z.enum(['pending', 'delivered']),
    encrypted_group_key: z.string().nullable(),
    last_seq: z.number().int(),
    joined_at: timestamp,
  })
  .openapi('GroupItem');

export const Group = GroupItem.extend({
  created_at: timestamp,
  created_by: uuid.nullable(),
  max_members: z.number().int(),
  key_check: z.string().nullable(),
}).openapi('Group');

export const Invite = z
  .object({
    id: uuid,
    code: z.string().nullable().openapi({
      description:
        'The code itself, only in the answer that created the invite; null in the owner\'s list, because the server keeps only a keyed hash of each code (a leaked database reveals no usable invite). Revoke by `id` (or by the code, if the client kept it).',
    }),
    code_hint: z.string().openapi({ description: 'First two characters of the code, to tell invites apart.' }),
    expires_at: timestamp,
    max_uses: z.number().int(),
    uses: z.number().int(),
    created_at: timestamp,
  })
  .openapi('Invite');

export const CreateGroupBody = z
  .object({
    encrypted_name: ciphertext(1024, 'encrypted_name'),
    encrypted_group_key: ciphertext(4096, 'encrypted_group_key'),
    key_check: ciphertext(64, 'key_check').optional(),
  })
  .openapi('CreateGroupBody');

export const JoinBody = z.object({ invite_code: z.string().max(64) }).openapi('JoinBody');

export const groupIdParam = idParam('groupId');

export const CreateInviteBody = z
  .object({
    expires_in_seconds: z.number().int().min(60).max(2_592_000).optional(),
    max_uses: z.number().int().min(1).max(1000).optional(),
  })
  .openapi('CreateInviteBody');

export const DeliverKeysBody = z
  .object({
    keys: z
      .array(z.object({ key_epoch: keyEpoch, encrypted_group_key: ciphertext(4096, 'encrypted_group_key') }))
      .min(1)
      .max(100),
  })
  .openapi('DeliverKeysBody');

export const memberParams = z.object({
  groupId: uuid.openapi({ param: { name: 'groupId', in: 'path' } }),
  userId: uuid.openapi({ param: { name: 'userId', in: 'path' } }),
});

export const UpdateGroupBody = z.object({ encrypted_name: ciphertext(1024, 'encrypted_name') }).openapi('UpdateGroupBody');

export const TransferOwnerBody = z
  .object({ user_id: uuid.openapi({ description: 'A member holding the key of the current epoch.' }) })
  .openapi('TransferOwnerBody');

export const Member = z
  .object({
    user_id: uuid,
    username: z.string(),
    public_key: z.record(z.string(), z.unknown()).openapi({ description: "The member's public key (JWK), to wrap the orbit key for." }),
    key_version: z.number().int(),
    role: z.enum(['owner', 'member']),
    key_status: z.enum(['pending', 'delivered']).openapi({ description: 'Whether the member holds the key of the current epoch.' }),
    key_delivered_by: uuid.nullable().openapi({ description: 'Who delivered the current-epoch key; null while pending.' }),
    joined_at: timestamp,
  })
  .openapi('Member');

export const MemberPage = page(Member).openapi('MemberPage');

export const OwnKey = z
  .object({
    key_epoch: z.number().int(),
    encrypted_group_key: z.string().openapi({ format: 'byte' }),
    delivered_by: uuid.nullable(),
    delivered_at: timestamp,
  })
  .openapi('OwnKey');

export const OwnKeyPage = page(OwnKey).openapi('OwnKeyPage');

/** Wraps per rotation; with 4 KiB wraps this needs about 5.5 MiB of JSON. */
export const MAX_ROTATION_KEYS = 1000;
export const ROTATION_MAX_BODY = 6 * 1024 * 1024;

export const RotateKeysBody = z
  .object({
    key_epoch: keyEpoch.openapi({ description: "The orbit's current key_epoch + 1." }),
    keys: z
      .array(z.object({ user_id: uuid, encrypted_group_key: ciphertext(4096, 'encrypted_group_key') }))
      .min(1)
      .max(MAX_ROTATION_KEYS)
      .openapi({ description: 'The new key wrapped for exactly the members holding the current epoch\'s key (the owner included).' }),
    key_check: ciphertext(64, 'key_check').optional().openapi({ description: "Replaces the orbit's key_check (which becomes null when omitted: the old one belongs to the old key)." }),
  })
  .openapi('RotateKeysBody');

export const InvitePage = page(Invite).openapi('InvitePage');

export const Quota = z
  .object({
    bytes_used: z.number().int(),
    bytes_reserved: z.number().int(),
    bytes_limit: z.number().int(),
    files_used: z.number().int(),
    files_reserved: z.number().int(),
    files_limit: z.number().int(),
    warning: z.boolean().openapi({ description: 'true at 80 % or more of either limit (used + reserved).' }),
  })
  .openapi('Quota');

export const inviteParams = z.object({
  groupId: uuid.openapi({ param: { name: 'groupId', in: 'path' } }),
  code: z
    .string()
    .max(64)
    .openapi({ param: { name: 'code', in: 'path' }, description: 'The invite code, or the invite id from the list.' }),
});
