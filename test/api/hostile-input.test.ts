// Inputs the fuzzer (fuzz.test.ts) found answering 500, kept as fixed cases: text Postgres cannot
// store (NUL, unpaired surrogates), free-form JSON nested deep enough to overflow JSON.stringify,
// and an invalid Idempotency-Key on an upload start (an unhandled rejection inside workerd).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { b64, createOrbit, expectError, post, publicKey, registerUser, type TestOrbit, type TestUser } from '../support/api';
import { startBody, startUploadRaw } from '../support/media';
import type { Target } from '../support/types';

let t: Target;
let user: TestUser;
let orbit: TestOrbit;
beforeAll(async () => {
  t = await createTarget();
  user = await registerUser(t);
  orbit = await createOrbit(t, user);
});
afterAll(() => t?.close());

const backup = (kdf: unknown) => t.fetch('/api/users/me/key-backup', post({ backup: b64(32), kdf }, user.auth, 'PUT'));
const newKey = (extra: Record<string, unknown>) => t.fetch('/api/users/me/public-key', post({ public_key: { ...publicKey(), ...extra } }, user.auth, 'PUT'));
/** JSON text nested `levels` deep (too deep for this process's own JSON.stringify, hence text). */
const deepText = (levels: number) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
const withDeep = (path: string, before: string) => t.fetch(path, { method: 'PUT', headers: { ...user.auth, 'content-type': 'application/json' }, body: before + deepText(5000) + '}}' });

describe('text Postgres cannot store is a 400, not a 500', () => {
  it('NUL in a login username', async () => {
    await expectError(await t.fetch('/api/auth/login', post({ username: `${user.username}\u0000`, password: user.password })), 400, 'VALIDATION_ERROR');
  });

  it('NUL in an upload’s encryption_iv', async () => {
    await expectError(await startUploadRaw(t, user, orbit.id, 10, { encryption_iv: 'iv\u0000' }), 400, 'VALIDATION_ERROR');
  });

  it('NUL or an unpaired surrogate in KDF parameters or a public key’s members', async () => {
    await expectError(await backup({ salt: 'a\u0000b' }), 400, 'VALIDATION_ERROR');
    await expectError(await backup({ salt: 'a\uD800' }), 400, 'VALIDATION_ERROR');
    await expectError(await backup({ ['k\u0000']: 1 }), 400, 'VALIDATION_ERROR');
    await expectError(await newKey({ kid: '\uDC00x' }), 400, 'VALIDATION_ERROR');
    // Paired surrogates are ordinary text.
    expect((await backup({ note: 'rocket 🚀' })).status).toBe(204);
  });
});

describe('free-form JSON nested deep enough to overflow JSON.stringify', () => {
  it('is refused in KDF parameters and public keys; ordinary nesting is kept', async () => {
    await expectError(await withDeep('/api/users/me/key-backup', `{"backup":"${b64(32)}","kdf":{"a":`), 400, 'VALIDATION_ERROR');
    const key = JSON.stringify(publicKey()).slice(0, -1);
    await expectError(await withDeep('/api/users/me/public-key', `{"public_key":${key},"ext":`), 400, 'VALIDATION_ERROR');
    expect((await backup(JSON.parse(deepText(10)))).status).toBe(204);
  });
});

describe('an invalid Idempotency-Key on an upload start', () => {
  it('is a 400 (and no unhandled rejection inside workerd)', async () => {
    await expectError(await t.fetch('/api/media/upload', post(startBody(orbit.id, 10), { ...user.auth, 'idempotency-key': 'x'.repeat(65) })), 400, 'VALIDATION_ERROR');
  });
});
