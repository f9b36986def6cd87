// Writes that name a thread or reply while it is being deleted, and ownership transfers racing the
// new owner's writes: each answers as the contract says (201/204, or 400/404 once the target is
// gone), never 500 (a foreign key failing) nor 503 (a deadlock between the two transactions).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, b64, createOrbit, post, registerUser } from '../support/api';
import { newReply, newThread } from '../support/content';
import { startUploadRaw, uploadFile } from '../support/media';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Counts answers by "label:status". */
function tally() {
  const counts: Record<string, number> = {};
  return {
    counts,
    add: (label: string) => (res: Response) => {
      counts[`${label}:${res.status}`] = (counts[`${label}:${res.status}`] ?? 0) + 1;
      return res.body?.cancel();
    },
  };
}

async function orbitWithMember() {
  const owner = await registerUser(t);
  const orbit = await createOrbit(t, owner);
  return { owner, orbit, member: await addMember(t, owner, orbit) };
}

const failures = (counts: Record<string, number>) => Object.keys(counts).filter((k) => /:5\d\d$/.test(k));

describe('writes naming a thread that is being deleted', () => {
  it('read markers: 10 trials of 8 markers racing the deletion, none answers 5xx', async () => {
    const { owner, orbit, member } = await orbitWithMember();
    const { counts, add } = tally();
    for (let trial = 0; trial < 10; trial++) {
      const thread = await newThread(t, owner, orbit.id);
      const marks = Array.from({ length: 8 }, (_, i) =>
        sleep(i % 3).then(() => t.fetch(`/api/threads/${thread.id}/read`, post({ seq: 1 }, member.auth, 'PUT')).then(add('read'))),
      );
      const deletion = sleep(1).then(() => t.fetch(`/api/threads/${thread.id}`, { method: 'DELETE', headers: owner.auth }).then(add('delete')));
      await Promise.all([...marks, deletion]);
    }
    expect(failures(counts), JSON.stringify(counts)).toEqual([]);
    expect(counts['delete:204']).toBe(10);
  });

  it('upload starts and attachments: 10 trials racing the deletion, none answers 5xx', async () => {
    const { owner, orbit, member } = await orbitWithMember();
    const { counts, add } = tally();
    for (let trial = 0; trial < 10; trial++) {
      const thread = await newThread(t, owner, orbit.id);
      const reply = await newReply(t, owner, thread.id);
      const file = await uploadFile(t, member, orbit.id, 10);
      const writes = [0, 1].flatMap((delay) => [
        sleep(delay).then(() => startUploadRaw(t, member, orbit.id, 10, { thread_id: thread.id }).then(add('start-thread'))),
        sleep(delay).then(() => startUploadRaw(t, member, orbit.id, 10, { reply_id: reply.id }).then(add('start-reply'))),
        sleep(delay).then(() => t.fetch(`/api/threads/${thread.id}/replies`, post({ key_epoch: 1, encrypted_body: b64(), parent_reply_id: reply.id }, member.auth)).then(add('reply'))),
      ]);
      writes.push(t.fetch(`/api/media/${file.mediaId}`, post({ thread_id: thread.id }, member.auth, 'PATCH')).then(add('attach-thread')));
      writes.push(sleep(1).then(() => t.fetch(`/api/media/${file.mediaId}`, post({ reply_id: reply.id }, member.auth, 'PATCH')).then(add('attach-reply'))));
      const deletion = sleep(1).then(() => t.fetch(`/api/threads/${thread.id}`, { method: 'DELETE', headers: owner.auth }).then(add('delete')));
      await Promise.all([...writes, deletion]);
      // Nothing the race let through outlives the thread: open uploads go, as the member would.
      for (const row of await t.sql<{ id: string }>("select id from media where author_id = $1 and status = 'uploading'", [member.id])) {
        await t.fetch(`/api/media/upload/${row.id}`, { method: 'DELETE', headers: member.auth }).then((r) => r.body?.cancel());
      }
    }
    expect(failures(counts), JSON.stringify(counts)).toEqual([]);
    expect(counts['delete:204']).toBe(10);
  });
});

describe('an ownership transfer racing the new owner’s writes', () => {
  it('8 trials: the transfer and every write succeed, no deadlock answers 503', async () => {
    const owner = await registerUser(t);
    const { counts, add } = tally();
    for (let trial = 0; trial < 8; trial++) {
      const orbit = await createOrbit(t, owner);
      const heir = await addMember(t, owner, orbit);
      const thread = await newThread(t, owner, orbit.id);
      const writes = Array.from({ length: 5 }, (_, i) => [
        sleep(i).then(() => t.fetch(`/api/threads/${thread.id}/replies`, post({ key_epoch: 1, encrypted_body: b64() }, heir.auth)).then(add('reply'))),
        sleep(i).then(() => t.fetch('/api/threads', post({ group_id: orbit.id, key_epoch: 1, encrypted_title: b64(), encrypted_body: b64() }, heir.auth)).then(add('thread'))),
      ]).flat();
      const transfer = sleep(2).then(() => t.fetch(`/api/groups/${orbit.id}/owner`, post({ user_id: heir.id }, owner.auth, 'PUT')).then(add('transfer')));
      await Promise.all([...writes, transfer]);
    }
    expect(counts, JSON.stringify(counts)).toEqual({ 'reply:201': 40, 'thread:201': 40, 'transfer:204': 8 });
  });
});
