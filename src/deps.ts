// The ports the core needs. Runtimes (src/runtime/*) build them from adapters (src/adapters/*);
// app, routes and domain code only ever see these interfaces.
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from 'drizzle-orm/pg-core';
import type { ExtractTablesWithRelations } from 'drizzle-orm';
import type { Context } from 'hono';
import type { Config } from './config';
import type { StoredEvent } from './domain/events';
import type { Limiter } from './domain/rate-limit';
import type { SessionCache } from './domain/session-cache';

// No relational schema: queries are built from the tables (src/db/schema.ts) with the query
// builder. Given one, drizzle builds a query object per table for every transaction it opens.
export type Db = PgDatabase<PgQueryResultHKT>;
export type Tx = PgTransaction<PgQueryResultHKT, Record<string, never>, ExtractTablesWithRelations<Record<string, never>>>;
/** Anything that runs queries: the database or an open transaction. */
export type Executor = Db | Tx;

export interface Clock {
  now(): Date;
}

export interface BlobPart {
  index: number;
  etag: string;
}

export interface StoredPart {
  etag: string;
  size: number;
}

export interface BlobBody {
  body: ReadableStream<Uint8Array>;
  size: number;
}

/** Encrypted media storage, modelled on R2 multipart uploads with equal-size parts. */
/** Bytes read once, in order: a web stream, or (on Node) the request itself. */
export type ByteSource = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

export interface BlobStore {
  /** Starts a multipart upload and returns its handle (R2's uploadId; null where none is needed). */
  createUpload(key: string): Promise<string | null>;
  /**
   * Streams one part to storage. Rejects with PartSizeError when the stream is not `size` bytes,
   * and with PartDigestError when `sha256` (hex) is given and the bytes hash otherwise: such a part
   * must not be counted (the disk store keeps nothing of it; R2 has stored it, and the next
   * upload of that part replaces it). Hashes only when asked.
   */
  putPart(key: string, handle: string | null, index: number, body: ByteSource, size: number, sha256?: string): Promise<StoredPart>;
  completeUpload(key: string, handle: string | null, parts: BlobPart[], partSizes: number[]): Promise<void>;
  abortUpload(key: string, handle: string | null): Promise<void>;
  /** A completed object, or the byte range [offset, offset + length). Null when absent. */
  get(key: string, range?: { offset: number; length: number }): Promise<BlobBody | null>;
  /** Deletes a completed object and any parts; absent is fine. */
  delete(key: string, handle: string | null): Promise<void>;
  /** delete() for many blobs in as few storage calls as the store allows (R2: 1,000 keys a call). */
  deleteMany(blobs: Array<{ key: string; handle: string | null }>): Promise<void>;
  ping(): Promise<void>;
}

export class PartSizeError extends Error {}
export class PartDigestError extends Error {}

/** Delivers committed events to live sockets (hub + NOTIFY on Node, Durable Object on Workers). */
export interface Fanout {
  publish(groupId: string, events: StoredEvent[]): Promise<void>;
}

export interface LiveRequest {
  groupId: string;
  userId: string;
  sessionId: string;
  /** Unix seconds. */
  tokenExpiresAt: number;
  afterSeq: number | null;
}

/** Turns an authorized request into a live socket; runtime-specific. */
export interface LiveGateway {
  /**
   * Throws AppError NOT_FOUND when the caller is no member of the orbit, and RATE_LIMITED when the
   * user already has the most sockets allowed in it, counted across every process (Node: leases in
   * Postgres; Workers: the orbit's Durable Object).
   */
  upgrade(c: Context, request: LiveRequest): Promise<Response> | Response;
  /** Whether this request can become a socket here (Node: it came through the server's upgrade handler). */
  canUpgrade(c: Context): boolean;
}

export interface PasswordHasher {
  /** A hash of a random password at this hasher's cost: an unknown username is checked against it, at the same cost as a known one. */
  readonly dummyHash: string;
  hash(password: string): Promise<string>;
  /** `outdated`: it matched a hash made at another cost or before the UTF-8 fix: to be made anew. */
  verify(encoded: string, password: string): Promise<{ ok: boolean; outdated: boolean }>;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export interface Logger {
  log(level: LogLevel, fields: Record<string, unknown>): void;
}

/** Static files of the docs page (swagger-ui-dist), served from the package on Node and from Workers assets. */
export type DocsAssets = (file: string) => Promise<Response | null>;

/**
 * Operational counters (Prometheus on Node with METRICS=on). Label values are route templates,
 * limit names and kinds, never user, orbit or resource ids. Absent from Deps: nothing is measured.
 */
export interface Metrics {
  /** One answered request, by its route template (never the path). */
  request(method: string, route: string, status: number, seconds: number): void;
  /** A request refused by a rate limit, by the limit's name. */
  rateLimited(limit: string): void;
  /** One cleanup run and how many of each kind it removed. */
  cleanupRun(report: Record<string, number>): void;
  /** The exposition text, for GET /metrics (Node's prom-client; Analytics Engine is queried where it lives). */
  scrape?(): Promise<{ contentType: string; body: string }>;
}

export interface Deps {
  config: Config;
  db: Db;
  blobs: BlobStore;
  fanout: Fanout;
  live: LiveGateway;
  clock: Clock;
  limiter: Limiter;
  hasher: PasswordHasher;
  sessions: SessionCache;
  logger: Logger;
  docsAssets: DocsAssets;
  /** Absent (Workers, most tests): nothing is measured and nothing is paid. */
  metrics?: Metrics;
  /** The client's address (CF-Connecting-IP on Workers; socket or trusted proxy header on Node). */
  clientIp(c: Context): string;
  /** Work that may finish after the response (Workers: waitUntil). Never throws. */
  defer(work: Promise<unknown>): void;
  /**
   * True while the database has no schema yet (Node: it was down at start and its migrations are
   * still to run): every route but /health answers 503. Absent: never.
   */
  databasePending?(): boolean;
}
