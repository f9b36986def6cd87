// Upgrading a database that holds what earlier versions stored: idempotency rows with invite codes
// and ciphertext are rewritten into what a retry now reloads from (retries still answer, without
// the codes), and events written by accounts deleted before the upgrade lose their names.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64, createOrbit, expectStatus, json, post, registerUser } from '../support/api';
import { newThread } from '../support/content';
import { createTarget } from '../support/node-target';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const MIGRATION = new URL('../../drizzle/0003_events_actor_idx_scrub_idempotency.sql', import.meta.url);

/** The migration's data statements, run again (they are idempotent). */
async function rerunScrub() {
  const statements = readFileSync(MIGRATION, 'utf8').split('--> statement-breakpoint').map((s) => s.trim());
  for (const statement of statements.filter((s) => !/^CREATE INDEX/i.test(s))) await t.sql(statement);
}

describe('idempotency rows from before the upgrade', () => {
  it('lose their invite codes and ciphertext, and their retries still answer', async () => {
    const owner = await registerUser(t);
    const send = (path: string, body: unknown, key: string) => t.fetch(path, post(body, { ...owner.auth, 'idempotency-key': key }));
    const orbitBody = { encrypted_name: b64(24), encrypted_group_key: b64(256) };
    const orbit = await json(await expectStatus(await send('/api/groups', orbitBody, 'k-orbit'), 201));
    const other = await createOrbit(t, owner);
    const invite = await json(await expectStatus(await send(`/api/groups/${other.id}/invites`, { max_uses: 3 }, 'k-invite'), 201));
    const threadBody = { group_id: other.id, key_epoch: 1, encrypted_title: b64(40), encrypted_body: b64(300) };
    const thread = await json(await expectStatus(await send('/api/threads', threadBody, 'k-thread'), 201));

    // What earlier versions kept: the whole first answer, and no resource id for invites.
    const keep = (key: string, response: unknown, resourceId: string | null) =>
      t.sql('update idempotency_keys set response = $3::jsonb, resource_id = $4 where user_id = $1 and key = $2', [owner.id, key, JSON.stringify(response), resourceId]);
    await keep('k-orbit', orbit, orbit.group.id);
    await keep('k-invite', invite, null);
    await keep('k-thread', thread, thread.id);

    await rerunScrub();
    const [row] = await t.sql<{ all: string }>('select string_agg(row_to_json(i)::text, chr(10)) as all from idempotency_keys i where user_id = $1', [owner.id]);
    for (const secret of [orbit.invite.code, invite.code, threadBody.encrypted_body, threadBody.encrypted_title, orbitBody.encrypted_group_key]) {
      expect(row!.all).not.toContain(secret);
    }

    const orbitReplay = await json(await expectStatus(await send('/api/groups', orbitBody, 'k-orbit'), 201));
    expect(orbitReplay).toMatchObject({ group: { id: orbit.group.id }, invite: { id: orbit.invite.id, code: null } });
    const inviteReplay = await json(await expectStatus(await send(`/api/groups/${other.id}/invites`, { max_uses: 3 }, 'k-invite'), 201));
    expect(inviteReplay).toMatchObject({ id: invite.id, code: null, max_uses: 3 });
    const threadReplay = await json(await expectStatus(await send('/api/threads', threadBody, 'k-thread'), 201));
    expect(threadReplay).toMatchObject({ id: thread.id, encrypted_body: threadBody.encrypted_body });
  });
});

describe('events of accounts deleted before the upgrade', () => {
  it('lose the name and key, keep the rest', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const kept = await newThread(t, owner, orbit.id);
    const gone = crypto.randomUUID();
    const data = { id: crypto.randomUUID(), author_id: gone, author_username: 'deleted_long_ago', encrypted_title: 'dGl0bGU=' };
    await t.sql(
      `insert into orbit_events (group_id, seq, type, actor_id, data) values ($1, 1000000, 'thread_created', $2, $3::jsonb)`,
      [orbit.id, gone, JSON.stringify(data)],
    );
    await rerunScrub();
    const [event] = await t.sql<{ actor_id: string | null; data: Record<string, unknown> }>('select actor_id, data from orbit_events where group_id = $1 and seq = 1000000', [orbit.id]);
    expect(event).toEqual({ actor_id: null, data: { ...data, author_id: null, author_username: null } });
    // The owner, who still exists, keeps everything.
    const [own] = await t.sql<{ actor_id: string; data: Record<string, unknown> }>(`select actor_id, data from orbit_events where group_id = $1 and subject_id = $2`, [orbit.id, kept.id]);
    expect(own).toMatchObject({ actor_id: owner.id, data: { author_id: owner.id, author_username: owner.username } });
  });
});
