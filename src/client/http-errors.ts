/**
 * The one place where the vault's HTTP error answers become the typed errors of
 * `src/errors.ts` on the device. Switches on the body's stable `code` (never on the status
 * alone, as the wire doc asks); falls back on the status when the body is not ours (a proxy,
 * a wrong URL). Browser-safe.
 */
import {
  BackvaultError,
  BadRequestError,
  ConflictError,
  ForbiddenError,
  InternalError,
  LockedError,
  NotFoundError,
  RateLimitedError,
  RollbackError,
  UnauthorizedError,
  UnavailableError,
  WrongPasswordError,
  HINTS,
} from '../errors.js';

/** What the client knows about a failed HTTP answer. */
export interface HttpFailure {
  readonly status: number;
  /** Parsed JSON body, or `undefined` when the body was empty or not JSON. */
  readonly body: unknown;
  /** The `retry-after` header, if any. */
  readonly retryAfter?: string | null;
  /** Which step failed, for the message (e.g. `login start`). */
  readonly step: string;
}

/** The protocol steps in a user's words (messages carry no internal terms). */
const STEP_WORDS: Readonly<Record<string, string>> = {
  info: 'saying who it is',
  'record status': 'reading the account',
  'login start': 'checking the password',
  'login finish': 'releasing the key',
  'registration start': 'registering the password',
  'registration finish': 'registering the password',
  delete: 'deleting the account record',
  'dev token': 'issuing a token',
};

interface ErrorFields {
  code: string;
  message: string;
  attemptsLeft: number | undefined;
  retryAfterSeconds: number | undefined;
}

function errorFields(body: unknown): ErrorFields | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const e = (body as { error?: unknown }).error;
  if (typeof e !== 'object' || e === null) return undefined;
  const { code, message, attemptsLeft, retryAfterSeconds } = e as Record<string, unknown>;
  if (typeof code !== 'string') return undefined;
  const int = (v: unknown): number | undefined =>
    typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined;
  return {
    code,
    // The vault's messages are written never to hold secrets; still, keep them short.
    message: typeof message === 'string' ? message.slice(0, 200) : '',
    attemptsLeft: int(attemptsLeft),
    retryAfterSeconds: int(retryAfterSeconds),
  };
}

/**
 * Maps a failed vault answer to a typed error.
 *
 * | vault code | error | note |
 * |---|---|---|
 * | WRONG_PASSWORD | WrongPasswordError(attemptsLeft) | |
 * | LOCKED | LockedError | permanent |
 * | NOT_FOUND | NotFoundError | no record for the account |
 * | UNAUTHORIZED | UnauthorizedError | token missing/expired |
 * | FORBIDDEN | ForbiddenError | key proof does not match |
 * | CONFLICT | ConflictError | replayed step or existing record |
 * | ROLLBACK | RollbackError | an older snapshot head than the vault holds |
 * | RATE_LIMITED | RateLimitedError(retryAfterSeconds) | |
 * | BAD_REQUEST | BadRequestError | |
 * | UNAVAILABLE, INTERNAL, any 5xx | UnavailableError | retry later may help |
 */
export function vaultErrorFromResponse(f: HttpFailure): BackvaultError {
  const fields = errorFields(f.body);
  const msg = (fallback: string): string =>
    `the vault, ${STEP_WORDS[f.step] ?? 'answering'}: ${fields?.message ? fields.message : fallback}`;
  const retryAfter = (): number => {
    if (fields?.retryAfterSeconds !== undefined) return fields.retryAfterSeconds;
    const h = f.retryAfter ? Number.parseInt(f.retryAfter, 10) : NaN;
    return Number.isFinite(h) && h >= 0 ? h : 60;
  };
  switch (fields?.code) {
    case 'WRONG_PASSWORD':
      return new WrongPasswordError(fields.attemptsLeft ?? 0);
    case 'LOCKED':
      return new LockedError();
    case 'NOT_FOUND':
      return new NotFoundError(msg('not found'), HINTS.vaultNoRecord);
    case 'UNAUTHORIZED':
      return new UnauthorizedError(msg('the token was refused'));
    case 'FORBIDDEN':
      return new ForbiddenError(
        msg('forbidden'),
        'The vault record was made with a different backup key than this device holds.',
      );
    case 'CONFLICT':
      return new ConflictError(msg('conflict'));
    case 'ROLLBACK':
      return new RollbackError(msg('older than what the vault holds'));
    case 'RATE_LIMITED':
      return new RateLimitedError(retryAfter());
    case 'BAD_REQUEST':
      return new BadRequestError(msg('bad request'));
    case 'UNAVAILABLE':
    case 'INTERNAL':
      return new UnavailableError(msg('temporarily unavailable'));
    default:
      break;
  }
  // Not one of our error bodies: decide on the status.
  if (f.status >= 500) return new UnavailableError(msg(`HTTP ${f.status}`));
  if (f.status === 429) return new RateLimitedError(retryAfter());
  if (f.status === 401) return new UnauthorizedError(msg('the token was refused'));
  if (f.status === 404) {
    return new NotFoundError(msg('HTTP 404'), HINTS.vaultNotVault);
  }
  if (f.status === 423) return new LockedError();
  if (f.status >= 400) return new BadRequestError(msg(`HTTP ${f.status}`));
  return new InternalError(msg(`unexpected HTTP ${f.status}`));
}
