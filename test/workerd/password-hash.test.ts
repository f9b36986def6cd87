// Inside workerd: the hasher the Worker uses verifies a hash made on Node, and its own.
import { describe, expect, it } from 'vitest';
import argon2Wasm from '@phi-ag/argon2/argon2.wasm';
import { argon2Hashers } from '../../src/domain/password-hasher';
import { NODE_HASH, PASSWORD, WORKERD_HASH } from '../support/password-hashes';

const hasher = argon2Hashers(new WebAssembly.Instance(argon2Wasm, {}))('owasp');

describe('argon2id in workerd', () => {
  it('verifies the PHC string made on Node', async () => {
    expect(await hasher.verify(NODE_HASH, PASSWORD)).toBe(true);
    expect(await hasher.verify(NODE_HASH, `${PASSWORD}!`)).toBe(false);
  });

  it('still verifies its own committed hash', async () => {
    expect(await hasher.verify(WORKERD_HASH, PASSWORD)).toBe(true);
  });

  it('makes PHC strings at the OWASP parameters with a fresh salt each time', async () => {
    const a = await hasher.hash(PASSWORD);
    const b = await hasher.hash(PASSWORD);
    expect(a).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(a).not.toBe(b);
    expect(await hasher.verify(a, PASSWORD)).toBe(true);
    expect(await hasher.verify(a, 'something else entirely')).toBe(false);
  });

  it('answers false (never throws) for a malformed or foreign hash', async () => {
    expect(await hasher.verify('not a phc string', PASSWORD)).toBe(false);
    expect(await hasher.verify(NODE_HASH.replace('argon2id', 'argon2i'), PASSWORD)).toBe(false);
  });
});
