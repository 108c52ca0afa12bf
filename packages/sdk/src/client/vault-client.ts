/**
 * The device SDK for the Backup Key Vault: protect a backup key with a password (OPAQUE
 * registration + key envelope), get it back with the password alone (OPAQUE login), change
 * the password, remove the protection, and read the record's state.
 *
 * Runs in Node and in browsers: WebCrypto through `globalThis.crypto.subtle`, HTTP through
 * an injected `fetch`, OPAQUE through `@serenity-kit/opaque` (WASM). The wire protocol is
 * documented in `src/wire/index.ts`; responses are validated with the same TypeBox schemas
 * the vault uses.
 *
 * The password never leaves the device; neither does the backup key (only a key envelope
 * sealed under the OPAQUE export key, and an HKDF-derived key proof).
 *
 * Example:
 * ```ts
 * const vault = new VaultClient({ baseUrl, token: () => app.vaultToken(), pinnedServerPublicKey });
 * await vault.enable({ password, backupKey });
 * // on a new phone
 * const backupKey = await vault.recover({ password });
 * ```
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { Type, Value } from '../vendor/typebox.js';
import {
  AlreadyEnabledError,
  BackvaultError,
  HINTS,
  hasCode,
  UnauthorizedError,
  UnavailableError,
  UnsupportedVersionError,
  UsageError,
  VaultCorsBlockedError,
  VaultMismatchError,
  WrongPasswordError,
  throwIfAborted,
} from '../errors.js';
import {
  DevTokenResponse,
  InfoResponse,
  KEY_PROOF_HEADER,
  LoginFinishResponse,
  LoginStartResponse,
  PROTOCOL_VERSION,
  ROUTES,
  RecordDeleteResponse,
  RecordEventsResponse,
  RecordHeadResponse,
  RecordStatus,
  RegistrationStartResponse,
  type RouteSpec,
  type SnapshotHead,
} from '../wire/index.js';
import { fromBase64url, toBase64url } from './encoding.js';
import {
  deriveKeyProof,
  openKeyEnvelope,
  openReleasedEnvelope,
  openReleasedHead,
  sealKeyEnvelope,
} from './envelope.js';
import { summarizeGuesses, verifyEventLog, type GuessSummary, type SeenEvent } from './events.js';
import { browserPageOrigin, diagnoseFetchFailure, vaultErrorFromResponse } from './http-errors.js';
import { checkPassword, normalizePassword } from './password.js';

type Opaque = typeof import('@serenity-kit/opaque');
let opaqueModule: Promise<Opaque> | undefined;

/**
 * The OPAQUE library, loaded on first use: its WebAssembly costs ~30 MB of memory, which a
 * program that imports the SDK but only backs up with a device's stored key (the CLI's
 * `backup`) should not pay.
 */
function loadOpaque(): Promise<Opaque> {
  opaqueModule ??= import('@serenity-kit/opaque').then(async (m) => {
    await m.ready;
    return m;
  });
  return opaqueModule;
}

/** A bearer token, or a function that returns a fresh one (called once per request). */
export type TokenSource = string | (() => Promise<string>);

/** The `fetch` the client uses; inject one in tests, proxies or environments without a global. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** Options of {@link VaultClient}. */
export interface VaultClientOptions {
  /** The vault's base URL, e.g. `https://vault.example.com` (routes are under `/v1`). */
  readonly baseUrl: string;
  /**
   * Further nodes of the same fleet (same pinned key), tried in order when the current one
   * is unavailable (see {@link VaultClient} "Failover"). The client stays on the node that
   * last answered.
   */
  readonly failoverUrls?: readonly string[];
  /**
   * Kept for compatibility; no longer asked. A login start carries a request id, so a
   * resend after an unknown outcome (the node died or timed out after the request was
   * sent, or answered UNAVAILABLE) gets the vault's stored answer instead of spending a
   * second guess: the client resends on its own (same node, then the others, within
   * {@link IDEMPOTENT_RETRY_WINDOW_MS}).
   */
  readonly onUncertainGuess?: (info: UncertainGuess) => boolean | Promise<boolean>;
  /** Default: `globalThis.fetch`. */
  readonly fetch?: FetchLike;
  /** Bearer token of the app's own auth (JWT). Needed by every call except {@link VaultClient.info}. */
  readonly token?: TokenSource;
  /**
   * The vault's OPAQUE server public key (base64url) as pinned on this device. When set,
   * every registration, login, status and delete refuses another vault with
   * {@link VaultMismatchError}. Pin it at enable time (or ship it with the app).
   */
  readonly pinnedServerPublicKey?: string;
  /** Per-request timeout. Default 15 s. */
  readonly timeoutMs?: number;
  /**
   * TESTING ONLY — never in a product. Replaces OPAQUE's Argon2id key stretching
   * ("memory-constrained": 64 MiB, t=3, p=4, ~0.2 s per operation) by a trivial one, so test
   * suites can run many logins. Stretching happens on the client only: the vault neither
   * knows nor checks it, but a record registered with one setting can only be logged into
   * with the same setting (another setting looks exactly like a wrong password and costs a
   * guess). It also removes the protection against offline guessing if the vault's secrets
   * leak.
   */
  readonly insecureTestingKeyStretching?: boolean;
}

/** What {@link VaultClientOptions.onUncertainGuess} is told. */
export interface UncertainGuess {
  /** The node whose answer was lost. */
  readonly failedUrl: string;
  /** The node the start would be retried on. */
  readonly nextUrl: string;
}

/** Arguments of {@link VaultClient.enable}. */
export interface EnableOptions extends CallOptions {
  readonly password: string;
  /** The 32-byte backup key to protect. */
  readonly backupKey: Uint8Array;
  /** Lower the vault's attempt limit for this record (never above the vault's). */
  readonly maxAttempts?: number;
}

/** What {@link VaultClient.enable} and {@link VaultClient.changePassword} return. */
export interface EnableResult {
  /** The vault's OPAQUE server public key, authenticated by the registration: pin it. */
  readonly serverPublicKey: string;
  /** The new record's state (attempts left, limit). */
  readonly record: RecordStatus;
  /** Warning about a weak (but acceptable) password, if any. */
  readonly passwordWarning?: string;
}

/** The vault's answer to `GET /v1/info`. */
export type VaultInfo = InfoResponse;
/** State of the account's record. */
export type VaultRecordStatus = RecordStatus;

const TESTING_STRETCHING = {
  'argon2id-custom': { iterations: 1, memory: 8, parallelism: 1 },
} as const;

const DEFAULT_TIMEOUT_MS = 15_000;
/** Timeout of each of the two requests that tell a CORS block from a dead vault. */
const PROBE_TIMEOUT_MS = 5_000;
/**
 * The longest a login start is still resent with the same request id after its first
 * send. The vault keeps the answer for its login-state TTL (60 s by default) from when it
 * counted the guess, which is after the first send; the client also stays 5 s below the
 * TTL the vault announces (`/v1/info`).
 */
export const IDEMPOTENT_RETRY_WINDOW_MS = 45_000;
/** Resend window when the vault's login TTL is unknown: below the smallest TTL it accepts. */
const FALLBACK_RETRY_WINDOW_MS = 4_000;
/** Pauses between rounds of resends of a login start. */
const RETRY_PAUSES_MS = [250, 1000] as const;

/** A fresh request id: 16 random bytes, base64url. */
function newRequestId(): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  return toBase64url(b);
}

/** Sleep `ms`; rejects with `signal.reason` as soon as `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return abortable(new Promise((r) => setTimeout(r, ms)), signal);
}

/**
 * `p`, or a rejection with `signal.reason` as soon as `signal` aborts (`p` goes on; its
 * outcome is ignored).
 */
function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}

/** `AbortSignal.any`, or its equivalent where the platform lacks it (older browsers, RN). */
function anySignal(signals: AbortSignal[]): AbortSignal {
  const any = (AbortSignal as { any?: (s: AbortSignal[]) => AbortSignal }).any;
  if (typeof any === 'function') return any.call(AbortSignal, signals);
  const ac = new AbortController();
  for (const s of signals) {
    if (s.aborted) {
      ac.abort(s.reason);
      break;
    }
    s.addEventListener('abort', () => ac.abort(s.reason), { once: true });
  }
  return ac.signal;
}

/**
 * What every call of {@link VaultClient} accepts. An abort stops the call at once: a
 * request in flight is cancelled, no request is sent again (nor to another node), and the
 * call rejects with `signal.reason` (a DOMException named `AbortError` for a plain
 * `abort()`), never with UNAVAILABLE. A login start the vault already counted stays
 * counted, exactly like a wrong password (the next successful login resets it); an
 * aborted login never causes a second guess.
 */
export interface CallOptions {
  readonly signal?: AbortSignal;
}

function defaultFetch(): FetchLike {
  const f = globalThis.fetch;
  if (typeof f !== 'function') {
    throw new UsageError('no fetch available: pass `fetch` to VaultClient');
  }
  return (input, init) => f(input, init);
}

/**
 * Asks a vault started with `--dev-auth` (loopback only) for an INSECURE demo token.
 * @throws NotFoundError when the vault does not issue dev tokens; UnavailableError when it
 *   cannot be reached.
 */
export async function requestDevToken(opts: {
  readonly baseUrl: string;
  readonly account: string;
  readonly fetch?: FetchLike;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}): Promise<string> {
  const http = new VaultHttp(
    [opts.baseUrl],
    opts.fetch ?? defaultFetch(),
    undefined,
    opts.timeoutMs,
  );
  const r = await http.call(
    ROUTES.devToken,
    DevTokenResponse,
    'dev token',
    { account: opts.account },
    false,
    undefined,
    opts.signal,
  );
  return r.token;
}

/** Minimal HTTP layer: JSON in/out, bearer token, timeout, typed errors, schema checks. */
function normaliseUrl(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new UsageError('the vault URL is not a valid URL', HINTS.vaultUrl);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError('the vault URL must start with http:// or https://');
  }
  return url.href.replace(/\/+$/, '');
}

/** Connection errors that prove the request never reached a server (nothing was counted). */
const NEVER_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Errors after which another try may get an answer: UNAVAILABLE, and in a browser
 * VAULT_CORS_BLOCKED (another fleet node may list the origin). Both are unknown outcomes,
 * never proof that nothing was sent (see `diagnoseFetchFailure`), so a login start moves on
 * or is resent only as for UNAVAILABLE: with its request id.
 */
function transient(e: unknown): e is UnavailableError | VaultCorsBlockedError {
  return e instanceof UnavailableError || e instanceof VaultCorsBlockedError;
}

function neverSent(e: unknown): boolean {
  for (let c: unknown = e, i = 0; c && i < 4; c = (c as { cause?: unknown }).cause, i++) {
    const code = (c as { code?: unknown }).code;
    if (typeof code === 'string' && NEVER_SENT.has(code)) return true;
  }
  return false;
}

/** Minimal HTTP layer over one or more fleet nodes, with failover (see {@link VaultClient}). */
class VaultHttp {
  readonly #bases: readonly string[];
  #current = 0;
  readonly #fetch: FetchLike;
  readonly #token: TokenSource | undefined;
  readonly #timeoutMs: number;
  readonly #onUncertainGuess: VaultClientOptions['onUncertainGuess'];

  constructor(
    baseUrls: readonly string[],
    f: FetchLike,
    token: TokenSource | undefined,
    timeoutMs?: number,
    onUncertainGuess?: VaultClientOptions['onUncertainGuess'],
  ) {
    this.#bases = baseUrls.map(normaliseUrl);
    this.#fetch = f;
    this.#token = token;
    this.#timeoutMs = timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#onUncertainGuess = onUncertainGuess;
  }

  get origin(): string {
    return this.#bases[this.#current] ?? '';
  }

  /**
   * {@link callOne} on the current node, then on the others while the answer is
   * UNAVAILABLE. A login start (`guess`) moves on only when the request provably never
   * left, or when `onUncertainGuess` agrees (once per call).
   */
  async call<S extends TSchema>(
    route: RouteSpec,
    schema: S,
    step: string,
    body?: unknown,
    guess = false,
    extraHeaders?: Readonly<Record<string, string>>,
    signal?: AbortSignal,
  ): Promise<Static<S>> {
    let uncertainAllowed = true;
    for (let tried = 1; ; tried++) {
      const base = this.origin;
      try {
        return await this.callOne(base, route, schema, step, body, extraHeaders, signal);
      } catch (e) {
        // Aborted: callOne threw the reason; never try another node.
        if (signal?.aborted) throw signal.reason;
        if (!transient(e) || tried >= this.#bases.length) throw e;
        const next = this.#bases[(this.#current + 1) % this.#bases.length] ?? base;
        if (guess && !neverSent(e)) {
          const ok =
            uncertainAllowed &&
            this.#onUncertainGuess !== undefined &&
            (await abortable(
              Promise.resolve(this.#onUncertainGuess({ failedUrl: base, nextUrl: next })),
              signal,
            ));
          if (!ok) throw e;
          uncertainAllowed = false;
        }
        this.#current = (this.#current + 1) % this.#bases.length;
      }
    }
  }

  /**
   * For requests safe to resend as they are — a login start with a request id, a login
   * finish: on UNAVAILABLE (unknown outcome or never sent), the SAME request is resent — to the current node, then the others,
   * in up to three rounds — while within {@link IDEMPOTENT_RETRY_WINDOW_MS}. The vault
   * answers a resend of a counted start with the stored answer, so a network failure
   * never costs a guess. An abort ends it at once: nothing is resent after it (an aborted
   * start is never followed by another send of it, so the guess it may have spent is the
   * only one).
   */
  async callResending<S extends TSchema>(
    route: RouteSpec,
    schema: S,
    step: string,
    body: unknown,
    windowMs: () => Promise<number> = () => Promise.resolve(IDEMPOTENT_RETRY_WINDOW_MS),
    signal?: AbortSignal,
  ): Promise<Static<S>> {
    const started = Date.now();
    let last: unknown;
    for (let round = 0; round <= RETRY_PAUSES_MS.length; round++) {
      for (let k = 0; k < this.#bases.length; k++) {
        const idx = (this.#current + k) % this.#bases.length;
        try {
          const r = await this.callOne(
            this.#bases[idx] ?? '',
            route,
            schema,
            step,
            body,
            undefined,
            signal,
          );
          this.#current = idx;
          return r;
        } catch (e) {
          if (signal?.aborted) throw signal.reason;
          if (!transient(e)) throw e;
          last = e;
        }
        // Only while the vault still holds the answer: a later resend would be a new guess.
        if (Date.now() - started > (await abortable(windowMs(), signal))) throw last;
      }
      const pause = RETRY_PAUSES_MS[round];
      if (pause !== undefined) await sleep(pause, signal);
    }
    throw last;
  }

  async #bearer(): Promise<string> {
    const t = this.#token;
    if (t === undefined) throw new UnauthorizedError('no token configured for the vault');
    const token = typeof t === 'string' ? t : await t();
    if (!token) throw new UnauthorizedError('the token source returned no token');
    return token;
  }

  /** One plain `GET /v1/info` (no token, no preflight); true when any answer arrived. */
  async #probe(base: string, mode: 'cors' | 'no-cors'): Promise<boolean> {
    try {
      const res = await this.#fetch(`${base}${ROUTES.info.url}`, {
        method: 'GET',
        mode,
        credentials: 'omit',
        signal: AbortSignal.timeout(Math.min(this.#timeoutMs, PROBE_TIMEOUT_MS)),
      });
      await res.body?.cancel().catch(() => undefined);
      return true;
    } catch {
      return false;
    }
  }

  async callOne<S extends TSchema>(
    base: string,
    route: RouteSpec,
    schema: S,
    step: string,
    body?: unknown,
    extraHeaders?: Readonly<Record<string, string>>,
    signal?: AbortSignal,
  ): Promise<Static<S>> {
    throwIfAborted(signal);
    const headers: Record<string, string> = { accept: 'application/json', ...extraHeaders };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (route.auth) headers.authorization = `Bearer ${await abortable(this.#bearer(), signal)}`;
    throwIfAborted(signal);
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    let res: Response;
    try {
      res = await abortable(
        this.#fetch(`${base}${route.url}`, {
          method: route.method,
          headers,
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          signal: signal ? anySignal([timeout, signal]) : timeout,
        }),
        signal,
      );
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      if (e instanceof BackvaultError) throw e;
      // In a browser on another origin than the vault, tells a CORS block from a dead vault.
      throw await diagnoseFetchFailure({
        base,
        cause: e,
        pageOrigin: browserPageOrigin(),
        probe: (mode) => this.#probe(base, mode),
      });
    }
    let parsed: unknown;
    try {
      const text = await abortable(res.text(), signal);
      parsed = text === '' ? undefined : (JSON.parse(text) as unknown);
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      if (!res.ok) parsed = undefined;
      else {
        throw new UnavailableError(
          `the vault's answer to ${step} is not JSON (is this a backvault vault?)`,
          {
            cause: e,
          },
        );
      }
    }
    if (!res.ok) {
      throw vaultErrorFromResponse({
        status: res.status,
        body: parsed,
        retryAfter: res.headers.get('retry-after'),
        step,
      });
    }
    if (!Value.Check(schema, parsed)) {
      throw new UnavailableError(
        `the vault's answer to ${step} does not match protocol version ${PROTOCOL_VERSION} (is this a backvault vault?)`,
      );
    }
    return parsed;
  }
}

function checkPinned(pinned: string | undefined, presented: string): void {
  // Public keys, not secrets: an ordinary comparison is fine.
  if (pinned !== undefined && pinned !== presented) throw new VaultMismatchError();
}

/**
 * Client of one vault (one node, or several nodes of one fleet) for one account (the
 * account is the token's subject).
 *
 * Failover (with {@link VaultClientOptions.failoverUrls}): when a node answers UNAVAILABLE
 * or cannot be reached, the request is sent to the next node. Every request but a login
 * start is safe to resend: none spends a guess, and a login finish or registration finish
 * resent after it took effect fails with ConflictError rather than acting twice. A login
 * START is a guess, sent with a fresh request id: after an unknown outcome (connection
 * lost after sending, timeout, UNAVAILABLE from a store without quorum) the same request
 * is resent — same node first, then the others — and the vault answers a resend of a
 * counted start with its stored answer (same id, same KE1, within the login TTL), so a
 * network failure or a failover never costs the user a guess.
 *
 * In a browser, on a page whose origin differs from the vault's, the vault must list the
 * page's origin (`vault serve --cors-origin ORIGIN`). When it does not, every call fails
 * with {@link VaultCorsBlockedError} (code `VAULT_CORS_BLOCKED`, naming both origins), never
 * with UNAVAILABLE; it is retried and failed over like UNAVAILABLE (another node may list
 * the origin), with the same request-id rule for login starts.
 */
export class VaultClient {
  readonly #http: VaultHttp;
  readonly #pinned: string | undefined;
  readonly #stretching: typeof TESTING_STRETCHING | undefined;

  /** @throws UsageError when `baseUrl` is not an http(s) URL or no fetch is available. */
  constructor(options: VaultClientOptions) {
    this.#http = new VaultHttp(
      [options.baseUrl, ...(options.failoverUrls ?? [])],
      options.fetch ?? defaultFetch(),
      options.token,
      options.timeoutMs,
      options.onUncertainGuess,
    );
    this.#pinned = options.pinnedServerPublicKey;
    this.#stretching = options.insecureTestingKeyStretching ? TESTING_STRETCHING : undefined;
  }

  /** The URL of the node in use (the last that answered), normalised (no trailing slash). */
  get baseUrl(): string {
    return this.#http.origin;
  }

  /**
   * The vault's protocol version, OPAQUE server public key and default limit. No token
   * needed; does not check the pinned key (use it to pin on first contact).
   * @throws UnsupportedVersionError for another protocol version; UnavailableError when the
   *   vault cannot be reached.
   */
  async info(options: CallOptions = {}): Promise<VaultInfo> {
    const body = await this.#http.call(
      ROUTES.info,
      Type.Unknown(),
      'info',
      undefined,
      false,
      undefined,
      options.signal,
    );
    const protocol = (body as { protocol?: unknown } | undefined)?.protocol;
    if (typeof protocol === 'number' && protocol !== PROTOCOL_VERSION) {
      throw new UnsupportedVersionError(
        `the vault speaks protocol version ${protocol}; this build speaks ${PROTOCOL_VERSION}`,
      );
    }
    if (!Value.Check(InfoResponse, body)) {
      throw new UnavailableError(
        `the vault's answer to info is not valid (is this a backvault vault?)`,
      );
    }
    return body;
  }

  /**
   * State of this account's record: `active` with attempts left, or `locked`. Not a guess.
   * Checks the pinned key against `/v1/info` first.
   * @throws VaultMismatchError, NotFoundError (no record), UnauthorizedError, UnavailableError.
   */
  async status(options: CallOptions = {}): Promise<VaultRecordStatus> {
    await this.#checkVault(options.signal);
    return this.#http.call(
      ROUTES.recordStatus,
      RecordStatus,
      'record status',
      undefined,
      false,
      undefined,
      options.signal,
    );
  }

  /**
   * Protects `backupKey` with `password` (OPAQUE registration). Fails with
   * AlreadyEnabledError (ALREADY_ENABLED) if the account already has a record: use
   * {@link VaultClient.changePassword} from a device holding the key.
   * @throws WeakPasswordError (nothing sent), AlreadyEnabledError, VaultMismatchError,
   *   ConflictError (a concurrent registration), UnauthorizedError, UnavailableError,
   *   InvalidKeyError (key not 32 bytes); the abort reason when `signal` aborts.
   */
  async enable(options: EnableOptions): Promise<EnableResult> {
    return this.#register(
      options.password,
      options.backupKey,
      undefined,
      options.maxAttempts,
      options.signal,
    );
  }

  /**
   * Replaces the record with one for `newPassword` protecting the same `backupKey`, proving
   * possession of the key. The switch is atomic at the vault: exactly one password works.
   * Also revives a locked record when the device still holds the key.
   * @throws WeakPasswordError, VaultMismatchError, ForbiddenError (not this record's key),
   *   NotFoundError, UnauthorizedError, UnavailableError.
   */
  async changePassword(
    options: {
      readonly newPassword: string;
      readonly backupKey: Uint8Array;
      readonly maxAttempts?: number;
    } & CallOptions,
  ): Promise<EnableResult> {
    return this.#register(
      options.newPassword,
      options.backupKey,
      options.backupKey,
      options.maxAttempts,
      options.signal,
    );
  }

  /**
   * Gets the backup key back with the password (OPAQUE login). Every call spends one of the
   * record's guesses until it succeeds (success resets the count).
   * @throws WrongPasswordError with `attemptsLeft`; LockedError when the key was destroyed;
   *   NotFoundError when there is no record; VaultMismatchError when the vault is not the
   *   pinned one; CorruptBackupError if the released envelope does not open;
   *   UnauthorizedError, RateLimitedError, UnavailableError; ConflictError only if another
   *   login of the account finished twice while this one ran.
   */
  async recover(options: { readonly password: string } & CallOptions): Promise<Uint8Array> {
    return (await this.recoverWithHead(options)).backupKey;
  }

  /**
   * {@link VaultClient.recover}, also returning the snapshot head the vault holds for this account
   * (raised by {@link VaultClient.recordHead} after each backup), authenticated by the login's session
   * key: a new device refuses a repository whose latest snapshot is older (ROLLBACK).
   * `head` is null when no backup recorded one yet.
   * @throws as {@link VaultClient.recover}; CorruptBackupError if the released head does not open.
   */
  async recoverWithHead(
    options: {
      readonly password: string;
    } & CallOptions,
  ): Promise<{ readonly backupKey: Uint8Array; readonly head: SnapshotHead | null }> {
    const signal = options.signal;
    const opaque = await abortable(loadOpaque(), signal);
    const password = normalizePassword(options.password);
    for (let attempt = 1; ; attempt++) {
      const { clientLoginState, startLoginRequest } = opaque.client.startLogin({ password });
      // One request id per guess: resends of this start (network failure, failover) are
      // answered from the vault's stored answer, never counted twice.
      const start = await this.#http.callResending(
        ROUTES.loginStart,
        LoginStartResponse,
        'login start',
        { startLoginRequest, requestId: newRequestId() },
        () => this.#resendWindow(),
        signal,
      );
      // Refuse an impostor before spending a second of Argon2 on its answer.
      checkPinned(this.#pinned, start.serverPublicKey);
      const finish = opaque.client.finishLogin({
        clientLoginState,
        loginResponse: start.loginResponse,
        password,
        ...(this.#stretching ? { keyStretching: this.#stretching } : {}),
      });
      // A wrong password: stop here. The guess was already counted at login start.
      if (!finish) throw new WrongPasswordError(start.attemptsLeft);
      // Aborted during the key stretching: the counted start stays counted (as a wrong
      // password would), and nothing else is sent.
      throwIfAborted(signal);
      // The authenticated key (bound into the OPAQUE envelope and the AKE transcript).
      checkPinned(this.#pinned, finish.serverStaticPublicKey);
      checkPinned(start.serverPublicKey, finish.serverStaticPublicKey);
      let done: Static<typeof LoginFinishResponse>;
      try {
        // Resent like the start on a lost answer: a finish that already took effect answers
        // CONFLICT (handled below), one that did not simply runs.
        done = await this.#http.callResending(
          ROUTES.loginFinish,
          LoginFinishResponse,
          'login finish',
          { loginState: start.loginState, finishLoginRequest: finish.finishLoginRequest },
          undefined,
          signal,
        );
      } catch (e) {
        // CONFLICT: a login of this account finished since our start. Most often it was
        // our own: the finish committed, its answer was lost (a node died, or etcd's reply
        // did), and the resend on another node found the login state used — guesses reset,
        // envelope never delivered. The password is right (this device's OPAQUE finish
        // just verified the server's proof of it), so log in once more: that start is
        // counted and the finish resets it. Once only.
        if (attempt === 1 && hasCode(e, 'CONFLICT') && !signal?.aborted) continue;
        throw e;
      }
      const sessionKey = fromBase64url(finish.sessionKey, 'session key');
      const exportKey = fromBase64url(finish.exportKey, 'export key');
      try {
        const envelope = await openReleasedEnvelope(
          sessionKey,
          fromBase64url(done.releasedEnvelope, 'released envelope'),
        );
        const head = done.releasedHead
          ? await openReleasedHead(sessionKey, fromBase64url(done.releasedHead, 'released head'))
          : null;
        return { backupKey: await openKeyEnvelope(exportKey, envelope), head };
      } finally {
        // Best effort only: JS cannot promise that no copy remains (see SECURITY.md).
        sessionKey.fill(0);
        exportKey.fill(0);
      }
    }
  }

  /**
   * Deletes the record (disable), proving possession of the backup key. Existing backups
   * remain readable with the 64-digit key.
   * @throws VaultMismatchError, ForbiddenError (not this record's key), NotFoundError,
   *   UnauthorizedError, UnavailableError.
   */
  async disable(options: { readonly backupKey: Uint8Array } & CallOptions): Promise<void> {
    // Do not hand the key proof to a vault that is not the pinned one.
    await this.#checkVault(options.signal);
    const keyProof = toBase64url(await deriveKeyProof(options.backupKey));
    await this.#http.call(
      ROUTES.recordDelete,
      RecordDeleteResponse,
      'delete',
      { keyProof },
      false,
      undefined,
      options.signal,
    );
  }

  /**
   * The account's security event log (needs the backup key: its key proof is sent),
   * checked: the chain must hold and, with `seen` (what this device kept from last time),
   * continue it. Returns the log, the entry to keep, and the guesses summarised
   * (`justRestored`: this device's own login is the log's last success).
   * @throws VaultMismatchError, ForbiddenError (not this record's key), NotFoundError,
   *   CorruptBackupError (broken chain), RollbackError (history cut back or rewritten),
   *   UnauthorizedError, UnavailableError.
   */
  async events(
    options: {
      readonly backupKey: Uint8Array;
      readonly seen?: SeenEvent;
      readonly justRestored?: boolean;
    } & CallOptions,
  ): Promise<{
    readonly log: RecordEventsResponse;
    readonly latest: SeenEvent | undefined;
    readonly guesses: GuessSummary;
  }> {
    await this.#checkVault(options.signal);
    const keyProof = toBase64url(await deriveKeyProof(options.backupKey));
    const log = await this.#http.call(
      ROUTES.recordEvents,
      RecordEventsResponse,
      'security events',
      undefined,
      false,
      { [KEY_PROOF_HEADER]: keyProof },
      options.signal,
    );
    const latest = await verifyEventLog(log, options.seen);
    return {
      log,
      latest,
      guesses: summarizeGuesses(log.events, { justRestored: options.justRestored ?? false }),
    };
  }

  /**
   * Records `head` (the repository's latest snapshot) at the vault, proving possession of
   * the backup key. The vault never lowers it: an older head fails with RollbackError.
   * @throws VaultMismatchError, ForbiddenError, NotFoundError, LockedError, RollbackError,
   *   UnauthorizedError, UnavailableError.
   */
  async recordHead(
    options: {
      readonly backupKey: Uint8Array;
      readonly head: SnapshotHead;
    } & CallOptions,
  ): Promise<SnapshotHead> {
    await this.#checkVault(options.signal);
    const keyProof = toBase64url(await deriveKeyProof(options.backupKey));
    const r = await this.#http.call(
      ROUTES.recordHead,
      RecordHeadResponse,
      'record head',
      { keyProof, head: { seq: options.head.seq, snapshotId: options.head.snapshotId } },
      false,
      undefined,
      options.signal,
    );
    return r.head;
  }

  #window: Promise<number> | undefined;

  /**
   * How long after its first send a login start may be resent: the vault keeps the answer
   * for its login-state TTL (from `/v1/info`, asked once, only when a resend is needed),
   * less a 5 s margin, at most {@link IDEMPOTENT_RETRY_WINDOW_MS}.
   */
  #resendWindow(): Promise<number> {
    this.#window ??= this.info().then(
      (i) =>
        Math.min(IDEMPOTENT_RETRY_WINDOW_MS, Math.max(0, i.loginStateTtlSeconds * 1000 - 5000)),
      () => {
        this.#window = undefined; // ask again next time
        return FALLBACK_RETRY_WINDOW_MS;
      },
    );
    return this.#window;
  }

  async #checkVault(signal?: AbortSignal): Promise<void> {
    if (this.#pinned === undefined) return;
    checkPinned(this.#pinned, (await this.info({ ...(signal ? { signal } : {}) })).serverPublicKey);
  }

  async #register(
    rawPassword: string,
    backupKey: Uint8Array,
    currentBackupKey: Uint8Array | undefined,
    maxAttempts: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<EnableResult> {
    const { warning } = checkPassword(rawPassword);
    // Derive the proofs first: a malformed key fails before anything is sent.
    const keyProof = toBase64url(await deriveKeyProof(backupKey));
    const currentKeyProof = currentBackupKey
      ? toBase64url(await deriveKeyProof(currentBackupKey))
      : undefined;
    const opaque = await abortable(loadOpaque(), signal);
    const password = normalizePassword(rawPassword);
    const { clientRegistrationState, registrationRequest } = opaque.client.startRegistration({
      password,
    });
    const start = await this.#http.call(
      ROUTES.registrationStart,
      RegistrationStartResponse,
      'registration start',
      { registrationRequest },
      false,
      undefined,
      signal,
    );
    checkPinned(this.#pinned, start.serverPublicKey);
    const finish = opaque.client.finishRegistration({
      password,
      registrationResponse: start.registrationResponse,
      clientRegistrationState,
      ...(this.#stretching ? { keyStretching: this.#stretching } : {}),
    });
    checkPinned(start.serverPublicKey, finish.serverStaticPublicKey);
    const exportKey = fromBase64url(finish.exportKey, 'export key');
    let keyEnvelope: string;
    try {
      keyEnvelope = toBase64url(await sealKeyEnvelope(exportKey, backupKey));
    } finally {
      exportKey.fill(0);
    }
    throwIfAborted(signal);
    let record: RecordStatus;
    try {
      record = await this.#http.call(
        ROUTES.registrationFinish,
        RecordStatus,
        'registration finish',
        {
          registrationTicket: start.registrationTicket,
          registrationRecord: finish.registrationRecord,
          keyEnvelope,
          keyProof,
          ...(currentKeyProof ? { currentKeyProof } : {}),
          ...(maxAttempts !== undefined ? { maxAttempts } : {}),
        },
        false,
        undefined,
        signal,
      );
    } catch (e) {
      // enable() of an account that has a record: the vault says CONFLICT (a replacement
      // needs the current key's proof). Say what the app should call instead.
      if (currentKeyProof === undefined && hasCode(e, 'CONFLICT')) {
        const exists = await this.status({ ...(signal ? { signal } : {}) }).then(
          () => true,
          (s: unknown) => (hasCode(s, 'NOT_FOUND') ? false : undefined),
        );
        if (exists) throw new AlreadyEnabledError();
      }
      throw e;
    }
    return {
      serverPublicKey: finish.serverStaticPublicKey,
      record,
      ...(warning ? { passwordWarning: warning } : {}),
    };
  }
}
