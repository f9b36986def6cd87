// Helpers for the orbit tests: reading the event log and invites straight from the database,
// and the HTTP calls the orbit tests repeat.
import { expect } from 'vitest';
import { b64, expectStatus, json, post, registerUser, type TestOrbit, type TestUser } from './api';
import type { Target } from './types';

export interface LoggedEvent {
  seq: number;
  type: string;
  actor_id: string | null;
  data: Record<string, any>;
}

/** The orbit's event log, in seq order. */
export async function eventLog(t: Target, groupId: string): Promise<LoggedEvent[]> {
  const rows = await t.sql<{ seq: string | number; type: string; actor_id: string | null; data: Record<string, any> | string }>(
    'select seq, type, actor_id, data from orbit_events where group_id = $1 order by seq',
    [groupId],
  );
  return rows.map((r) => ({ seq: Number(r.seq), type: r.type, actor_id: r.actor_id, data: typeof r.data === 'string' ? JSON.parse(r.data) : r.data }));
}

/** Events after `afterSeq`, checking that they continue the log without a gap. */
export async function newEvents(t: Target, groupId: string, afterSeq: number): Promise<LoggedEvent[]> {
  const all = await eventLog(t, groupId);
  const fresh = all.filter((e) => e.seq > afterSeq);
  expect(fresh.map((e) => e.seq)).toEqual(fresh.map((_, i) => afterSeq + 1 + i));
  return fresh;
}

/** Creates an invite and returns the whole answer (code and id). */
export async function createInviteFull(t: Target, owner: TestUser, groupId: string, body: Record<string, unknown> = {}) {
  const res = await t.fetch(`/api/groups/${groupId}/invites`, post(body, owner.auth));
  await expectStatus(res, 201);
  return json<{ id: string; code: string; code_hint: string; expires_at: string; max_uses: number; uses: number; created_at: string }>(res);
}

/** A member who joined and holds no key yet (pending). */
export async function pendingMember(t: Target, owner: TestUser, orbit: TestOrbit): Promise<TestUser> {
  const user = await registerUser(t);
  const invite = await createInviteFull(t, owner, orbit.id);
  await expectStatus(await join(t, user, invite.code), 200);
  return user;
}

export const join = (t: Target, user: TestUser, code: string, ip?: string) => t.fetch('/api/groups/join', { ...post({ invite_code: code }, user.auth), ip });

export const leave = (t: Target, by: TestUser, groupId: string, memberId = by.id) =>
  t.fetch(`/api/groups/${groupId}/members/${memberId}`, { method: 'DELETE', headers: by.auth });

export const getJson = async (t: Target, path: string, user: TestUser) => {
  const res = await t.fetch(path, { headers: user.auth });
  await expectStatus(res, 200);
  return json(res);
};

export const rotate = (t: Target, owner: TestUser, groupId: string, keyEpoch: number, userIds: string[], extra: Record<string, unknown> = {}) =>
  t.fetch(`/api/groups/${groupId}/keys`, post({ key_epoch: keyEpoch, keys: userIds.map((user_id) => ({ user_id, encrypted_group_key: b64(256) })), ...extra }, owner.auth));

export const deliver = (t: Target, by: TestUser, groupId: string, memberId: string, epochs: number[] = [1]) =>
  t.fetch(`/api/groups/${groupId}/members/${memberId}/keys`, post({ keys: epochs.map((key_epoch) => ({ key_epoch, encrypted_group_key: b64(256) })) }, by.auth, 'PUT'));

/** A random private address, so the rate-limit windows of different tests never meet. */
export const randomIp = () => `10.${[0, 0, 0].map(() => Math.floor(Math.random() * 254) + 1).join('.')}`;
