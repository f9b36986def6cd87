// Configuration, parsed once by zod from an env-like record (process.env on Node, bindings on Workers).
import { z } from 'zod';

const flag = (dflt: boolean) =>
  z
    .enum(['on', 'off', 'true', 'false', '1', '0', 'yes', 'no'])
    .default(dflt ? 'on' : 'off')
    .transform((v) => ['on', 'true', '1', 'yes'].includes(v));

const int = (dflt: number, min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max).default(dflt);

export const configSchema = z.object({
  PORT: int(8787, 0, 65535),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: z.string().url().optional(),
  // The one session-bound connection (LISTEN, for other processes' events and typing), when
  // DATABASE_URL goes through a pooler in transaction mode, which cannot hold a LISTEN.
  DATABASE_LISTEN_URL: z.string().url().optional(),
  JWT_SECRET: z.string().min(32, 'must be at least 32 bytes').optional(),
  REGISTRATION: z.enum(['open', 'invite', 'closed']).default('open'),
  RATE_LIMIT: flag(true),
  TRUST_PROXY: flag(false),
  CORS_ORIGINS: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean)),
  MEDIA_RETENTION_DAYS: int(7, 1, 3650),
  MESSAGE_RETENTION_DAYS: int(30, 1, 3650),
  EVENT_RETENTION_DAYS: int(30, 1, 3650),
  AUDIT_RETENTION_DAYS: int(90, 1, 3650),
  MAX_MEDIA_BYTES: int(524_288_000, 1),
  MAX_MEMBERS: int(100, 2, 100_000),
  MAX_OWNED_GROUPS: int(10, 1, 100_000),
  // `insecure-test`: argon2id at 1 MiB, t = 1, for test suites only (see domain/password-hasher.ts).
  PASSWORD_HASH_COST: z.enum(['owasp', 'insecure-test']).default('owasp'),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  // Server processes on one port (Node, node:cluster); more than 1 needs DATABASE_URL.
  WORKERS: z.union([z.literal('auto'), z.coerce.number().int().min(1).max(256)]).default(1),
  // Media on Node: the disk under DATA_DIR, or an S3-compatible object store (several nodes).
  BLOB_STORE: z.enum(['disk', 's3']).default('disk'),
  S3_ENDPOINT: z.string().url().optional(),
  S3_BUCKET: z.string().min(1).optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  S3_FORCE_PATH_STYLE: flag(false),
  // GET /metrics (Node): off unless METRICS=on; a token, loopback only, or its own port.
  METRICS: flag(false),
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
});

/** What BLOB_STORE=s3 cannot do without. */
const S3_REQUIRED = ['S3_ENDPOINT', 'S3_BUCKET', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY'] as const;

export type RawConfig = z.infer<typeof configSchema>;

export type Config = Omit<RawConfig, 'JWT_SECRET'> & {
  jwtSecret: Uint8Array;
  chunkSize: number;
  inviteCodeLength: number;
};

export const CHUNK_SIZE = 5 * 1024 * 1024;

export class ConfigError extends Error {}

/** Parses the environment; on a bad value throws one line naming the variable. */
export function parseConfig(env: Record<string, unknown>, secret?: string): Config {
  const picked: Record<string, unknown> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (typeof value === 'string' && value !== '') picked[key] = value;
  }
  const result = configSchema.safeParse(picked);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new ConfigError(`Invalid configuration: ${String(issue.path[0])} ${issue.message}`);
  }
  const missing = result.data.BLOB_STORE === 's3' && S3_REQUIRED.find((key) => !result.data[key]);
  if (missing) throw new ConfigError(`Invalid configuration: ${missing} is required when BLOB_STORE=s3`);
  const jwt = result.data.JWT_SECRET ?? secret;
  if (!jwt) throw new ConfigError('Invalid configuration: JWT_SECRET is required');
  const { JWT_SECRET: _omit, ...rest } = result.data;
  return { ...rest, jwtSecret: new TextEncoder().encode(jwt), chunkSize: CHUNK_SIZE, inviteCodeLength: 8 };
}
