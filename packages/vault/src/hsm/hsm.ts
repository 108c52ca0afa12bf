/**
 * The HSM boundary of the vault: the only code that holds server secrets (the OPAQUE
 * server setup and the record-sealing key). The HTTP layer and the store see only sealed
 * records, sealed tickets and sealed login states.
 *
 * Two implementations are planned: the in-process software HSM (`software-hsm.ts`) and a
 * PKCS#11 one. Both must pass `test/hsm/conformance.ts` (`runHsmConformance`).
 */

/** Result of {@link Hsm.createRegistrationResponse}. */
export interface RegistrationStart {
  /** OPAQUE RegistrationResponse for the client (base64url). */
  readonly registrationResponse: string;
  /**
   * Sealed, account-bound, short-lived ticket naming the fresh credential identifier the
   * OPRF was evaluated under (base64url). Handed to the client and back at finish.
   */
  readonly registrationTicket: string;
}

/** Result of {@link Hsm.finishRegistration}. */
export interface RegistrationFinish {
  /**
   * The fresh credential identifier of this registration. Not secret. Each registration
   * gets a new one, so a replayed ticket is recognised (same id as the stored record).
   */
  readonly credentialId: string;
  /** The OPAQUE record sealed for this account, to be stored as is. */
  readonly sealedRecord: Uint8Array;
}

/** Result of {@link Hsm.startLogin}. */
export interface LoginStart {
  /** OPAQUE KE2 for the client (base64url). */
  readonly loginResponse: string;
  /** The server login state sealed with the account, binding and expiry as AAD (base64url). */
  readonly sealedLoginState: string;
}

/**
 * The server-secret operations of the vault.
 *
 * Contract (every implementation):
 * - All methods are async and may be called concurrently.
 * - Secrets (server setup, sealing keys, OPAQUE states, session keys) never appear in a
 *   thrown message, a log line or an enumerable property.
 * - Sealing is AES-256-GCM under a key that never leaves the HSM, with the account id in
 *   the associated data: a blob sealed for account A never opens for account B.
 * - Tickets and login states carry an expiry (in the AAD) and a caller-chosen `binding`
 *   (in the AAD); opening rejects expired ones, a different binding, another account,
 *   or any modified byte. The HSM keeps no per-login memory: single use is enforced by
 *   the caller changing the binding once a login succeeded (the vault binds to the
 *   record's credential id and login epoch).
 * - Two HSMs holding the same keys (a fleet) are interchangeable: any one can finish
 *   what another began.
 *
 * Errors (from `src/errors.ts`): `BadRequestError` for a malformed OPAQUE message and for
 * an expired, tampered or foreign ticket/state; `ConflictError` when the binding differs
 * (replayed or superseded); `ForbiddenError` when a KE3 does not authenticate;
 * `CorruptBackupError` when a sealed record fails authentication (the store was altered).
 */
export interface Hsm {
  /** The OPAQUE server static public key (base64url), which clients pin. */
  serverPublicKey(): Promise<string>;

  /**
   * OPAQUE registration step 1 under a fresh credential identifier.
   * @throws BadRequestError if `registrationRequest` is not a valid OPAQUE message.
   */
  createRegistrationResponse(
    accountId: string,
    registrationRequest: string,
    binding: string,
  ): Promise<RegistrationStart>;

  /**
   * Opens the ticket (same account, same binding, not expired) and seals the client's
   * OPAQUE record. The vault binds tickets to the credential id of the record they
   * replace, so a ticket is dead once any registration completed after it was issued.
   * @throws BadRequestError if the ticket is expired, forged or for another account.
   * @throws ConflictError if `binding` differs from the one given at start.
   */
  finishRegistration(
    accountId: string,
    registrationTicket: string,
    registrationRecord: string,
    binding: string,
  ): Promise<RegistrationFinish>;

  /** Seals `plaintext` for `accountId` (AES-256-GCM, account as AAD). */
  sealRecord(accountId: string, plaintext: Uint8Array): Promise<Uint8Array>;

  /**
   * Opens what {@link sealRecord} sealed for the same account.
   * @throws CorruptBackupError on any modification or another account.
   */
  openRecord(accountId: string, sealed: Uint8Array): Promise<Uint8Array>;

  /**
   * OPAQUE login step 2 (KE1 → KE2). The caller MUST have durably counted the guess
   * before calling: the response is a guess.
   * @throws BadRequestError if `startLoginRequest` is not a valid KE1.
   * @throws CorruptBackupError if `sealedRecord` does not open for this account.
   */
  startLogin(
    accountId: string,
    sealedRecord: Uint8Array,
    startLoginRequest: string,
    binding: string,
  ): Promise<LoginStart>;

  /**
   * OPAQUE login step 4 (KE3 check). Returns the 64-byte session key.
   * @throws BadRequestError if the state is expired, tampered or for another account.
   * @throws ConflictError if `binding` differs from the one given to `startLogin`.
   * @throws ForbiddenError if the KE3 does not authenticate (wrong password or forged).
   */
  finishLogin(
    accountId: string,
    sealedLoginState: string,
    finishLoginRequest: string,
    binding: string,
  ): Promise<{ readonly sessionKey: Uint8Array }>;

  /** Releases resources (sessions, handles). Further calls may fail. */
  close(): Promise<void>;
}
