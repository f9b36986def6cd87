-- Every hash stored so far was made by @phi-ag/argon2's wrapper as it is, which hashed only a
-- prefix of a password beyond ASCII (its UTF-16 length in UTF-8 bytes). They are marked, so that
-- only they get the prefix check (src/domain/password-hasher.ts) and each is made anew, whole, at
-- its next login; hashes made since verify the whole password only. A restored older archive
-- passes through here too.
UPDATE "users" SET "password_hash" = 'legacy:' || "password_hash" WHERE "password_hash" NOT LIKE 'legacy:%';
