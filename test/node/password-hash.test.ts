// On Node: the hasher the server uses verifies a hash made inside workerd, and its own.
import { describe, expect, it } from 'vitest';
import { loadHasher } from '../../src/runtime/node-deps';
import { NODE_HASH, PASSWORD, WORKERD_HASH } from '../support/password-hashes';

describe('argon2id on Node', () => {
  it('verifies the PHC string made in workerd', async () => {
    const hasher = await loadHasher();
    expect(await hasher.verify(WORKERD_HASH, PASSWORD)).toBe(true);
    expect(await hasher.verify(WORKERD_HASH, `${PASSWORD}!`)).toBe(false);
  });

  it('still verifies its own committed hash, and fresh ones', async () => {
    const hasher = await loadHasher();
    expect(await hasher.verify(NODE_HASH, PASSWORD)).toBe(true);
    const fresh = await hasher.hash(PASSWORD);
    expect(fresh).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(fresh).not.toBe(NODE_HASH);
    expect(await hasher.verify(fresh, PASSWORD)).toBe(true);
  });

  it('answers false (never throws) for a malformed or foreign hash', async () => {
    const hasher = await loadHasher();
    expect(await hasher.verify('not a phc string', PASSWORD)).toBe(false);
    expect(await hasher.verify(WORKERD_HASH.replace('argon2id', 'argon2i'), PASSWORD)).toBe(false);
  });

  it('checks an unknown username against a hash at its own cost, for each cost', async () => {
    const params = (phc: string) => phc.split('$').slice(1, 4).join('$');
    for (const [cost, expected] of [['owasp', 'argon2id$v=19$m=19456,t=2,p=1'], ['insecure-test', 'argon2id$v=19$m=1024,t=1,p=1']] as const) {
      const hasher = await loadHasher(cost);
      expect(params(await hasher.hash(PASSWORD))).toBe(expected);
      expect(params(hasher.dummyHash)).toBe(expected);
      // A hash made at one cost verifies at any setting: the cost is read from the stored string.
      expect(await (await loadHasher(cost === 'owasp' ? 'insecure-test' : 'owasp')).verify(await hasher.hash(PASSWORD), PASSWORD)).toBe(true);
    }
  });
});
