// The one table of codes by status, shared with the server (a dependency-free module).
import { codeForStatus } from '../domain/errors';
import type { ErrorCode } from './types';

/** An answer in the contract's error shape: {error: {code, message, request_id, details}}. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly requestId: string,
    readonly details: Record<string, any> = {},
    /** Seconds from Retry-After (429), when sent. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }

  /** Builds the error from a failed response; a body that is not the contract's shape still gets a code from its status. */
  static async from(res: Response): Promise<ApiError> {
    const text = await res.text().catch(() => '');
    let error: { code?: ErrorCode; message?: string; request_id?: string; details?: Record<string, any> } | undefined;
    try {
      error = (JSON.parse(text) as { error?: typeof error }).error;
    } catch {
      error = undefined;
    }
    const retry = Number(res.headers.get('retry-after'));
    return new ApiError(
      res.status,
      error?.code ?? codeForStatus(res.status),
      error?.message ?? `HTTP ${res.status}`,
      error?.request_id ?? res.headers.get('x-request-id') ?? '',
      error?.details ?? {},
      Number.isFinite(retry) && res.headers.has('retry-after') ? retry : undefined,
    );
  }
}

/** The server could not be reached (after the retries a safe request gets). */
export class NetworkError extends Error {
  override name = 'NetworkError';
}
