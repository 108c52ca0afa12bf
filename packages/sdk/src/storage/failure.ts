/**
 * The one place that decides whether a store failure is worth retrying.
 *
 * Adapters report every failure of the store as {@link UnavailableError} with the
 * underlying error as `cause` (an errno code from the file system, an S3 error with its
 * HTTP status), or as a typed error when they already know better (FORBIDDEN for refused
 * credentials, NOT_FOUND for a missing bucket, MISSING_OBJECT). This module looks through
 * that wrapping and sorts the failure into "try again later" or "fail now":
 *
 * | failure                                                  | retried | error thrown                 |
 * | -------------------------------------------------------- | ------- | ---------------------------- |
 * | connection refused/reset, DNS, timeouts, HTTP 5xx, 408, 429, S3 RequestTimeout/SlowDown | yes | UnavailableError (UNAVAILABLE) after `retryFor` |
 * | other file-system errors (EIO, ETIMEDOUT, ESTALE, …)     | yes     | UnavailableError             |
 * | S3 403 InvalidAccessKeyId, SignatureDoesNotMatch, AccessDenied, ExpiredToken | no | FORBIDDEN (as the adapter threw it) |
 * | no S3 credentials at all (the AWS SDK's CredentialsProviderError) | no | UnavailableError as thrown (the CLI: NO_CREDENTIALS) |
 * | S3 NoSuchBucket                                          | no      | NotFoundError (NOT_FOUND)    |
 * | ENOSPC, EDQUOT (a full disk or quota)                    | no      | DiskFullError (DISK_FULL)    |
 * | EROFS                                                    | no      | ReadOnlyError (READ_ONLY)    |
 * | EACCES, EPERM                                            | no      | PermissionDeniedError (PERMISSION_DENIED) |
 * | ENOTDIR, EISDIR, ENAMETOOLONG, ELOOP, EINVAL, EEXIST, EFBIG (a path or file the disk will never take) | no | UnavailableError as thrown |
 * | any other HTTP 4xx (a request the server will never take) | no     | UnavailableError as thrown   |
 * | anything that is not an UnavailableError (MISSING_OBJECT, CORRUPT, a bug) | no | as thrown |
 *
 * Browser-safe: imports nothing of Node.
 */
import {
  DiskFullError,
  PermissionDeniedError,
  ReadOnlyError,
  UnavailableError,
} from '../errors.js';

/** The verdict on one failure. */
export type FailureVerdict =
  /** Transient: try again. `reason` is a short tag for messages (`ECONNREFUSED`, `HTTP 503`). */
  | { retry: true; reason: string }
  /** Cannot succeed by trying again: throw `error` (possibly a more precise error than the one caught). */
  | { retry: false; error: unknown };

/** The fields of a wrapped error that this module reads. */
interface ErrorLike {
  code?: unknown;
  Code?: unknown;
  name?: unknown;
  cause?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

/** errno codes of a local path that no wait can change. */
const PERMANENT_ERRNO = new Set([
  'ENOTDIR',
  'EISDIR',
  'ENAMETOOLONG',
  'ELOOP',
  'EINVAL',
  'EEXIST',
  'EFBIG',
]);

/** S3 error codes of a 4xx answer that still say "try again later". */
const TRANSIENT_S3_CODES = new Set(['RequestTimeout', 'SlowDown', 'Throttling', 'TooManyRequests']);

function chain(error: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  for (let c: unknown = error, i = 0; c && typeof c === 'object' && i < 6; i++) {
    out.push(c as ErrorLike);
    c = (c as ErrorLike).cause;
  }
  return out;
}

function statusOf(e: ErrorLike): number | undefined {
  const status = e.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

function s3CodeOf(e: ErrorLike): string | undefined {
  for (const c of [e.Code, e.name]) {
    if (typeof c === 'string' && c !== '' && c !== 'Error' && !c.endsWith('Error')) return c;
  }
  return undefined;
}

/**
 * Sort a failure of an operation on the store at `location` (see the module table).
 * Never throws.
 */
export function classifyStoreFailure(error: unknown, location: string): FailureVerdict {
  if (!(error instanceof UnavailableError)) return { retry: false, error };
  for (const link of chain(error).slice(1)) {
    // No credentials found at all: the CLI names it NO_CREDENTIALS (cli/local-errors.ts).
    if (link.name === 'CredentialsProviderError') return { retry: false, error };
    const code = typeof link.code === 'string' ? link.code : undefined;
    switch (code) {
      case 'ENOSPC':
      case 'EDQUOT':
        return { retry: false, error: new DiskFullError(location, code, { cause: error }) };
      case 'EROFS':
        return { retry: false, error: new ReadOnlyError(location, code, { cause: error }) };
      case 'EACCES':
      case 'EPERM':
        return { retry: false, error: new PermissionDeniedError(location, code, { cause: error }) };
      default:
        if (code !== undefined && PERMANENT_ERRNO.has(code)) return { retry: false, error };
        break;
    }
    const status = statusOf(link);
    if (status !== undefined) {
      const s3Code = s3CodeOf(link);
      if (
        status >= 400 &&
        status < 500 &&
        status !== 408 &&
        status !== 429 &&
        !(s3Code !== undefined && TRANSIENT_S3_CODES.has(s3Code))
      ) {
        return { retry: false, error };
      }
      return { retry: true, reason: s3Code ? `${s3Code}, HTTP ${status}` : `HTTP ${status}` };
    }
    if (code !== undefined && /^E[A-Z0-9_]+$/.test(code)) return { retry: true, reason: code };
  }
  // A deadline of the adapter (`did not answer in … ms`) or an error without a code.
  const named = chain(error)
    .slice(1)
    .map((l) => (typeof l.code === 'string' ? l.code : s3CodeOf(l)))
    .find((c) => c !== undefined);
  return {
    retry: true,
    reason: named ?? (/did not answer/.test(error.message) ? 'timeout' : 'unavailable'),
  };
}
