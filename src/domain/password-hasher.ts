// argon2id in PHC string format. The WASM build (@phi-ag/argon2) runs the same in Node and workerd;
// runtimes only differ in how they load it. Verifying reads the cost from the stored string, so a
// hash made at any cost still verifies after the setting changes (and is then made anew: `outdated`).
// Stored hashes marked `legacy:` were made before the UTF-8 fix below (migration 0008).
import Argon2, { Argon2Type, Argon2Version } from '@phi-ag/argon2';
import type { PasswordHasher } from '../deps';

export type PasswordHashCost = 'owasp' | 'insecure-test';

const COSTS: Record<PasswordHashCost, { timeCost: number; memoryCost: number; dummy: string }> = {
  // OWASP's argon2id parameters (m = 19 MiB, t = 2, p = 1): the default, and the only one for users.
  owasp: {
    timeCost: 2,
    memoryCost: 19_456,
    dummy: '$argon2id$v=19$m=19456,t=2,p=1$fcDy0xYOxCcYaU4upFEiTA$jsoOwDJSPHVx7m2k3f4X5UzYjUvzGqAsschV7ZIHO9c',
  },
  // ~30× cheaper, for test suites that register hundreds of accounts; guessable offline, never for users.
  'insecure-test': {
    timeCost: 1,
    memoryCost: 1024,
    dummy: '$argon2id$v=19$m=1024,t=1,p=1$kPzqQeNgx8ZnMkkOs/Svkg$ZzFw3hguPJznWHo0xRPpMtq+r26Qpvzs7Pjq+Zu6QkY',
  },
};

/** Logged at `error` level where a runtime starts with the test cost (a misconfigured deploy must show). */
export const INSECURE_COST_WARNING = 'PASSWORD_HASH_COST=insecure-test: new passwords are hashed cheaply (guessable offline); for test suites only';

/** The `$argon2id$v=…$m=…,t=…,p=…` head of a PHC string: the algorithm and its cost. */
const parametersOf = (phc: string) => phc.split('$').slice(0, 4).join('$');

const ASCII = /^[\x00-\x7f]*$/;
const utf8 = new TextEncoder();

/** What migration 0008 put before every hash made before the fix below. */
const LEGACY = 'legacy:';

/**
 * The library copies the password to WASM memory as UTF-8 but passes `password.length` (UTF-16
 * units) as its byte count: beyond ASCII only a prefix was hashed ("日本語パスワードです" and
 * "日本語パスxxxxx" verified alike). Handed this instead of the string, it encodes the same
 * text and reads the UTF-8 length.
 */
function whole(password: string): string {
  if (ASCII.test(password)) return password;
  const length = utf8.encode(password).length;
  return { length, toString: () => password } as unknown as string;
}

/** A hasher per cost over one compiled instance (they share its memory; hashing is synchronous). */
export function argon2Hashers(instance: WebAssembly.Instance): (cost: PasswordHashCost) => PasswordHasher {
  const argon2 = new Argon2(instance);
  const made = new Map<PasswordHashCost, PasswordHasher>();
  const make = (cost: PasswordHashCost): PasswordHasher => {
    const { timeCost, memoryCost, dummy } = COSTS[cost];
    const options = { hashLength: 32, timeCost, memoryCost, parallelism: 1, type: Argon2Type.Argon2id, version: Argon2Version.Version13 };
    const current = parametersOf(dummy);
    const matches = (encoded: string, password: string) => argon2.tryVerify(encoded, password, Argon2Type.Argon2id).success;
    return {
      dummyHash: dummy,
      async hash(password) {
        return argon2.hash(whole(password), options).encoded;
      },
      async verify(stored, password) {
        const legacy = stored.startsWith(LEGACY);
        const encoded = legacy ? stored.slice(LEGACY.length) : stored;
        // A hash the old wrapper made takes what it took, the prefix, and nothing else (not a shorter
        // password that happens to be that prefix); it opens the account once and is made anew then.
        // A newer one takes the whole password only (the prefix check would let in the password
        // followed by as many characters as its UTF-8 is longer).
        const full = whole(password);
        const ok = matches(encoded, legacy ? password : full);
        // Beyond ASCII a second hash, whatever the account, so a refusal's time tells nothing of it.
        if (full !== password) matches(dummy, full);
        return { ok, outdated: ok && (legacy || parametersOf(encoded) !== current) };
      },
    };
  };
  return (cost) => {
    let hasher = made.get(cost);
    if (!hasher) made.set(cost, (hasher = make(cost)));
    return hasher;
  };
}
