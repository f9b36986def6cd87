CREATE TABLE "registration_codes" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"code_hash" "bytea" NOT NULL,
	"code_hint" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"max_uses" integer NOT NULL,
	"uses" integer DEFAULT 0 NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "registration_codes_uses_ck" CHECK ("registration_codes"."uses" <= "registration_codes"."max_uses")
);
--> statement-breakpoint
CREATE UNIQUE INDEX "registration_codes_code_hash_idx" ON "registration_codes" USING btree ("code_hash");--> statement-breakpoint
CREATE INDEX "registration_codes_expires_idx" ON "registration_codes" USING btree ("expires_at");