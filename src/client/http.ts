// The request loop every call goes through: bearer auth with automatic refresh (tokens rotate, so
// concurrent calls share one refresh), Idempotency-Key on creating POSTs, and retries of requests
// that are safe to send again (network errors, 503, short 429s).
import { ApiError, NetworkError } from './errors';

export interface TokenPair {
  access_token: string;
  refresh_token: string;
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface TransportOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:8787 */
  server: string;
  tokens?: TokenPair | null;
  /** Called after every rotation (persist the pair), and with null when the session has ended. */
  onTokens?: (tokens: TokenPair | null) => void | Promise<void>;
  /**
   * The latest persisted pair, read before refreshing: when another process (a second CLI in the
   * same home) rotated the tokens already, its pair is adopted instead of replaying an old refresh
   * token (which, 30 s after its rotation, revokes the whole session).
   */
  loadTokens?: () => TokenPair | null | Promise<TokenPair | null>;
  fetch?: typeof fetch;
  /** Extra attempts for a request that is safe to repeat (default 4). */
  retries?: number;
  /** First back-off delay in ms; doubles per attempt, with jitter (default 250). */
  backoffMs?: number;
  userAgent?: string;
  /** Refresh this long before the access token's own expiry, saving a 401 round trip (default 15 s). */
  refreshMarginMs?: number;
}

export interface RequestSpec {
  method: HttpMethod;
  path: string;
  query?: Record<string, string | number | boolean | null | undefined>;
  json?: unknown;
  body?: Uint8Array;
  headers?: Record<string, string>;
  /** Send the bearer token (default true). */
  auth?: boolean;
  /** A creating POST: sends this Idempotency-Key (true: a fresh one), which makes retrying it safe. */
  idempotencyKey?: string | true;
  /** Whether the request may be sent again after a network error; default: everything but POSTs without a key. */
  retry?: boolean;
  signal?: AbortSignal;
}

/** Longest Retry-After the client waits out by itself; longer ones surface as RATE_LIMITED. */
const MAX_RETRY_AFTER_S = 10;

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true });
  });

/** The `exp` of a JWT in ms (read, not verified: only to refresh early). */
export function tokenExpiry(jwt: string): number | undefined {
  try {
    const payload = JSON.parse(atob(jwt.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: number };
    return typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

export class Transport {
  readonly server: string;
  private tokenPair: TokenPair | null;
  private refreshing: Promise<void> | undefined;
  private readonly fetchImpl: typeof fetch;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly marginMs: number;

  constructor(private readonly options: TransportOptions) {
    this.server = options.server.replace(/\/+$/, '');
    this.tokenPair = options.tokens ?? null;
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.retries = options.retries ?? 4;
    this.backoffMs = options.backoffMs ?? 250;
    this.marginMs = options.refreshMarginMs ?? 15_000;
  }

  get tokens(): TokenPair | null {
    return this.tokenPair;
  }

  async setTokens(tokens: TokenPair | null): Promise<void> {
    this.tokenPair = tokens ? { access_token: tokens.access_token, refresh_token: tokens.refresh_token } : null;
    await this.options.onTokens?.(this.tokenPair);
  }

  url(path: string, query?: RequestSpec['query']): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null) params.set(k, String(v));
    const qs = params.toString();
    return `${this.server}${path}${qs ? `?${qs}` : ''}`;
  }

  backoff(attempt: number): number {
    return Math.min(10_000, this.backoffMs * 2 ** attempt) * (0.5 + Math.random() / 2);
  }

  /** A 2xx/304 response; anything else throws ApiError, an unreachable server NetworkError. */
  async request(spec: RequestSpec): Promise<Response> {
    const auth = spec.auth ?? true;
    const key = spec.idempotencyKey === true ? globalThis.crypto.randomUUID() : spec.idempotencyKey;
    const retryable = spec.retry ?? (spec.method !== 'POST' || key !== undefined);
    let refreshed = false;
    let sentBefore = false;
    for (let attempt = 0; ; attempt++) {
      if (auth) await this.refreshIfExpiring();
      const access = this.tokenPair?.access_token;
      const headers: Record<string, string> = { ...spec.headers };
      if (auth && access) headers.authorization = `Bearer ${access}`;
      if (key) headers['idempotency-key'] = key;
      if (this.options.userAgent) headers['user-agent'] = this.options.userAgent;
      let body: BodyInit | undefined;
      if (spec.json !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(spec.json);
      } else if (spec.body) {
        headers['content-type'] ??= 'application/octet-stream';
        body = spec.body as Uint8Array<ArrayBuffer>;
      }

      let res: Response;
      try {
        res = await this.fetchImpl(this.url(spec.path, spec.query), { method: spec.method, headers, body, signal: spec.signal });
      } catch (err) {
        if (spec.signal?.aborted) throw err;
        if (!retryable || attempt >= this.retries) {
          throw new NetworkError(`${spec.method} ${spec.path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        }
        sentBefore = true;
        await sleep(this.backoff(attempt), spec.signal);
        continue;
      }
      if (res.ok || res.status === 304) return res;

      const error = await ApiError.from(res);
      if (error.code === 'TOKEN_EXPIRED' && auth && !refreshed) {
        refreshed = true;
        await this.refresh(access);
        attempt--;
        continue;
      }
      if (retryable && attempt < this.retries) {
        const wait = this.retryDelay(error, attempt, sentBefore && key !== undefined);
        if (wait !== undefined) {
          await sleep(wait, spec.signal);
          continue;
        }
      }
      throw error;
    }
  }

  /** How long to wait before trying again, or undefined when the error is final. */
  private retryDelay(error: ApiError, attempt: number, keyReplayed: boolean): number | undefined {
    if (error.code === 'UNAVAILABLE') return error.retryAfter !== undefined ? error.retryAfter * 1000 : this.backoff(attempt);
    if (error.code === 'RATE_LIMITED' && error.retryAfter !== undefined && error.retryAfter <= MAX_RETRY_AFTER_S) return error.retryAfter * 1000 + 50;
    // Our own earlier attempt (whose answer was lost) still holds the Idempotency-Key: wait for its outcome.
    if (error.code === 'CONFLICT' && keyReplayed) return this.backoff(attempt);
    return undefined;
  }

  async json<T>(spec: RequestSpec): Promise<T> {
    const res = await this.request(spec);
    return (await res.json()) as T;
  }

  async empty(spec: RequestSpec): Promise<void> {
    const res = await this.request(spec);
    await res.body?.cancel();
  }

  private async refreshIfExpiring(): Promise<void> {
    const pair = this.tokenPair;
    if (!pair) return;
    const exp = tokenExpiry(pair.access_token);
    if (exp !== undefined && exp - Date.now() < this.marginMs) await this.refresh(pair.access_token);
  }

  /**
   * Rotates the token pair once for everyone waiting: `stale` is the access token a caller saw
   * rejected; if another call already replaced it, there is nothing to do.
   */
  async refresh(stale?: string): Promise<void> {
    if (stale !== undefined && this.tokenPair && this.tokenPair.access_token !== stale) return;
    this.refreshing ??= (async () => {
      const latest = await this.options.loadTokens?.();
      if (latest && latest.refresh_token !== this.tokenPair?.refresh_token) {
        this.tokenPair = { access_token: latest.access_token, refresh_token: latest.refresh_token };
        const exp = tokenExpiry(latest.access_token);
        if (exp === undefined || exp - Date.now() >= this.marginMs) return;
      }
      const refreshToken = this.tokenPair?.refresh_token;
      if (!refreshToken) throw new ApiError(401, 'UNAUTHENTICATED', 'Not logged in.', '');
      try {
        // Safe to resend: the server answers a repeat within 30 s with another pair of the same family.
        const pair = await this.json<TokenPair>({ method: 'POST', path: '/api/auth/refresh', json: { refresh_token: refreshToken }, auth: false, retry: true });
        await this.setTokens(pair);
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) await this.setTokens(null);
        throw err;
      }
    })().finally(() => (this.refreshing = undefined));
    await this.refreshing;
  }
}
