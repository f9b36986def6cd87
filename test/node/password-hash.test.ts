// On Node: the hasher the server uses verifies a hash made inside workerd, and its own; the whole
// password is hashed, whatever its characters; hashes made before that fix or at another cost
// still verify, marked outdated (auth.ts then makes them anew).
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import Argon2, { Argon2Type, Argon2Version } from '@phi-ag/argon2';
import { describe, expect, it } from 'vitest';
import { loadHasher } from '../../src/runtime/node-deps';
import { LEGACY_UNICODE_HASH, LEGACY_WORKERD_HASH, NODE_HASH, PASSWORD, PREFIX_TWIN, UNICODE_PASSWORD, WORKERD_HASH } from '../support/password-hashes';

const current = { ok: true, outdated: false };
const wrong = { ok: false, outdated: false };
/** The library as the code before the UTF-8 fix called it, at the test cost. */
const TEST_COST = { hashLength: 32, timeCost: 1, memoryCost: 1024, parallelism: 1, type: Argon2Type.Argon2id, version: Argon2Version.Version13 };
async function plainLibrary() {
  const path = createRequire(import.meta.url).resolve('@phi-ag/argon2/argon2.wasm');
  return new Argon2((await WebAssembly.instantiate(await readFile(path))).instance);
}
const parameters = (phc: string) => phc.split('$').slice(1, 4).join('$');

describe('argon2id on Node', () => {
  it('verifies the PHC string made in workerd, and one made there before the UTF-8 fix as outdated', async () => {
    const hasher = await loadHasher();
    expect(await hasher.verify(WORKERD_HASH, PASSWORD)).toEqual(current);
    expect(await hasher.verify(WORKERD_HASH, `${PASSWORD}!`)).toEqual(wrong);
    expect(await hasher.verify(LEGACY_WORKERD_HASH, PASSWORD)).toEqual({ ok: true, outdated: true });
  });

  it('still verifies its own committed hash, and fresh ones', async () => {
    const hasher = await loadHasher();
    expect(await hasher.verify(NODE_HASH, PASSWORD)).toEqual(current);
    const fresh = await hasher.hash(PASSWORD);
    expect(fresh).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(fresh).not.toBe(NODE_HASH);
    expect(await hasher.verify(fresh, PASSWORD)).toEqual(current);
  });

  it('hashes the whole password beyond ASCII: one sharing its first bytes does not verify', async () => {
    const hasher = await loadHasher('insecure-test');
    for (const password of [UNICODE_PASSWORD, '日本語パスワードです', 'emoji 🔑🔑🔑 key']) {
      const stored = await hasher.hash(password);
      expect(await hasher.verify(stored, password)).toEqual(current);
      const sameLength = `${password.slice(0, -3)}xyz`;
      expect(await hasher.verify(stored, sameLength)).toEqual(wrong);
    }
    expect(await hasher.verify(await hasher.hash(UNICODE_PASSWORD), PREFIX_TWIN)).toEqual(wrong);
    // Before the fix the prefix twin opened it too; such a hash is accepted once, as outdated.
    expect(await hasher.verify(LEGACY_UNICODE_HASH, UNICODE_PASSWORD)).toEqual({ ok: true, outdated: true });
    // Unmarked, the same string is a hash of those 28 bytes as a password: the prefix check is not
    // made for it, so the longer password whose first 28 UTF-16 units' worth of bytes they are does not open it.
    expect(await hasher.verify(LEGACY_UNICODE_HASH.slice('legacy:'.length), UNICODE_PASSWORD)).toEqual(wrong);
  });

  it('a newer hash does not take the password followed by as many characters as its UTF-8 is longer', async () => {
    const hasher = await loadHasher('insecure-test');
    const password = 'pässwörd'; // 8 UTF-16 units, 10 bytes: the old prefix check of a 10-unit password is these 10 bytes
    const stored = await hasher.hash(password);
    expect(await hasher.verify(stored, `${password}xx`)).toEqual(wrong);
  });

  it('a hash made before the fix takes what it took then, not a shorter password that is its prefix', async () => {
    const plain = await plainLibrary();
    const hasher = await loadHasher('insecure-test');
    // 4 UTF-16 units: the old wrapper hashed its first 4 bytes, which are 'éé' whole.
    const legacy = `legacy:${plain.hash('ééab', TEST_COST).encoded}`;
    expect(await hasher.verify(legacy, 'ééab')).toEqual({ ok: true, outdated: true });
    expect(await hasher.verify(legacy, 'éé')).toEqual(wrong);
  });

  it('an ASCII password hashes as it always did: the library alone verifies it, and the other way round', async () => {
    const plain = await plainLibrary();
    const hasher = await loadHasher('insecure-test');
    const ascii = 'correct horse battery staple';
    expect(plain.tryVerify(await hasher.hash(ascii), ascii).success).toBe(true);
    const byLibrary = plain.hash(ascii, TEST_COST).encoded;
    expect(await hasher.verify(byLibrary, ascii)).toEqual(current);
  });

  it('answers not ok (never throws) for a malformed or foreign hash', async () => {
    const hasher = await loadHasher();
    expect(await hasher.verify('not a phc string', PASSWORD)).toEqual(wrong);
    expect(await hasher.verify(WORKERD_HASH.replace('argon2id', 'argon2i'), PASSWORD)).toEqual(wrong);
  });

  it('checks an unknown username against a hash at its own cost, and marks the other cost outdated', async () => {
    for (const [cost, expected] of [['owasp', 'argon2id$v=19$m=19456,t=2,p=1'], ['insecure-test', 'argon2id$v=19$m=1024,t=1,p=1']] as const) {
      const hasher = await loadHasher(cost);
      expect(parameters(await hasher.hash(PASSWORD))).toBe(expected);
      expect(parameters(hasher.dummyHash)).toBe(expected);
      // A hash made at one cost verifies at any setting (the cost is read from the stored string).
      const other = await loadHasher(cost === 'owasp' ? 'insecure-test' : 'owasp');
      expect(await other.verify(await hasher.hash(PASSWORD), PASSWORD)).toEqual({ ok: true, outdated: true });
    }
  });
});
