// Every error the API can answer, typed once. The HTTP layer maps them once (http/errors.ts).
export const ERROR_STATUS = {
  VALIDATION_ERROR: 400,
  UNAUTHENTICATED: 401,
  TOKEN_EXPIRED: 401,
  INVALID_CREDENTIALS: 401,
  FORBIDDEN: 403,
  KEY_PENDING: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  ALREADY_MEMBER: 409,
  UPLOAD_INCOMPLETE: 409,
  GONE: 410,
  PAYLOAD_TOO_LARGE: 413,
  QUOTA_EXCEEDED: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RANGE_NOT_SATISFIABLE: 416,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** The code an answer of a bare HTTP status stands for (a framework's own refusal, a proxy's answer). */
export function codeForStatus(status: number): ErrorCode {
  const codes: Partial<Record<number, ErrorCode>> = {
    400: 'VALIDATION_ERROR',
    401: 'UNAUTHENTICATED',
    403: 'FORBIDDEN',
    404: 'NOT_FOUND',
    405: 'METHOD_NOT_ALLOWED',
    409: 'CONFLICT',
    410: 'GONE',
    413: 'PAYLOAD_TOO_LARGE',
    415: 'UNSUPPORTED_MEDIA_TYPE',
    416: 'RANGE_NOT_SATISFIABLE',
    429: 'RATE_LIMITED',
    503: 'UNAVAILABLE',
  };
  return codes[status] ?? (status >= 500 ? 'INTERNAL' : 'VALIDATION_ERROR');
}

const DEFAULT_MESSAGE: Record<ErrorCode, string> = {
  VALIDATION_ERROR: 'The request is not valid.',
  UNAUTHENTICATED: 'Please log in again.',
  TOKEN_EXPIRED: 'The access token has expired; refresh it and retry.',
  INVALID_CREDENTIALS: 'Wrong username or password.',
  FORBIDDEN: 'You are not allowed to do this.',
  KEY_PENDING: 'You cannot write here until a member delivers your orbit key.',
  NOT_FOUND: 'Not found.',
  METHOD_NOT_ALLOWED: 'This method is not allowed on this path.',
  CONFLICT: 'This conflicts with the current state.',
  ALREADY_MEMBER: 'You are already a member of this orbit.',
  UPLOAD_INCOMPLETE: 'Some chunks of this upload are missing.',
  GONE: 'This is gone.',
  PAYLOAD_TOO_LARGE: 'The request is too large.',
  QUOTA_EXCEEDED: "The orbit's storage quota would be exceeded.",
  UNSUPPORTED_MEDIA_TYPE: 'Unsupported content type.',
  RANGE_NOT_SATISFIABLE: 'The requested range cannot be served.',
  RATE_LIMITED: 'Too many requests; retry later.',
  INTERNAL: 'Something went wrong on the server.',
  UNAVAILABLE: 'The service is temporarily unavailable.',
};

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: Record<string, unknown>,
    /** Seconds, for RATE_LIMITED (sent as Retry-After). */
    readonly retryAfter?: number,
  ) {
    super(message ?? DEFAULT_MESSAGE[code]);
    this.status = ERROR_STATUS[code];
  }
}

export const fail = (code: ErrorCode, message?: string, details?: Record<string, unknown>): never => {
  throw new AppError(code, message, details);
};

export const notFound = (what = 'Not found.'): never => fail('NOT_FOUND', what);

/** The orbit is gone, or the caller is no member of it (the two are not told apart). */
export const noSuchOrbit = () => new AppError('NOT_FOUND', 'No such orbit.');
/** The session behind a token was revoked, logged out or its account deleted. */
export const sessionEnded = () => new AppError('UNAUTHENTICATED', 'This session has ended; please log in again.');
