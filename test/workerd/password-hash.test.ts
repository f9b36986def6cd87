// Inside workerd: the hasher the Worker uses verifies a hash made on Node, and its own.
import { describe, expect, it } from 'vitest';
import argon2Wasm from '@phi-ag/argon2/argon2.wasm';
import { argon2Hashers } from '../../src/domain/password-hasher';
import { LEGACY_NODE_HASH, NODE_HASH, PASSWORD, PREFIX_TWIN, UNICODE_PASSWORD, WORKERD_HASH } from '../support/password-hashes';

const hasher = argon2Hashers(new WebAssembly.Instance(argon2Wasm, {}))('owasp');
const current = { ok: true, outdated: false };
const wrong = { ok: false, outdated: false };

describe('argon2id in workerd', () => {
  it('verifies the PHC string made on Node, and one made there before the UTF-8 fix as outdated', async () => {
    expect(await hasher.verify(NODE_HASH, PASSWORD)).toEqual(current);
    expect(await hasher.verify(NODE_HASH, `${PASSWORD}!`)).toEqual(wrong);
    expect(await hasher.verify(LEGACY_NODE_HASH, PASSWORD)).toEqual({ ok: true, outdated: true });
  });

  it('still verifies its own committed hash', async () => {
    expect(await hasher.verify(WORKERD_HASH, PASSWORD)).toEqual(current);
  });

  it('makes PHC strings at the OWASP parameters with a fresh salt each time, of the whole password', async () => {
    const a = await hasher.hash(PASSWORD);
    const b = await hasher.hash(PASSWORD);
    expect(a).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(a).not.toBe(b);
    expect(await hasher.verify(a, PASSWORD)).toEqual(current);
    expect(await hasher.verify(a, 'something else entirely')).toEqual(wrong);
    expect(await hasher.verify(await hasher.hash(UNICODE_PASSWORD), PREFIX_TWIN)).toEqual(wrong);
  });

  it('answers not ok (never throws) for a malformed or foreign hash', async () => {
    expect(await hasher.verify('not a phc string', PASSWORD)).toEqual(wrong);
    expect(await hasher.verify(NODE_HASH.replace('argon2id', 'argon2i'), PASSWORD)).toEqual(wrong);
  });
});
