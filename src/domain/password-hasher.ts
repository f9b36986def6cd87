// argon2id at OWASP parameters (m = 19 MiB, t = 2, p = 1), PHC string format. The WASM build
// (@phi-ag/argon2) runs the same in Node and workerd; runtimes only differ in how they load it.
import Argon2, { Argon2Type, Argon2Version } from '@phi-ag/argon2';
import type { PasswordHasher } from '../deps';

export const ARGON2_OPTIONS = {
  hashLength: 32,
  timeCost: 2,
  memoryCost: 19_456,
  parallelism: 1,
  type: Argon2Type.Argon2id,
  version: Argon2Version.Version13,
};

export function argon2Hasher(instance: WebAssembly.Instance): PasswordHasher {
  const argon2 = new Argon2(instance);
  return {
    async hash(password) {
      return argon2.hash(password, ARGON2_OPTIONS).encoded;
    },
    async verify(encoded, password) {
      return argon2.tryVerify(encoded, password, Argon2Type.Argon2id).success;
    },
  };
}
