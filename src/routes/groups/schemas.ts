import { z } from '@hono/zod-openapi';
import { ciphertext, timestamp } from '../../http/schemas';

export const GroupItem = z
  .object({
    id: z.uuid(),
    encrypted_name: z.string(),
    role: z.enum(['owner', 'member']),
    owner_id: z.uuid().nullable(),
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
  created_by: z.uuid().nullable(),
  max_members: z.number().int(),
  key_check: z.string().nullable(),
}).openapi('Group');

export const Invite = z
  .object({
    id: z.uuid(),
    code: z.string().nullable().openapi({ description: 'Only in the answer that created it: the server keeps a hash.' }),
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

export const groupIdParam = z.object({ groupId: z.uuid().openapi({ param: { name: 'groupId', in: 'path' } }) });

export const CreateInviteBody = z
  .object({
    expires_in_seconds: z.number().int().min(60).max(2_592_000).optional(),
    max_uses: z.number().int().min(1).max(1000).optional(),
  })
  .openapi('CreateInviteBody');

export const DeliverKeysBody = z
  .object({
    keys: z
      .array(z.object({ key_epoch: z.number().int().min(1).max(2_147_483_647), encrypted_group_key: ciphertext(4096, 'encrypted_group_key') }))
      .min(1)
      .max(100),
  })
  .openapi('DeliverKeysBody');

export const memberParams = z.object({
  groupId: z.uuid().openapi({ param: { name: 'groupId', in: 'path' } }),
  userId: z.uuid().openapi({ param: { name: 'userId', in: 'path' } }),
});
