CREATE TABLE "audit_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"action" text NOT NULL,
	"via" text NOT NULL,
	"actor_id" uuid,
	"target_id" uuid,
	"group_id" uuid,
	"detail" text,
	"address" text
);
--> statement-breakpoint
CREATE INDEX "audit_events_at_idx" ON "audit_events" USING btree ("at");--> statement-breakpoint
CREATE INDEX "audit_events_actor_idx" ON "audit_events" USING btree ("actor_id","at");--> statement-breakpoint
CREATE INDEX "audit_events_target_idx" ON "audit_events" USING btree ("target_id","at");--> statement-breakpoint
CREATE INDEX "audit_events_group_idx" ON "audit_events" USING btree ("group_id","at");