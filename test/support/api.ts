// Helpers for API tests: every call goes through the target's real HTTP surface.
import { expect } from 'vitest';
import type { RequestOptions, Target } from './types';

let counter = 0;
export const unique = (prefix = 'u') => `${prefix}_${Date.now().toString(36)}${(counter++).toString(36)}${Math.random().toString(36).slice(2, 6)}`;

/** Random bytes as standard base64: stands in for ciphertext. */
export function b64(bytes = 32): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('base64');
}

export function publicKey() {
  return { kty: 'OKP', crv: 'X25519', x: Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url') };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export function post(body: unknown, headers: Record<string, string> = {}, method = 'POST'): RequestOptions {
  return { method, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

export async function json<T = any>(res: Response): Promise<T> {
  const text = await res.text();
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`expected JSON, got ${res.status}: ${text.slice(0, 200)}`);
  }
}

/** Asserts the contract's error shape, status and code; returns the error object. */
export async function expectError(res: Response, status: number, code: string) {
  const body = await json(res);
  expect({ status: res.status, code: body?.error?.code }, JSON.stringify(body)).toEqual({ status, code });
  expect(typeof body.error.message).toBe('string');
  expect(body.error.request_id).toBe(res.headers.get('x-request-id'));
  expect(JSON.stringify(body)).not.toMatch(/\bat .+\.(ts|js):\d+|SELECT |INSERT |stack/i);
  return body.error as { code: string; message: string; request_id: string; details?: Record<string, any> };
}

export async function expectStatus(res: Response, status: number) {
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${(await res.text()).slice(0, 300)}`);
  return res;
}

export interface TestUser {
  id: string;
  username: string;
  password: string;
  access: string;
  refresh: string;
  auth: { authorization: string };
  publicKey: Record<string, string>;
}

export async function registerUser(t: Target, options: { username?: string; password?: string; inviteCode?: string; ip?: string } = {}): Promise<TestUser> {
  const username = options.username ?? unique();
  const password = options.password ?? 'correct horse battery staple';
  const key = publicKey();
  const res = await t.fetch(
    '/api/auth/register',
    { ...post({ username, password, public_key: key, ...(options.inviteCode ? { invite_code: options.inviteCode } : {}) }), ip: options.ip },
  );
  await expectStatus(res, 201);
  const body = await json(res);
  return {
    id: body.user.id,
    username,
    password,
    access: body.access_token,
    refresh: body.refresh_token,
    auth: bearer(body.access_token),
    publicKey: key,
  };
}

export interface TestOrbit {
  id: string;
  inviteCode: string;
  group: any;
}

export async function createOrbit(t: Target, owner: TestUser, headers: Record<string, string> = {}): Promise<TestOrbit> {
  const res = await t.fetch('/api/groups', post({ encrypted_name: b64(24), encrypted_group_key: b64(256), key_check: b64(16) }, { ...owner.auth, ...headers }));
  await expectStatus(res, 201);
  const body = await json(res);
  return { id: body.group.id, inviteCode: body.invite.code, group: body.group };
}

/** Creates an invite (owner) usable `maxUses` times. */
export async function createInvite(t: Target, owner: TestUser, groupId: string, body: Record<string, unknown> = {}): Promise<string> {
  const res = await t.fetch(`/api/groups/${groupId}/invites`, post(body, owner.auth));
  await expectStatus(res, 201);
  return (await json(res)).code;
}

export async function joinOrbit(t: Target, user: TestUser, code: string) {
  const res = await t.fetch('/api/groups/join', post({ invite_code: code }, user.auth));
  await expectStatus(res, 200);
  return json(res);
}

/** Delivers the current-epoch key to a member (so they may write). */
export async function deliverKey(t: Target, by: TestUser, groupId: string, memberId: string, keyEpoch = 1) {
  const res = await t.fetch(`/api/groups/${groupId}/members/${memberId}/keys`, post({ keys: [{ key_epoch: keyEpoch, encrypted_group_key: b64(256) }] }, by.auth, 'PUT'));
  await expectStatus(res, 204);
}

/** A member who joined and holds the key: ready to write. */
export async function addMember(t: Target, owner: TestUser, orbit: TestOrbit): Promise<TestUser> {
  const user = await registerUser(t);
  const code = await createInvite(t, owner, orbit.id);
  await joinOrbit(t, user, code);
  await deliverKey(t, owner, orbit.id, user.id);
  return user;
}
