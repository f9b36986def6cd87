// Password hashes made once on each runtime (argon2id, OWASP parameters, PHC strings) and kept
// here, so each runtime's tests check that it verifies what the other one made.
//   NODE: src/runtime/node-deps.ts loadHasher().hash(PASSWORD) under Node 20.
//   WORKERD: the argon2Hasher of src/runtime/worker-deps.ts inside workerd (test/workerd/password-hash.test.ts).
export const PASSWORD = 'orbital interop password ✓';

export const NODE_HASH = '$argon2id$v=19$m=19456,t=2,p=1$neO1hhDytezr6tCWS4eB6g$wjqnYKNacnd15e5Jjsy18F6Ngwtq02iRa0B60i8C3NE';

export const WORKERD_HASH = '$argon2id$v=19$m=19456,t=2,p=1$dnrjJ7nxTmX90bgvWMZjzw$ZMjESx6We3nJvD8DSpufu01Pst9JONvOua63dx24Thw';
