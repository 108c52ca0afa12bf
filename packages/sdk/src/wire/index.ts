/**
 * # backvault vault wire protocol, version 1
 *
 * The one place where the HTTP messages between a device (client SDK, CLI) and the Backup
 * Key Vault are defined. Each TypeBox schema below is at once the TypeScript type, the
 * server's validator and the OpenAPI description (`GET /v1/openapi.json`). This module is
 * browser-safe and imports nothing of ours.
 *
 * ## Conventions
 * - JSON bodies, `content-type: application/json`, at most {@link MAX_BODY_BYTES} bytes
 *   (larger bodies: HTTP 413, code `BAD_REQUEST`). Unknown fields are rejected.
 * - Binary values are base64url without padding (RFC 4648 §5). OPAQUE messages are the
 *   strings `@serenity-kit/opaque` 1.x produces (RFC 9807, ristretto255, 3DH, SHA-512).
 * - Every `/v1` route except `GET /v1/info`, `GET /v1/openapi.json` and
 *   `POST /v1/dev/token` needs `Authorization: Bearer <JWT>`. The account is the token's
 *   verified `sub` claim, never a body field. Missing, forged, expired or wrong-audience
 *   tokens: HTTP 401 `UNAUTHORIZED`.
 * - Errors: HTTP status plus body {@link ErrorBody} `{ "error": { "code", "message" } }`
 *   where `code` is a stable `ErrorCode` of `src/errors.ts`. `WRONG_PASSWORD` errors also
 *   carry `attemptsLeft`; `RATE_LIMITED` carries `retryAfterSeconds`.
 *
 *   | code | HTTP | meaning |
 *   |---|---|---|
 *   | BAD_REQUEST | 400 (413 if too large) | malformed body, invalid/expired/foreign ticket or login state; nothing changed |
 *   | UNAUTHORIZED | 401 | bearer token missing/invalid/expired |
 *   | FORBIDDEN | 403 | key proof does not match the stored verifier |
 *   | WRONG_PASSWORD | 403 | login finish did not authenticate (see "Login"); `attemptsLeft` |
 *   | NOT_FOUND | 404 | no record for this account (or unknown route) |
 *   | CONFLICT | 409 | replayed/superseded step, or a record exists and no key proof was sent |
 *   | LOCKED | 423 | the record was destroyed after too many guesses; permanent |
 *   | RATE_LIMITED | 429 | per-IP or per-account rate limit; `retry-after` header too |
 *   | CORS_ORIGIN_NOT_ALLOWED | 403 | a CORS preflight (`OPTIONS`) from an origin not in `--cors-origin`; nothing changed |
 *   | UNAVAILABLE | 503 | the store could not commit; retry later (nothing was answered) |
 *   | INTERNAL | 500 | bug |
 *
 *   423 (Locked) rather than 410 (Gone): 410 is cacheable by default and says "never
 *   existed here again"; 423 says the resource is there but refuses, which is what a
 *   tombstone is. Clients must switch on `code`, not on the status.
 *
 * - Browsers (CORS): for an `Origin` listed with `vault serve --cors-origin` (exact match;
 *   none by default), a preflight (`OPTIONS` with `Access-Control-Request-Method`, any
 *   path) is answered 204 with `Access-Control-Allow-Origin: <that origin>`,
 *   `Access-Control-Allow-Methods: GET, POST`, `Access-Control-Allow-Headers:
 *   authorization, content-type, x-backvault-key-proof` and `Access-Control-Max-Age: 600`;
 *   every other answer to that origin carries `Access-Control-Allow-Origin` and
 *   `Access-Control-Expose-Headers: retry-after`. Any other origin gets no CORS header and
 *   its preflight 403 `CORS_ORIGIN_NOT_ALLOWED`. With a list, every answer carries
 *   `Vary: Origin`. Never `*`, never `Access-Control-Allow-Credentials` (no cookies).
 *
 * ## Endpoints
 * - `GET /healthz` → `{ "status": "ok" }`; `GET /metrics` → Prometheus text.
 * - `GET /v1/info` → {@link InfoResponse}: protocol version, the vault's OPAQUE server
 *   public key (clients pin it and refuse another: `VAULT_MISMATCH`), the default limit.
 * - `POST /v1/dev/token` {@link DevTokenRequest} → {@link DevTokenResponse}. Only on a
 *   vault started with `--dev-auth` (bound to loopback); otherwise 404.
 * - `GET /v1/record` → {@link RecordStatus}: `active` with `attemptsLeft`, or `locked`.
 *   404 `NOT_FOUND` when the account has no record. Does not count as a guess.
 *
 * ## Registration (enable, and password change = replacement)
 * 1. Client: `client.startRegistration({ password })`.
 *    `POST /v1/registration/start` {@link RegistrationStartRequest} →
 *    {@link RegistrationStartResponse} `{ registrationResponse, registrationTicket, serverPublicKey }`.
 *    Changes nothing. The vault evaluates the OPRF under a FRESH credential identifier (so
 *    registration start can never be used as an uncounted oracle against the existing
 *    record's OPRF key); `registrationTicket` carries it, sealed by the HSM, bound to the
 *    account, valid {@link REGISTRATION_TICKET_TTL_SECONDS} s.
 * 2. Client: `client.finishRegistration({ password, registrationResponse, clientRegistrationState })`
 *    → `{ registrationRecord, exportKey }`. It encrypts the backup key into `keyEnvelope`
 *    under a key derived from `exportKey` (client format; the vault treats it as opaque
 *    bytes, {@link MIN_ENVELOPE_BYTES}..{@link MAX_ENVELOPE_BYTES}).
 *    `POST /v1/registration/finish` {@link RegistrationFinishRequest} → {@link RecordStatus}.
 *    - `keyProof`: the proof key of the backup key being protected (see "Key proof"); the
 *      vault stores only its verifier.
 *    - No record yet: creates it (`currentKeyProof` ignored).
 *    - A record exists (active or locked): `currentKeyProof` is required (missing → 409
 *      `CONFLICT`, wrong → 403 `FORBIDDEN`) and the old record, envelope and verifier are
 *      replaced in ONE compare-and-swap: after a crash exactly one password works.
 *    - The same ticket used twice → 409 `CONFLICT`; expired/tampered/other account → 400.
 *    - `maxAttempts` (optional) may lower the vault's limit for this record, never raise it.
 *
 * ## Login (restore)
 * 1. Client: `client.startLogin({ password })`.
 *    `POST /v1/login/start` {@link LoginStartRequest} `{ startLoginRequest }` →
 *    {@link LoginStartResponse} `{ loginResponse, loginState, attemptsLeft, serverPublicKey }`.
 *    THIS IS THE GUESS: the vault durably increments the failure counter before it releases
 *    `loginResponse` (the HSM computes it first; it leaves only after the count commits). `attemptsLeft` is what remains if this guess is wrong (0 =
 *    this was the last one). 404 `NOT_FOUND`, 423 `LOCKED` (the counter had reached the
 *    limit: record and envelope are now destroyed, a tombstone remains forever).
 *    A KE1 of the right length that is not a valid group element answers 400 and costs
 *    nothing: the HSM refuses it before the count, and no OPRF output leaves for it.
 * 2. Client: `client.finishLogin({ clientLoginState, loginResponse, password })`.
 *    - It returns `undefined` when the password is wrong. The client then stops, shows
 *      `WRONG_PASSWORD` with the `attemptsLeft` from step 1, and sends nothing more (the
 *      guess is already counted). It must also check `serverStaticPublicKey` against the
 *      pinned key (`VAULT_MISMATCH`).
 *    - Otherwise `POST /v1/login/finish` {@link LoginFinishRequest}
 *      `{ loginState, finishLoginRequest }` → {@link LoginFinishResponse}
 *      `{ releasedEnvelope, attemptsLeft }`: failures reset to 0 and the key envelope is
 *      released encrypted under the session key (see "Envelope release").
 *    - A KE3 that does not verify → 403 `WRONG_PASSWORD` with `attemptsLeft` (already
 *      counted at start). `loginState` expired ({@link LOGIN_STATE_TTL_SECONDS} s) or
 *      forged or from another account → 400 `BAD_REQUEST`; already used, or the record
 *      changed since (another login succeeded, password changed) → 409 `CONFLICT`.
 *    - The last guess (attemptsLeft 0) can still be finished within the login-state TTL;
 *      after that, or at the next start, the record is destroyed → 423 `LOCKED`.
 *    Login state is sealed by the HSM, so any vault node can finish what another began.
 *
 *    Idempotency: the start may carry `requestId` (random per guess). The same account,
 *    request id and KE1, in the same login epoch within the login-state TTL, get the stored
 *    answer again without a second count; another KE1 under the id → 409 `CONFLICT`. A
 *    client resends a start whose answer was lost with the same id and KE1.
 *    Pacing: after {@link DEFAULT_PACING}.freeGuesses counted guesses since the last success,
 *    a start is refused with 429 `RATE_LIMITED` (`retryAfterSeconds`) until the next delay
 *    after the previous start has passed (`nextTryAt` in `GET /v1/record`). The vault flag
 *    `--pacing` sets it. A resend of a counted start is answered before the pacing check.
 *
 * ## Security events and snapshot head (SPEC.md §17)
 * - `GET /v1/record/events` with header {@link KEY_PROOF_HEADER} → {@link RecordEventsResponse}:
 *   the account's chained security event log ({@link eventCanonical}), the snapshot head,
 *   the state. Wrong or missing proof → 403 `FORBIDDEN`.
 * - `POST /v1/record/head` {@link RecordHeadRequest} → {@link RecordHeadResponse}: raises the
 *   snapshot head with the key proof; an older one → 409 `ROLLBACK`. Login finish returns
 *   it as `releasedHead`, encrypted like the envelope under {@link HEAD_RELEASE_INFO}.
 *
 * ## Envelope release
 * `releasedEnvelope` = `nonce(12) || AES-256-GCM(k, keyEnvelope) || tag(16)` with
 * `k = HKDF-SHA-256(ikm = sessionKey bytes (64, base64url-decoded), salt = empty,
 * info = "backvault/vault/envelope-release/v1", 32 bytes)` and AAD = the same info string
 * (UTF-8). See {@link ENVELOPE_RELEASE_INFO}.
 *
 * ## Key proof (replace / delete need the account token AND the backup key)
 * `keyProof = HKDF-SHA-256(ikm = backupKey (32 bytes), salt = empty,
 * info = "backvault/vault/key-proof/v1", 32 bytes)`, sent base64url. The vault stores
 * `verifier = SHA-256("backvault/vault/key-proof-verifier/v1" || keyProof)` and compares
 * in constant time. Why this and not a MAC challenge: a challenge-response MAC needs the
 * vault to hold the MAC key, which is no better than it learning `keyProof` when shown;
 * `keyProof` is an HKDF output under its own label, so it reveals nothing about the backup
 * key or any other subkey derived from it. The vault (operator) can replay it — but the
 * operator can rewrite its own database anyway; the proof is against account hijackers,
 * who have a token but not the backup key. The verifier alone (a database leak) does not
 * give the proof (preimage resistance). TLS protects it in transit.
 *
 * ## Delete (disable)
 * `POST /v1/record/delete` {@link RecordDeleteRequest} `{ keyProof }` →
 * {@link RecordDeleteResponse}. Wrong proof → 403 `FORBIDDEN`; no record → 404.
 *
 * ## Sequencing summary
 * registration/start → registration/finish (within the ticket TTL, once);
 * login/start → (client finishes locally) → login/finish (within the state TTL, once).
 * Any step out of order fails with 400/409 and changes nothing; only login/start spends a
 * guess.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { Type } from '../vendor/typebox.js';

/** Protocol version announced in `/v1/info`. */
export const PROTOCOL_VERSION = 1;
/** Largest request body the vault accepts, in bytes. */
export const MAX_BODY_BYTES = 16 * 1024;
/** Smallest key envelope accepted (nonce + tag of an AEAD around at least a byte). */
export const MIN_ENVELOPE_BYTES = 29;
/** Largest key envelope accepted. A backup key envelope is ~60 bytes; room for headers. */
export const MAX_ENVELOPE_BYTES = 1024;
/** How long a login state stays valid between login start and finish. */
export const LOGIN_STATE_TTL_SECONDS = 60;
/** How long a registration ticket stays valid between registration start and finish. */
export const REGISTRATION_TICKET_TTL_SECONDS = 300;
/** HKDF info (and AES-GCM AAD) for the released key envelope. */
export const ENVELOPE_RELEASE_INFO = 'backvault/vault/envelope-release/v1';
/** HKDF info that derives the key proof from the backup key. */
export const KEY_PROOF_INFO = 'backvault/vault/key-proof/v1';
/** Prefix hashed in front of the key proof to form the stored verifier. */
export const KEY_PROOF_VERIFIER_LABEL = 'backvault/vault/key-proof-verifier/v1';
/** HKDF info (and AES-GCM AAD) for the released snapshot head (see "Snapshot head"). */
export const HEAD_RELEASE_INFO = 'backvault/vault/head-release/v1';
/** Prefix of every security event chain hash (see "Security events"). */
export const EVENT_CHAIN_LABEL = 'backvault/vault/event-chain/v1';
/** The chain hash before the first event ever: 32 zero bytes, base64url. */
export const EVENT_CHAIN_GENESIS = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
/** Header carrying the backup-key proof on `GET /v1/record/events` (never logged). */
export const KEY_PROOF_HEADER = 'x-backvault-key-proof';
/** Default pacing of wrong guesses: free guesses, then these delays (s), the last repeating. */
export const DEFAULT_PACING = { freeGuesses: 3, delaysSeconds: [60, 300, 900, 3600] } as const;

/**
 * The bytes a security event contributes to its chain hash: `seq|at|kind|attemptsLeft`
 * (decimal, `attemptsLeft` empty when absent), UTF-8. The hash is
 * `SHA-256(EVENT_CHAIN_LABEL || prevHash (32 bytes) || eventCanonical(e))`.
 */
export function eventCanonical(e: {
  readonly seq: number;
  readonly at: number;
  readonly kind: string;
  readonly attemptsLeft?: number;
}): string {
  return `${e.seq}|${e.at}|${e.kind}|${e.attemptsLeft ?? ''}`;
}

/** Account ids (JWT `sub`) the vault accepts. */
export const ACCOUNT_PATTERN = '^[A-Za-z0-9._@:+=-]{1,128}$';

/** base64url length without padding of `n` bytes. */
export function base64urlLength(n: number): number {
  return Math.ceil((n * 4) / 3);
}

function b64(minBytes: number, maxBytes: number, description: string) {
  return Type.String({
    pattern: '^[A-Za-z0-9_-]*$',
    minLength: base64urlLength(minBytes),
    maxLength: base64urlLength(maxBytes),
    description,
  });
}

/** OPAQUE RegistrationRequest: 32 bytes. */
export const RegistrationRequestField = b64(32, 32, 'OPAQUE RegistrationRequest (32 bytes)');
/** OPAQUE RegistrationRecord (upload): 192 bytes. */
export const RegistrationRecordField = b64(192, 192, 'OPAQUE RegistrationRecord (192 bytes)');
/** OPAQUE KE1: 96 bytes. */
export const StartLoginRequestField = b64(96, 96, 'OPAQUE KE1 (96 bytes)');
/** OPAQUE KE3: 64 bytes. */
export const FinishLoginRequestField = b64(64, 64, 'OPAQUE KE3 (64 bytes)');
/** HSM-sealed blobs handed to the client and back (registration ticket, login state). */
export const SealedField = b64(16, 768, 'sealed by the vault HSM; opaque to the client');
/** A 32-byte key proof. */
export const KeyProofField = b64(32, 32, 'HKDF(backupKey, "backvault/vault/key-proof/v1")');
/** The client-encrypted key envelope. */
export const KeyEnvelopeField = b64(
  MIN_ENVELOPE_BYTES,
  MAX_ENVELOPE_BYTES,
  'backup key encrypted by the client under an export-key-derived key',
);

/** `{ error: { code, message, attemptsLeft?, retryAfterSeconds? } }` */
export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      attemptsLeft: Type.Optional(Type.Integer({ minimum: 0 })),
      retryAfterSeconds: Type.Optional(Type.Integer({ minimum: 0 })),
    }),
  },
  { $id: 'ErrorBody' },
);
/** Error body type. */
export type ErrorBody = Static<typeof ErrorBody>;

/** A snapshot head: the repository's latest snapshot sequence number and id. */
export const SnapshotHead = Type.Object(
  {
    seq: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    snapshotId: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  },
  { additionalProperties: false },
);
/** Snapshot head type. */
export type SnapshotHead = Static<typeof SnapshotHead>;

/** Kinds of security events. */
export const SecurityEventKind = Type.Union([
  Type.Literal('enabled'),
  Type.Literal('password-changed'),
  Type.Literal('guess'),
  Type.Literal('success'),
  Type.Literal('locked'),
]);
/** Security event kind type. */
export type SecurityEventKind = Static<typeof SecurityEventKind>;

/** One entry of an account's security event log. */
export const SecurityEvent = Type.Object({
  seq: Type.Integer({ minimum: 1 }),
  at: Type.Integer({ minimum: 0, description: 'ms since the epoch (vault clock)' }),
  kind: SecurityEventKind,
  attemptsLeft: Type.Optional(
    Type.Integer({ minimum: 0, description: 'guess: attempts left if this one is wrong' }),
  ),
  hash: Type.String({ description: 'chain hash of this entry, base64url (32 bytes)' }),
});
/** Security event type. */
export type SecurityEvent = Static<typeof SecurityEvent>;

/** `GET /v1/info` response. */
export const InfoResponse = Type.Object({
  protocol: Type.Literal(PROTOCOL_VERSION),
  serverPublicKey: Type.String({ description: 'OPAQUE server static public key, base64url' }),
  maxAttempts: Type.Integer({ minimum: 1 }),
  loginStateTtlSeconds: Type.Integer(),
  devAuth: Type.Boolean(),
});
/** Info type. */
export type InfoResponse = Static<typeof InfoResponse>;

/** `POST /v1/dev/token` request (dev-auth only). */
export const DevTokenRequest = Type.Object(
  { account: Type.String({ pattern: ACCOUNT_PATTERN }) },
  { additionalProperties: false },
);
/** Dev token request type. */
export type DevTokenRequest = Static<typeof DevTokenRequest>;
/** `POST /v1/dev/token` response. */
export const DevTokenResponse = Type.Object({
  token: Type.String(),
  expiresAt: Type.String({ description: 'ISO 8601' }),
});
/** Dev token response type. */
export type DevTokenResponse = Static<typeof DevTokenResponse>;

/** `POST /v1/registration/start` request. */
export const RegistrationStartRequest = Type.Object(
  { registrationRequest: RegistrationRequestField },
  { additionalProperties: false },
);
/** Registration start request type. */
export type RegistrationStartRequest = Static<typeof RegistrationStartRequest>;
/** `POST /v1/registration/start` response. */
export const RegistrationStartResponse = Type.Object({
  registrationResponse: Type.String(),
  registrationTicket: Type.String(),
  serverPublicKey: Type.String(),
});
/** Registration start response type. */
export type RegistrationStartResponse = Static<typeof RegistrationStartResponse>;

/** `POST /v1/registration/finish` request. */
export const RegistrationFinishRequest = Type.Object(
  {
    registrationTicket: SealedField,
    registrationRecord: RegistrationRecordField,
    keyEnvelope: KeyEnvelopeField,
    keyProof: KeyProofField,
    currentKeyProof: Type.Optional(KeyProofField),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  },
  { additionalProperties: false },
);
/** Registration finish request type. */
export type RegistrationFinishRequest = Static<typeof RegistrationFinishRequest>;

/** State of an account's record, returned by `GET /v1/record` and registration finish. */
export const RecordStatus = Type.Object({
  state: Type.Union([Type.Literal('active'), Type.Literal('locked')]),
  attemptsLeft: Type.Integer({ minimum: 0 }),
  maxAttempts: Type.Integer({ minimum: 1 }),
  nextTryAt: Type.Optional(
    Type.String({ description: 'ISO 8601: wrong guesses are paced; no login start before' }),
  ),
});
/** Record status type. */
export type RecordStatus = Static<typeof RecordStatus>;

/** `POST /v1/login/start` request. */
export const LoginStartRequest = Type.Object(
  {
    startLoginRequest: StartLoginRequestField,
    requestId: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_-]{16,64}$',
        description: 'random per login attempt; a resend with the same KE1 is not a new guess',
      }),
    ),
  },
  { additionalProperties: false },
);
/** Login start request type. */
export type LoginStartRequest = Static<typeof LoginStartRequest>;
/** `POST /v1/login/start` response. */
export const LoginStartResponse = Type.Object({
  loginResponse: Type.String(),
  loginState: Type.String(),
  attemptsLeft: Type.Integer({ minimum: 0 }),
  serverPublicKey: Type.String(),
});
/** Login start response type. */
export type LoginStartResponse = Static<typeof LoginStartResponse>;

/** `POST /v1/login/finish` request. */
export const LoginFinishRequest = Type.Object(
  { loginState: SealedField, finishLoginRequest: FinishLoginRequestField },
  { additionalProperties: false },
);
/** Login finish request type. */
export type LoginFinishRequest = Static<typeof LoginFinishRequest>;
/** `POST /v1/login/finish` response. */
export const LoginFinishResponse = Type.Object({
  releasedEnvelope: Type.String({
    description: 'nonce || AES-256-GCM(HKDF(sessionKey), keyEnvelope) || tag, base64url',
  }),
  attemptsLeft: Type.Integer({ minimum: 0 }),
  releasedHead: Type.Optional(
    Type.String({
      description:
        'nonce || AES-256-GCM(HKDF(sessionKey, head-release info), JSON snapshot head) || tag, base64url',
    }),
  ),
});
/** Login finish response type. */
export type LoginFinishResponse = Static<typeof LoginFinishResponse>;

/** `POST /v1/record/delete` request. */
export const RecordDeleteRequest = Type.Object(
  { keyProof: KeyProofField },
  { additionalProperties: false },
);
/** Record delete request type. */
export type RecordDeleteRequest = Static<typeof RecordDeleteRequest>;
/** `POST /v1/record/delete` response. */
export const RecordDeleteResponse = Type.Object({ deleted: Type.Literal(true) });
/** Record delete response type. */
export type RecordDeleteResponse = Static<typeof RecordDeleteResponse>;

/** `GET /v1/record/events` response (needs the key proof header). */
export const RecordEventsResponse = Type.Object({
  events: Type.Array(SecurityEvent),
  firstPrevHash: Type.String({ description: 'chain hash before events[0], base64url' }),
  head: Type.Union([SnapshotHead, Type.Null()]),
  state: Type.Union([Type.Literal('active'), Type.Literal('locked')]),
  nextTryAt: Type.Optional(Type.String({ description: 'ISO 8601' })),
});
/** Record events response type. */
export type RecordEventsResponse = Static<typeof RecordEventsResponse>;

/** `POST /v1/record/head` request. */
export const RecordHeadRequest = Type.Object(
  { keyProof: KeyProofField, head: SnapshotHead },
  { additionalProperties: false },
);
/** Record head request type. */
export type RecordHeadRequest = Static<typeof RecordHeadRequest>;
/** `POST /v1/record/head` response: the head now stored. */
export const RecordHeadResponse = Type.Object({ head: SnapshotHead });
/** Record head response type. */
export type RecordHeadResponse = Static<typeof RecordHeadResponse>;

/** One route of the protocol: what the server registers and the OpenAPI document lists. */
export interface RouteSpec {
  readonly method: 'GET' | 'POST';
  readonly url: string;
  readonly operationId: string;
  readonly summary: string;
  /** Needs `Authorization: Bearer <JWT>`. */
  readonly auth: boolean;
  readonly body?: TSchema;
  /** Success response schema (HTTP 200). */
  readonly response: TSchema;
  /** Error statuses this route may answer (besides 400/413/429/500). */
  readonly errors: readonly number[];
  /** Required request headers besides `Authorization`. */
  readonly headers?: readonly { readonly name: string; readonly description: string }[];
}

/** The route table of protocol version 1. */
export const ROUTES = {
  info: {
    method: 'GET',
    url: '/v1/info',
    operationId: 'info',
    summary: 'Protocol version, OPAQUE server public key and default attempt limit',
    auth: false,
    response: InfoResponse,
    errors: [],
  },
  devToken: {
    method: 'POST',
    url: '/v1/dev/token',
    operationId: 'devToken',
    summary: 'INSECURE dev token for an account (only with --dev-auth on loopback)',
    auth: false,
    body: DevTokenRequest,
    response: DevTokenResponse,
    errors: [404],
  },
  recordStatus: {
    method: 'GET',
    url: '/v1/record',
    operationId: 'recordStatus',
    summary: 'State and attempts left of the caller’s record (not a guess)',
    auth: true,
    response: RecordStatus,
    errors: [401, 404],
  },
  registrationStart: {
    method: 'POST',
    url: '/v1/registration/start',
    operationId: 'registrationStart',
    summary: 'OPAQUE registration step 1 (changes nothing)',
    auth: true,
    body: RegistrationStartRequest,
    response: RegistrationStartResponse,
    errors: [401],
  },
  registrationFinish: {
    method: 'POST',
    url: '/v1/registration/finish',
    operationId: 'registrationFinish',
    summary: 'OPAQUE registration step 2: store record, envelope and key-proof verifier',
    auth: true,
    body: RegistrationFinishRequest,
    response: RecordStatus,
    errors: [401, 403, 409],
  },
  loginStart: {
    method: 'POST',
    url: '/v1/login/start',
    operationId: 'loginStart',
    summary: 'OPAQUE login step 1: spends one guess, durably, before answering',
    auth: true,
    body: LoginStartRequest,
    response: LoginStartResponse,
    errors: [401, 404, 409, 423, 429, 503],
  },
  loginFinish: {
    method: 'POST',
    url: '/v1/login/finish',
    operationId: 'loginFinish',
    summary: 'OPAQUE login step 3: resets failures and releases the key envelope',
    auth: true,
    body: LoginFinishRequest,
    response: LoginFinishResponse,
    errors: [401, 403, 404, 409, 423, 503],
  },
  recordDelete: {
    method: 'POST',
    url: '/v1/record/delete',
    operationId: 'recordDelete',
    summary: 'Delete the record (disable); needs the backup-key proof',
    auth: true,
    body: RecordDeleteRequest,
    response: RecordDeleteResponse,
    errors: [401, 403, 404],
  },
  recordEvents: {
    method: 'GET',
    url: '/v1/record/events',
    operationId: 'recordEvents',
    summary: 'The account’s security event log and snapshot head; needs the key proof header',
    auth: true,
    response: RecordEventsResponse,
    errors: [401, 403, 404],
    headers: [{ name: KEY_PROOF_HEADER, description: 'the backup-key proof (base64url)' }],
  },
  recordHead: {
    method: 'POST',
    url: '/v1/record/head',
    operationId: 'recordHead',
    summary: 'Record the latest snapshot head; needs the key proof; never lowered',
    auth: true,
    body: RecordHeadRequest,
    response: RecordHeadResponse,
    errors: [401, 403, 404, 409, 423],
  },
} as const satisfies Record<string, RouteSpec>;
