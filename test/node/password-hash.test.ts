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
});
