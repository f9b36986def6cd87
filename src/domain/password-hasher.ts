// argon2id in PHC string format. The WASM build (@phi-ag/argon2) runs the same in Node and workerd;
// runtimes only differ in how they load it. Verifying reads the cost from the stored string, so a
// hash made at any cost still verifies after the setting changes.
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

/** A hasher per cost over one compiled instance (they share its memory; hashing is synchronous). */
export function argon2Hashers(instance: WebAssembly.Instance): (cost: PasswordHashCost) => PasswordHasher {
  const argon2 = new Argon2(instance);
  const made = new Map<PasswordHashCost, PasswordHasher>();
  const make = (cost: PasswordHashCost): PasswordHasher => {
    const { timeCost, memoryCost, dummy } = COSTS[cost];
    const options = { hashLength: 32, timeCost, memoryCost, parallelism: 1, type: Argon2Type.Argon2id, version: Argon2Version.Version13 };
    return {
      dummyHash: dummy,
      async hash(password) {
        return argon2.hash(password, options).encoded;
      },
      async verify(encoded, password) {
        return argon2.tryVerify(encoded, password, Argon2Type.Argon2id).success;
      },
    };
  };
  return (cost) => {
    let hasher = made.get(cost);
    if (!hasher) made.set(cost, (hasher = make(cost)));
    return hasher;
  };
}
