/**
 * The one place where the vault's HTTP error answers become the typed errors of
 * `src/errors.ts` on the device. Switches on the body's stable `code` (never on the status
 * alone, as the wire doc asks); falls back on the status when the body is not ours (a proxy,
 * a wrong URL). Also where a `fetch` that got no answer at all becomes an error
 * ({@link diagnoseFetchFailure}: UNAVAILABLE, or in a browser VAULT_CORS_BLOCKED).
 * Browser-safe.
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
  VaultCorsBlockedError,
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

/** What {@link diagnoseFetchFailure} knows and may ask. */
export interface FetchFailure {
  /** The vault's base URL the request went to. */
  readonly base: string;
  /** What `fetch` rejected with. */
  readonly cause: unknown;
  /** The page's origin when running in a browser (`location.origin`), else undefined. */
  readonly pageOrigin: string | undefined;
  /**
   * One plain `GET /v1/info` of the same vault with the given fetch `mode`; true when any
   * answer arrived (any status), false when that fetch failed too.
   */
  readonly probe: (mode: 'cors' | 'no-cors') => Promise<boolean>;
}

/** `location.origin` of the page or worker running the SDK; undefined outside browsers. */
export function browserPageOrigin(): string | undefined {
  try {
    const o = (globalThis as { location?: { origin?: unknown } }).location?.origin;
    return typeof o === 'string' && o !== '' ? o : undefined;
  } catch {
    return undefined; // e.g. Deno without --location throws on `location`
  }
}

/**
 * The error for a request that got no HTTP answer.
 *
 * Outside a browser, or when the page and the vault share an origin, it is
 * {@link UnavailableError} ("cannot reach the vault"), as always.
 *
 * In a browser calling a vault on ANOTHER origin, a `TypeError` is all the page is told,
 * whether the vault is down or the browser blocked it by CORS; "cannot reach the vault"
 * would send a developer to the network when the vault is up and merely does not list the
 * page's origin. So two plain `GET /v1/info` tell them apart (only after a failure, and
 * neither needs a preflight nor carries the token):
 * 1. in `cors` mode: an answer means the vault DOES allow this origin; the failure was
 *    something else (network, a refused or rate-limited preflight): UNAVAILABLE, saying so;
 * 2. in `no-cors` mode: an answer (opaque to the page, but an answer) means the vault is up
 *    and does not allow this origin: {@link VaultCorsBlockedError} (VAULT_CORS_BLOCKED),
 *    naming the page's origin, the vault's, and the `--cors-origin` the operator must add;
 * 3. neither answered: the vault is unreachable from this page (down, wrong URL, network,
 *    mixed content, the page's Content-Security-Policy): UNAVAILABLE, naming both origins
 *    and, honestly, that the vault will ALSO need to allow the origin once it is up.
 *
 * Retrying: the caller treats both codes as an unknown outcome, never as "never sent": a
 * request whose preflight passed (or was cached) may have reached the vault even though the
 * page could not read the answer, so a login start is only ever resent with its request id.
 */
export async function diagnoseFetchFailure(f: FetchFailure): Promise<BackvaultError> {
  const vaultOrigin = originOf(f.base);
  const page = f.pageOrigin;
  if (page === undefined || page === vaultOrigin || !(f.cause instanceof TypeError)) {
    return new UnavailableError(`cannot reach the vault at ${f.base}`, { cause: f.cause });
  }
  if (await f.probe('cors')) {
    return new UnavailableError(
      `a request from this page (origin ${page}) to the vault at ${vaultOrigin} failed, though the vault answers and allows this origin (a network failure, or a preflight the vault refused, e.g. rate limited)`,
      { cause: f.cause },
    );
  }
  if (await f.probe('no-cors')) {
    return new VaultCorsBlockedError(page, vaultOrigin, { cause: f.cause });
  }
  return new UnavailableError(
    `cannot reach the vault at ${vaultOrigin} from this page (origin ${page}): not even a plain request got an answer (the vault is down or the URL is wrong, the network fails, an https page calls an http vault, or the page's Content-Security-Policy forbids it); once it answers, it must also list this origin if it does not yet (--cors-origin ${page})`,
    { cause: f.cause },
  );
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}
