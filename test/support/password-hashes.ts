// Password hashes made once on each runtime (argon2id, OWASP parameters, PHC strings) and kept
// here, so each runtime's tests check that it verifies what the other one made.
//   NODE: src/runtime/node-deps.ts loadHasher().hash(PASSWORD) under Node 20.
//   WORKERD: argon2Hashers(…)('owasp').hash(PASSWORD) inside workerd, as src/runtime/worker-deps.ts builds it.
export const PASSWORD = 'orbital interop password ✓';

export const NODE_HASH = '$argon2id$v=19$m=19456,t=2,p=1$UTdcLesmO26Pc2WX33UUFA$bwE0ejTujmqwNes8LtURCYzNPo0eoHteiCxZP7gl8U0';

export const WORKERD_HASH = '$argon2id$v=19$m=19456,t=2,p=1$kaCg2BBrGh0vd+XW8j0MPA$PRmWHRS/19Kemfw9vk6kjGBnbfXtvmRSqsZbnj9i2uE';

// The same, made before the UTF-8 fix (src/domain/password-hasher.ts): of PASSWORD's first 26
// bytes only (26 UTF-16 units; '✓' is 3 bytes), marked as migration 0008 marks them. Still
// accepted once, as outdated.
export const LEGACY_NODE_HASH = 'legacy:$argon2id$v=19$m=19456,t=2,p=1$neO1hhDytezr6tCWS4eB6g$wjqnYKNacnd15e5Jjsy18F6Ngwtq02iRa0B60i8C3NE';

export const LEGACY_WORKERD_HASH = 'legacy:$argon2id$v=19$m=19456,t=2,p=1$dnrjJ7nxTmX90bgvWMZjzw$ZMjESx6We3nJvD8DSpufu01Pst9JONvOua63dx24Thw';

/** A password beyond ASCII, and another that the old prefix-only hash could not tell from it. */
export const UNICODE_PASSWORD = 'Grüße aus Köln, schöne Äpfel';
export const PREFIX_TWIN = 'Grüße aus Köln, schöne Äxxxx';
/** UNICODE_PASSWORD hashed before the fix, at the test cost (m=1024, t=1): its first 28 bytes; marked. */
export const LEGACY_UNICODE_HASH = 'legacy:$argon2id$v=19$m=1024,t=1,p=1$hf5MvMZNGlR94CvDVPCGfA$T4UWkwcpOVxoXO+CDJ6k0QVh3B3B1kYcBx2MNPmhQbw';
