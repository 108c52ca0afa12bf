/**
 * The one place where errors become HTTP responses: status plus the body
 * `{ error: { code, message, attemptsLeft?, retryAfterSeconds? } }` documented in
 * `src/wire/index.ts`. Messages come from our error classes, which never hold secrets;
 * anything else becomes a generic message so library errors cannot leak input.
 */
import {
  BackvaultError,
  RateLimitedError,
  WrongPasswordError,
  type ErrorCode,
} from 'backvault/errors';
import type { ErrorBody } from 'backvault/wire';

/** HTTP status for each stable error code. */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  USAGE: 400,
  BAD_REQUEST: 400,
  UNSUPPORTED_VERSION: 400,
  INVALID_KEY: 400,
  WEAK_PASSWORD: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  WRONG_PASSWORD: 403,
  WRONG_KEY: 403,
  NOT_FOUND: 404,
  NO_REPOSITORY: 404,
  MISSING_OBJECT: 404,
  CONFLICT: 409,
  // Decided by the SDK (enable of an existing record); the vault answers CONFLICT.
  ALREADY_ENABLED: 409,
  TARGET_NOT_EMPTY: 409,
  VAULT_MISMATCH: 409,
  ROLLBACK: 409,
  LOCKED: 423,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  CORRUPT: 500,
  UNAVAILABLE: 503,
  // Device-side conditions (issue 12); the vault never raises them, listed for the Record.
  PARTIAL: 500,
  DISK_FULL: 500,
  READ_ONLY: 500,
  PERMISSION_DENIED: 500,
  NO_SOURCE: 400,
  PORT_IN_USE: 500,
  NO_CREDENTIALS: 400,
  // Key slots and passkeys (issue 13) live in the repository and the browser; never the vault.
  NO_KEY_SLOT: 400,
  KEY_SLOT_CORRUPT: 500,
  KEY_SLOT_MISMATCH: 500,
  PRF_UNSUPPORTED: 400,
  PASSKEY_CANCELLED: 400,
  // A refused CORS preflight (issue 19; answered in cors.ts). The client-side diagnosis
  // VAULT_CORS_BLOCKED is made by the SDK in a browser; listed for the Record.
  CORS_ORIGIN_NOT_ALLOWED: 403,
  VAULT_CORS_BLOCKED: 403,
};

/** An HTTP error response. */
export interface HttpError {
  readonly status: number;
  readonly body: ErrorBody;
  /** Extra response headers (e.g. `retry-after`). */
  readonly headers: Readonly<Record<string, string>>;
}

interface FastifyLikeError {
  code?: unknown;
  statusCode?: unknown;
  validation?: unknown;
  message?: unknown;
}

/** Maps anything thrown while serving a request to its HTTP response. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof BackvaultError) {
    const error: ErrorBody['error'] = { code: err.code, message: err.message };
    const headers: Record<string, string> = {};
    if (err instanceof WrongPasswordError) error.attemptsLeft = err.attemptsLeft;
    if (err instanceof RateLimitedError) {
      error.retryAfterSeconds = err.retryAfterSeconds;
      headers['retry-after'] = String(err.retryAfterSeconds);
    }
    return { status: HTTP_STATUS[err.code], body: { error }, headers };
  }
  const e = (typeof err === 'object' && err !== null ? err : {}) as FastifyLikeError;
  const bad = (status: number, message: string): HttpError => ({
    status,
    body: { error: { code: 'BAD_REQUEST', message } },
    headers: {},
  });
  if (e.validation !== undefined && typeof e.message === 'string') {
    // Ajv messages name the field and the rule, never the value.
    return bad(400, `invalid request: ${e.message}`);
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return bad(413, 'request body too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return bad(415, 'content-type must be application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return bad(400, 'request body is empty');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return bad(400, 'request body is not valid JSON');
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return bad(e.statusCode === 413 ? 413 : 400, 'malformed request');
  }
  return {
    status: 500,
    body: { error: { code: 'INTERNAL', message: 'internal error' } },
    headers: {},
  };
}
