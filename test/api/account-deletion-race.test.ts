// Deleting an account while its own writes are in flight: the deletion goes through (204) and
// each write lands before it (201) or finds the member gone (404); no deadlock answers 503, and
// no event keeps the account's name.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { createTarget } from '#target';
import { addMember, b64, createOrbit, post, registerUser } from '../support/api';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('an account deleted during its own writes', () => {
  it('8 trials of 8 threads racing the deletion: every deletion 204, no 5xx', async () => {
    const counts: Record<string, number> = {};
    const add = (label: string) => async (res: Response) => {
      counts[`${label}:${res.status}`] = (counts[`${label}:${res.status}`] ?? 0) + 1;
      await res.body?.cancel();
    };
    for (let trial = 0; trial < 8; trial++) {
      const owner = await registerUser(t);
      const orbit = await createOrbit(t, owner);
      const member = await addMember(t, owner, orbit);
      const writes = Array.from({ length: 8 }, (_, i) =>
        sleep(i).then(() => t.fetch('/api/threads', post({ group_id: orbit.id, key_epoch: 1, encrypted_title: b64(), encrypted_body: b64() }, member.auth)).then(add('thread'))),
      );
      const deletion = sleep(3).then(() => t.fetch('/api/users/me', { ...post({ password: member.password }, member.auth, 'DELETE') }).then(add('delete')));
      await Promise.all([...writes, deletion]);
      // A write that committed while the deletion ran is scrubbed too: no event keeps the name.
      const logged = await t.sql<{ data: unknown }>('select data from orbit_events where group_id = $1', [orbit.id]);
      expect(JSON.stringify(logged)).not.toContain(member.username);
    }
    expect(counts['delete:204'], JSON.stringify(counts)).toBe(8);
    expect(Object.keys(counts).filter((k) => /:5\d\d$/.test(k)), JSON.stringify(counts)).toEqual([]);
  });
});
