CREATE TABLE "live_socket_leases" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"group_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"holder" uuid NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE INDEX "live_socket_leases_member_idx" ON "live_socket_leases" USING btree ("group_id","user_id");--> statement-breakpoint
CREATE INDEX "live_socket_leases_expires_idx" ON "live_socket_leases" USING btree ("expires_at");