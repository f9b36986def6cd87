CREATE INDEX "orbit_events_actor_idx" ON "orbit_events" USING btree ("actor_id");--> statement-breakpoint
-- Idempotency records keep no secret and no content any more (src/http/idempotency.ts): rewrite
-- what earlier versions stored into what a retry now reloads from.
UPDATE "idempotency_keys" SET "response" = jsonb_build_object('invite_id', "response"->'invite'->'id') WHERE "route" = 'POST /api/groups' AND "state" = 'done';--> statement-breakpoint
UPDATE "idempotency_keys" SET "resource_id" = "response"->>'id', "response" = NULL WHERE "route" LIKE 'POST /api/groups/%/invites' AND "state" = 'done';--> statement-breakpoint
UPDATE "idempotency_keys" SET "response" = NULL WHERE "state" = 'done' AND ("route" = 'POST /api/threads' OR "route" LIKE 'POST /api/threads/%/replies' OR "route" = 'POST /api/media/upload');--> statement-breakpoint
-- Events written by accounts deleted before account deletion scrubbed them (src/domain/account.ts).
UPDATE "orbit_events" SET "actor_id" = NULL, "data" = coalesce((SELECT jsonb_object_agg(k, CASE WHEN k IN ('username', 'author_username', 'author_id', 'public_key') THEN 'null'::jsonb ELSE v END) FROM jsonb_each("data") AS f(k, v)), '{}'::jsonb) WHERE "actor_id" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "users" WHERE "users"."id" = "orbit_events"."actor_id");
