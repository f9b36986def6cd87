// Invite codes are stored as an HMAC under a key of their own, derived from the server secret
// with HKDF and a label (never the token-signing key itself); invites hashed the earlier way,
// under the secret itself, keep working until they expire.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { createOrbit, expectError, expectStatus, json, post, registerUser } from '../support/api';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const encoder = new TextEncoder();

async function hmacBase64(key: Uint8Array, data: string): Promise<string> {
  const imported = await crypto.subtle.importKey('raw', key as Uint8Array<ArrayBuffer>, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return Buffer.from(await crypto.subtle.sign('HMAC', imported, encoder.encode(data))).toString('base64');
}

/** RFC 5869 HKDF-SHA256 with a zero salt and the label as info, computed here independently. */
async function derived(secret: Uint8Array, label: string): Promise<Uint8Array> {
  const prk = await crypto.subtle.importKey('raw', new Uint8Array(32), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const extracted = new Uint8Array(await crypto.subtle.sign('HMAC', prk, secret as Uint8Array<ArrayBuffer>));
  const expandKey = await crypto.subtle.importKey('raw', extracted, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const info = encoder.encode(label);
  const block = new Uint8Array(info.length + 1);
  block.set(info);
  block[info.length] = 1;
  return new Uint8Array(await crypto.subtle.sign('HMAC', expandKey, block));
}

describe('invite code key', () => {
  it('codes are hashed under the labelled derived key, not under the JWT secret', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const secret = encoder.encode(t.env.JWT_SECRET);
    const [row] = await t.sql<{ hash: string }>(`select encode(code_hash, 'base64') as hash from invites where group_id = $1`, [orbit.id]);
    const key = await derived(secret, 'orbital invite code hmac v1');
    expect(row!.hash).toBe(await hmacBase64(key, `invite:${orbit.inviteCode}`));
    expect(row!.hash).not.toBe(await hmacBase64(secret, `invite:${orbit.inviteCode}`));
  });

  it('an invite stored the earlier way still admits, and can be revoked by its code', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const secret = encoder.encode(t.env.JWT_SECRET);
    const code = 'Legacy' + Math.random().toString(36).slice(2, 4).replace(/[^a-z0-9]/g, 'x');
    const legacy = await hmacBase64(secret, `invite:${code}`);
    await t.sql(
      `insert into invites (group_id, code_hash, code_hint, created_by, expires_at, max_uses) values ($1, decode($2, 'base64'), $3, $4, now() + interval '1 day', 2)`,
      [orbit.id, legacy, code.slice(0, 2), owner.id],
    );
    const guest = await registerUser(t);
    const joined = await json(await expectStatus(await t.fetch('/api/groups/join', post({ invite_code: code }, guest.auth)), 200));
    expect(joined.group.id).toBe(orbit.id);
    await expectStatus(await t.fetch(`/api/groups/${orbit.id}/invites/${code}`, { method: 'DELETE', headers: owner.auth }), 204);
    await expectError(await t.fetch('/api/groups/join', post({ invite_code: code }, (await registerUser(t)).auth)), 404, 'NOT_FOUND');
  });
});
