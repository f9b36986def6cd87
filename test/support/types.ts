import type { Deps } from '../../src/deps';

// What every test target offers. API tests are written once against this, so each behaviour is
// checked on Node (PGlite or real Postgres) and inside workerd (Worker, Durable Object, R2, Neon driver).
import type { Logger } from '../../src/deps';

export interface RequestOptions extends RequestInit {
  /** The client address the server should see (X-Forwarded-For on Node, CF-Connecting-IP on Workers). */
  ip?: string;
}

export interface TestSocket {
  send(data: string): void;
  /** The next message (parsed JSON when it is JSON), waiting up to `timeoutMs`. */
  next<T = any>(timeoutMs?: number): Promise<T>;
  /** Messages received and not yet taken by next(). */
  readonly buffered: unknown[];
  close(code?: number, reason?: string): void;
  /** Resolves with the close code once the socket is closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
}

export interface Target {
  readonly name: 'node' | 'workerd';
  /** Configuration the server under test runs with (env-style strings). */
  readonly env: Record<string, string>;
  fetch(path: string, init?: RequestOptions): Promise<Response>;
  /** Runs SQL directly on the server's database. */
  sql<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Runs the cleanup the way the runtime schedules it. */
  cleanup(options?: { now?: Date; dryRun?: boolean }): Promise<void>;
  /** Opens a live socket (GET with Upgrade: websocket). Rejects with the HTTP status when refused. */
  socket(path: string, headers?: Record<string, string>): Promise<TestSocket>;
  /**
   * Runs domain code with the server's own ports (Node: the running server's; workerd: a Worker
   * request's, whose fan-out reaches the orbit's Durable Object), e.g. write() + appendEvent.
   */
  withDeps<T>(work: (deps: Deps) => Promise<T>): Promise<T>;
  /** Runs the live sockets' periodic checks of this orbit now (Node: the hub's; workerd: the room's alarm). */
  runLiveChecks(groupId: string): Promise<void>;
  /** Keys of the blobs (completed objects) stored under a prefix. */
  blobKeys(prefix?: string): Promise<string[]>;
  close(): Promise<void>;
}

export interface TargetOptions {
  /** Configuration overrides, e.g. { REGISTRATION: 'invite', RATE_LIMIT: 'on' }. */
  env?: Record<string, string>;
  /** workerd target only: extra bindings, e.g. HYPERDRIVE. */
  bindings?: Record<string, unknown>;
  /** Node target only: where the server's log lines go (e.g. a recorder, to check what is logged). */
  logger?: Logger;
}

/** Test defaults: rate limits off unless a test turns them on; a fixed JWT secret tests can sign with. */
/** Tests' embedded databases: a smaller buffer cache than the server's default starts in half the CPU. */
export const TEST_PGLITE_SETTINGS = ['shared_buffers=16MB'];

export const TEST_ENV: Record<string, string> = {
  JWT_SECRET: 'orbital-test-secret-0123456789-abcdefghijklmnop',
  RATE_LIMIT: 'off',
  TRUST_PROXY: 'on',
  LOG_LEVEL: 'silent',
  // The suite registers ~1,500 accounts: at OWASP's cost their hashing was ~100 s of its CPU.
  // test/api/auth.test.ts runs a server at the default cost too.
  PASSWORD_HASH_COST: 'insecure-test',
};

export class SocketRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`socket refused with ${status}`);
  }
}
