/**
 * The vault's protocol logic, independent of HTTP: the attempt counter, registration,
 * login, replacement and deletion. Rules are those of PRODUCT.md "Attempt counter rules";
 * the wire protocol is documented in `src/wire/index.ts`.
 *
 * Measured here (2 cores, Node 20): HSM login start ~0.8 ms, SQLite durable CAS ~0.15 ms.
 */
import { createCipheriv, createHash, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  ConflictError,
  ForbiddenError,
  LockedError,
  NotFoundError,
  RateLimitedError,
  RollbackError,
  UnavailableError,
  WrongPasswordError,
  hasCode,
} from 'backvault/errors';
import type { Hsm } from '../hsm/hsm.js';
import {
  DEFAULT_PACING,
  ENVELOPE_RELEASE_INFO,
  HEAD_RELEASE_INFO,
  KEY_PROOF_VERIFIER_LABEL,
  type RecordEventsResponse,
  type SnapshotHead,
  type LoginFinishRequest,
  type LoginFinishResponse,
  type LoginStartRequest,
  type LoginStartResponse,
  type RecordStatus,
  type RegistrationFinishRequest,
  type RegistrationStartRequest,
  type RegistrationStartResponse,
} from 'backvault/wire';
import {
  EMPTY_JOURNAL,
  appendEvent,
  digestsEqual,
  journalEvents,
  ke1Digest,
  openJournal,
  sealJournal,
  withAnswer,
  type Journal,
} from './journal.js';
import { ABSENT, type VaultRecord, type VaultRecordData, type VaultStore } from './store.js';

/**
 * Pacing of wrong guesses, kept in the record itself (`failures`, `lastStartAt`), so it
 * holds across workers, nodes and restarts: once `freeGuesses` guesses are counted since
 * the last success, a login start is refused (RATE_LIMITED) until
 * `lastStartAt + delaysSeconds[failures - freeGuesses]` (the last delay repeating).
 */
export interface Pacing {
  readonly freeGuesses: number;
  readonly delaysSeconds: readonly number[];
}

/** How long (ms) a login start on `rec` must still wait at `now` under `pacing`. */
export function pacingWaitMs(
  pacing: Pacing | null,
  rec: Pick<VaultRecordData, 'failures' | 'lastStartAt'>,
  now: number,
): number {
  if (!pacing || rec.lastStartAt === null || pacing.delaysSeconds.length === 0) return 0;
  const k = rec.failures - pacing.freeGuesses;
  if (k < 0) return 0;
  const delay = pacing.delaysSeconds[Math.min(k, pacing.delaysSeconds.length - 1)] ?? 0;
  return Math.max(0, rec.lastStartAt + delay * 1000 - now);
}

/** Events the service reports (metrics hang off these). */
export interface VaultEvents {
  loginStarted?(): void;
  loginSucceeded?(): void;
  loginFailed?(
    reason: 'wrong-password' | 'locked' | 'not-found' | 'invalid' | 'paced' | 'reused-request-id',
  ): void;
  /** A resent login start answered from its stored answer (no guess counted). */
  loginReplayed?(): void;
  lockout?(): void;
  registered?(replaced: boolean): void;
}

/** Options of {@link VaultService}. */
export interface VaultServiceOptions {
  readonly store: VaultStore;
  readonly hsm: Hsm;
  /** Default and maximum guesses per record. */
  readonly maxAttempts: number;
  /** Must equal the HSM's login state TTL: the last guess may finish within it. */
  readonly loginStateTtlMs: number;
  readonly now?: () => number;
  /**
   * Pacing of wrong guesses; `null` turns it off. Default {@link DEFAULT_PACING}
   * (3 free, then 1 min, 5 min, 15 min, 1 h, 1 h …).
   */
  readonly pacing?: Pacing | null;
  readonly events?: VaultEvents;
  /** Called after a lockout committed, to scrub remnants from the medium (best effort). */
  readonly afterLockout?: () => Promise<void>;
}

/** Maximum CAS retries under contention before answering UNAVAILABLE. */
const MAX_CAS_TRIES = 64;

function b64u(s: string): Buffer {
  return Buffer.from(s, 'base64url');
}

/** SHA-256(label || keyProof): what the vault stores to check key proofs. */
export function keyProofVerifier(keyProof: Uint8Array): Uint8Array {
  return new Uint8Array(
    createHash('sha256').update(KEY_PROOF_VERIFIER_LABEL).update(keyProof).digest(),
  );
}

function proofMatches(verifier: Uint8Array, keyProof: string): boolean {
  const v = keyProofVerifier(b64u(keyProof));
  return v.length === verifier.length && timingSafeEqual(v, verifier);
}

/** Encrypts the envelope under HKDF(sessionKey) as documented in the wire protocol. */
export function releaseEnvelope(sessionKey: Uint8Array, keyEnvelope: Uint8Array): Buffer {
  const k = Buffer.from(
    hkdfSync('sha256', sessionKey, new Uint8Array(0), ENVELOPE_RELEASE_INFO, 32),
  );
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', k, nonce);
  c.setAAD(Buffer.from(ENVELOPE_RELEASE_INFO, 'utf8'));
  const out = Buffer.concat([nonce, c.update(keyEnvelope), c.final(), c.getAuthTag()]);
  k.fill(0);
  return out;
}

/** Encrypts the snapshot head under HKDF(sessionKey) (head-release info), like the envelope. */
export function releaseHead(sessionKey: Uint8Array, head: SnapshotHead): Buffer {
  const k = Buffer.from(hkdfSync('sha256', sessionKey, new Uint8Array(0), HEAD_RELEASE_INFO, 32));
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', k, nonce);
  c.setAAD(Buffer.from(HEAD_RELEASE_INFO, 'utf8'));
  const plain = Buffer.from(JSON.stringify({ seq: head.seq, snapshotId: head.snapshotId }));
  const out = Buffer.concat([nonce, c.update(plain), c.final(), c.getAuthTag()]);
  k.fill(0);
  return out;
}

function forbidden(): ForbiddenError {
  return new ForbiddenError(
    'the backup-key proof does not match this record',
    'Replacing or deleting a record needs the backup key it protects.',
  );
}

function loginBinding(r: VaultRecord): string {
  return `${r.credentialId}:${r.loginEpoch}`;
}

/** The vault protocol over a {@link VaultStore} and an {@link Hsm}. */
export class VaultService {
  readonly #store: VaultStore;
  readonly #hsm: Hsm;
  readonly #max: number;
  readonly #ttl: number;
  readonly #now: () => number;
  readonly #ev: VaultEvents;
  readonly #afterLockout: (() => Promise<void>) | undefined;
  readonly #pacing: Pacing | null;
  readonly #timers = new Set<NodeJS.Timeout>();

  /** Builds the service; see {@link VaultServiceOptions}. */
  constructor(o: VaultServiceOptions) {
    this.#store = o.store;
    this.#hsm = o.hsm;
    this.#max = o.maxAttempts;
    this.#ttl = o.loginStateTtlMs;
    this.#now = o.now ?? Date.now;
    this.#ev = o.events ?? {};
    this.#afterLockout = o.afterLockout;
    this.#pacing = o.pacing === undefined ? DEFAULT_PACING : o.pacing;
  }

  /** The configured default/maximum attempt limit. */
  get maxAttempts(): number {
    return this.#max;
  }

  /**
   * State of the account's record (not a guess).
   * @throws NotFoundError if the account has no record.
   */
  async status(account: string): Promise<RecordStatus> {
    let rec = await this.#store.get(account);
    if (rec && this.#lastChanceOver(rec)) rec = await this.#lock(account, rec);
    if (!rec) throw new NotFoundError('no vault record for this account');
    return this.#statusOf(rec);
  }

  /**
   * The account's security event log and snapshot head, for the backup-key holder.
   * @throws NotFoundError, ForbiddenError (key proof does not match), CorruptBackupError.
   */
  async events(account: string, keyProof: string): Promise<RecordEventsResponse> {
    const rec = await this.#store.get(account);
    if (!rec) throw new NotFoundError('no vault record for this account');
    if (!proofMatches(rec.keyProofVerifier, keyProof)) throw forbidden();
    const j = await openJournal(this.#hsm, account, rec.sealedJournal);
    const status = this.#statusOf(rec);
    return {
      events: journalEvents(j),
      firstPrevHash: j.firstPrevHash,
      head: j.head,
      state: rec.state,
      ...(status.nextTryAt ? { nextTryAt: status.nextTryAt } : {}),
    };
  }

  /**
   * Records the repository's latest snapshot head, for the backup-key holder. Never lowers
   * it: an older head (or another snapshot at the same seq) is refused.
   * @throws NotFoundError, ForbiddenError, LockedError, RollbackError (older head),
   *   UnavailableError.
   */
  async updateHead(account: string, keyProof: string, head: SnapshotHead): Promise<SnapshotHead> {
    for (let i = 0; i < MAX_CAS_TRIES; i++) {
      const rec = await this.#store.get(account);
      if (!rec) throw new NotFoundError('no vault record for this account');
      if (!proofMatches(rec.keyProofVerifier, keyProof)) throw forbidden();
      if (rec.state === 'locked') throw new LockedError();
      const j = await openJournal(this.#hsm, account, rec.sealedJournal);
      const cur = j.head;
      if (cur && cur.seq === head.seq && cur.snapshotId === head.snapshotId) return cur;
      if (cur && head.seq <= cur.seq) {
        throw new RollbackError(
          `the vault already holds snapshot ${cur.seq} of this repository; refusing snapshot ${head.seq}`,
        );
      }
      const next: VaultRecordData = {
        ...rec,
        updatedAt: this.#now(),
        sealedJournal: await sealJournal(this.#hsm, account, {
          ...j,
          head: { seq: head.seq, snapshotId: head.snapshotId },
        }),
      };
      if (await this.#store.compareAndSwap(account, rec.version, next)) return head;
    }
    throw new UnavailableError('vault record is too contended; retry');
  }

  /**
   * Registration step 1. Changes nothing; the ticket is bound to the current record.
   * @throws BadRequestError on a malformed OPAQUE message.
   */
  async registrationStart(
    account: string,
    req: RegistrationStartRequest,
  ): Promise<RegistrationStartResponse> {
    const rec = await this.#store.get(account);
    const r = await this.#hsm.createRegistrationResponse(
      account,
      req.registrationRequest,
      this.#ticketBinding(rec),
    );
    return { ...r, serverPublicKey: await this.#hsm.serverPublicKey() };
  }

  /**
   * Registration step 2: creates the record, or replaces it atomically (one CAS) when
   * `currentKeyProof` matches the stored verifier.
   * @throws BadRequestError if the ticket is expired, forged or for another account.
   * @throws ConflictError if the ticket was used or superseded, or a record exists and no proof was sent.
   * @throws ForbiddenError if `currentKeyProof` does not match.
   */
  async registrationFinish(account: string, req: RegistrationFinishRequest): Promise<RecordStatus> {
    const limit = Math.min(req.maxAttempts ?? this.#max, this.#max);
    for (let i = 0; i < MAX_CAS_TRIES; i++) {
      const rec = await this.#store.get(account);
      // The ticket names the record it replaces: a replayed or raced ticket fails here.
      const { credentialId, sealedRecord } = await this.#hsm.finishRegistration(
        account,
        req.registrationTicket,
        req.registrationRecord,
        this.#ticketBinding(rec),
      );
      if (rec) {
        if (req.currentKeyProof === undefined) {
          throw new ConflictError(
            'a vault record exists for this account; replacing it needs currentKeyProof',
          );
        }
        if (!proofMatches(rec.keyProofVerifier, req.currentKeyProof)) throw forbidden();
      }
      const now = this.#now();
      const verifier = keyProofVerifier(b64u(req.keyProof));
      // The event log is the user's history, not the password's: it survives replacement
      // (a journal that no longer opens is started afresh; the key proof was shown).
      let journal: Journal = rec
        ? await openJournal(this.#hsm, account, rec.sealedJournal).catch(() => EMPTY_JOURNAL)
        : EMPTY_JOURNAL;
      const sameKey =
        rec !== undefined &&
        rec.keyProofVerifier.length === verifier.length &&
        timingSafeEqual(rec.keyProofVerifier, verifier);
      journal = appendEvent(
        { ...journal, answers: [], head: sameKey ? journal.head : null },
        rec?.state === 'active' ? 'password-changed' : 'enabled',
        now,
      );
      const next: VaultRecordData = {
        state: 'active',
        failures: 0,
        limit,
        loginEpoch: (rec?.loginEpoch ?? 0) + 1,
        credentialId,
        sealedRecord,
        keyEnvelope: b64u(req.keyEnvelope),
        keyProofVerifier: verifier,
        lastStartAt: null,
        updatedAt: now,
        sealedJournal: await sealJournal(this.#hsm, account, journal),
      };
      if (await this.#store.compareAndSwap(account, rec?.version ?? ABSENT, next)) {
        this.#ev.registered?.(rec !== undefined);
        return { state: 'active', attemptsLeft: limit, maxAttempts: limit };
      }
    }
    throw new UnavailableError('vault record is too contended; retry');
  }

  /**
   * Login step 1: THE GUESS. Asks the HSM for KE2, durably counts the guess (with its
   * event and, with a `requestId`, its stored answer) in one compare-and-swap, and only
   * then answers. A resend with the same `requestId` and KE1 within the login TTL, in the
   * same login epoch, gets the stored answer without a second count.
   * @throws NotFoundError, LockedError, BadRequestError (invalid KE1; nothing counted),
   *   ConflictError (request id reused with another KE1), RateLimitedError (paced),
   *   UnavailableError.
   */
  async loginStart(account: string, req: LoginStartRequest): Promise<LoginStartResponse> {
    let mustBeCurrent = false;
    for (let i = 0; i < MAX_CAS_TRIES; i++) {
      // First try: a possibly stale read (no quorum round trip on etcd), confirmed by the
      // CAS on its version below; a stale version fails that CAS and we re-read
      // linearizably. Every answer given without that CAS (not found, locked, paced, a
      // replayed answer) comes from a linearizable read.
      const linearizable = i > 0 || mustBeCurrent;
      let rec = await this.#store.get(account, { linearizable });
      if (!linearizable && !(rec && rec.state === 'active' && rec.failures < rec.limit)) {
        rec = await this.#store.get(account);
        mustBeCurrent = true;
      }
      const current = linearizable || mustBeCurrent;
      if (!rec) {
        this.#ev.loginFailed?.('not-found');
        throw new NotFoundError('no vault record for this account');
      }
      if (rec.state === 'locked' || !rec.sealedRecord) {
        this.#ev.loginFailed?.('locked');
        throw new LockedError();
      }
      const now = this.#now();
      const journal = await openJournal(this.#hsm, account, rec.sealedJournal);
      const digest = ke1Digest(req.startLoginRequest);
      if (req.requestId !== undefined) {
        const prior = journal.answers.find(
          (a) =>
            a.requestId === req.requestId &&
            a.loginEpoch === rec.loginEpoch &&
            now <= a.at + this.#ttl,
        );
        if (prior) {
          if (!current) {
            mustBeCurrent = true;
            continue;
          }
          if (!digestsEqual(prior.ke1Digest, digest)) {
            this.#ev.loginFailed?.('reused-request-id');
            throw new ConflictError(
              'this request id was already used with another login message',
              'Start a new login (a new request id).',
            );
          }
          // The same guess, answered again: no count, no event.
          this.#ev.loginReplayed?.();
          return {
            loginResponse: prior.loginResponse,
            loginState: prior.loginState,
            attemptsLeft: prior.attemptsLeft,
            serverPublicKey: await this.#hsm.serverPublicKey(),
          };
        }
      }
      if (rec.failures >= rec.limit) {
        if (!current) {
          mustBeCurrent = true;
          continue;
        }
        // The last guess was given out; another start means it was not a success.
        await this.#lock(account, rec);
        this.#ev.loginFailed?.('locked');
        throw new LockedError();
      }
      const wait = pacingWaitMs(this.#pacing, rec, now);
      if (wait > 0) {
        if (!current) {
          mustBeCurrent = true;
          continue;
        }
        this.#ev.loginFailed?.('paced');
        throw new RateLimitedError(Math.ceil(wait / 1000));
      }
      // KE2 is computed here but released only after the count below is durable: a crash
      // in between answers nothing and counts nothing. An invalid KE1 fails here (400)
      // and costs nothing: no OPRF output leaves the HSM for it.
      const started = await this.#hsm.startLogin(
        account,
        rec.sealedRecord,
        req.startLoginRequest,
        loginBinding(rec),
      );
      const attemptsLeft = rec.limit - (rec.failures + 1);
      let j = appendEvent(journal, 'guess', now, attemptsLeft);
      j = withAnswer(
        j,
        req.requestId === undefined
          ? undefined
          : {
              requestId: req.requestId,
              ke1Digest: digest,
              loginEpoch: rec.loginEpoch,
              at: now,
              loginResponse: started.loginResponse,
              loginState: started.sealedLoginState,
              attemptsLeft,
            },
        rec.loginEpoch,
        now,
        this.#ttl,
      );
      const counted: VaultRecordData = {
        ...rec,
        failures: rec.failures + 1,
        lastStartAt: now,
        updatedAt: now,
        sealedJournal: await sealJournal(this.#hsm, account, j),
      };
      // Durable before the answer leaves: from here on the guess is spent.
      if (!(await this.#store.compareAndSwap(account, rec.version, counted))) continue;
      this.#ev.loginStarted?.();
      if (attemptsLeft === 0) this.#scheduleLockCheck(account, now);
      return {
        loginResponse: started.loginResponse,
        loginState: started.sealedLoginState,
        attemptsLeft,
        serverPublicKey: await this.#hsm.serverPublicKey(),
      };
    }
    throw new UnavailableError('vault record is too contended; retry');
  }

  /**
   * Login step 3: checks KE3, resets failures (durably) and releases the envelope.
   * @throws WrongPasswordError (KE3 did not verify), LockedError, NotFoundError,
   *   BadRequestError (expired/forged state), ConflictError (used/superseded state).
   */
  async loginFinish(account: string, req: LoginFinishRequest): Promise<LoginFinishResponse> {
    // A possibly stale read (no quorum round trip on etcd), confirmed by the reset CAS on
    // its version below (a stale version fails it; the loop re-reads linearizably). Any
    // answer given without that CAS — not found, locked, a failed check — is decided on a
    // linearizable read.
    let rec = await this.#store.get(account, { linearizable: false });
    if (!rec || rec.state === 'locked' || this.#lastChanceOver(rec)) {
      rec = await this.#store.get(account);
    }
    if (!rec) throw new NotFoundError('no vault record for this account');
    if (rec.state === 'locked') throw new LockedError();
    if (this.#lastChanceOver(rec)) {
      await this.#lock(account, rec);
      throw new LockedError();
    }
    let binding = loginBinding(rec);
    let sessionKey: Uint8Array;
    try {
      for (let confirmed = false; ; confirmed = true) {
        try {
          ({ sessionKey } = await this.#hsm.finishLogin(
            account,
            req.loginState,
            req.finishLoginRequest,
            binding,
          ));
          break;
        } catch (e) {
          if (confirmed) throw e;
          const cur = await this.#store.get(account);
          if (!cur) throw new NotFoundError('no vault record for this account');
          if (cur.state === 'locked') throw new LockedError();
          rec = cur;
          if (loginBinding(cur) === binding) throw e;
          binding = loginBinding(cur); // the stale read named an older login epoch
        }
      }
    } catch (e) {
      if (!hasCode(e, 'FORBIDDEN')) {
        this.#ev.loginFailed?.('invalid');
        throw e;
      }
      this.#ev.loginFailed?.('wrong-password');
      if (rec.failures >= rec.limit) await this.#lock(account, rec);
      throw new WrongPasswordError(Math.max(0, rec.limit - rec.failures));
    }
    for (let i = 0; i < MAX_CAS_TRIES; i++) {
      const now = this.#now();
      const journal = await openJournal(this.#hsm, account, rec.sealedJournal);
      const j = appendEvent({ ...journal, answers: [] }, 'success', now);
      const reset: VaultRecordData = {
        ...rec,
        failures: 0,
        loginEpoch: rec.loginEpoch + 1,
        lastStartAt: null,
        updatedAt: now,
        sealedJournal: await sealJournal(this.#hsm, account, j),
      };
      if (await this.#store.compareAndSwap(account, rec.version, reset)) {
        if (!rec.keyEnvelope) throw new LockedError();
        const released = releaseEnvelope(sessionKey, rec.keyEnvelope);
        const head = j.head ? releaseHead(sessionKey, j.head).toString('base64url') : undefined;
        sessionKey.fill(0);
        this.#ev.loginSucceeded?.();
        return {
          releasedEnvelope: released.toString('base64url'),
          attemptsLeft: rec.limit,
          ...(head ? { releasedHead: head } : {}),
        };
      }
      // Another start counted a guess meanwhile; we may still win if nothing else changed.
      const again = await this.#store.get(account);
      if (!again) throw new NotFoundError('no vault record for this account');
      if (again.state === 'locked') throw new LockedError();
      if (loginBinding(again) !== binding) {
        throw new ConflictError('login state was already used or superseded; start again');
      }
      rec = again;
    }
    throw new UnavailableError('vault record is too contended; retry');
  }

  /**
   * Deletes the record (disable) after checking the backup-key proof.
   * @throws NotFoundError, ForbiddenError.
   */
  async deleteRecord(account: string, keyProof: string): Promise<void> {
    for (let i = 0; i < MAX_CAS_TRIES; i++) {
      const rec = await this.#store.get(account);
      if (!rec) throw new NotFoundError('no vault record for this account');
      if (!proofMatches(rec.keyProofVerifier, keyProof)) throw forbidden();
      if (await this.#store.compareAndDelete(account, rec.version)) return;
    }
    throw new UnavailableError('vault record is too contended; retry');
  }

  /** Cancels pending lock checks. */
  close(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  #statusOf(rec: VaultRecord): RecordStatus {
    if (rec.state === 'locked') return { state: 'locked', attemptsLeft: 0, maxAttempts: rec.limit };
    const now = this.#now();
    const wait = pacingWaitMs(this.#pacing, rec, now);
    return {
      state: 'active',
      attemptsLeft: Math.max(0, rec.limit - rec.failures),
      maxAttempts: rec.limit,
      ...(wait > 0 ? { nextTryAt: new Date(now + wait).toISOString() } : {}),
    };
  }

  #ticketBinding(rec: VaultRecord | undefined): string {
    return rec ? `replaces:${rec.credentialId}` : 'new';
  }

  /** The last guess was handed out and its login state has expired without success. */
  #lastChanceOver(rec: VaultRecord): boolean {
    return (
      rec.state === 'active' &&
      rec.failures >= rec.limit &&
      (rec.lastStartAt === null || this.#now() > rec.lastStartAt + this.#ttl)
    );
  }

  /**
   * Destroys record and envelope, keeping a locked tombstone (with the key-proof verifier,
   * so the backup-key holder may re-enable). Returns the record as it now is.
   */
  async #lock(account: string, rec: VaultRecord): Promise<VaultRecord | undefined> {
    let cur: VaultRecord | undefined = rec;
    for (let i = 0; i < MAX_CAS_TRIES && cur; i++) {
      if (cur.state === 'locked') return cur;
      if (cur.failures < cur.limit) return cur; // a success reset it meanwhile
      const now = this.#now();
      // Locking never waits on the journal: one that does not open stays as it is.
      let sealedJournal = cur.sealedJournal ?? null;
      try {
        const j = await openJournal(this.#hsm, account, cur.sealedJournal);
        sealedJournal = await sealJournal(
          this.#hsm,
          account,
          appendEvent({ ...j, answers: [] }, 'locked', now),
        );
      } catch {
        // keep the old journal
      }
      const tomb: VaultRecordData = {
        ...cur,
        state: 'locked',
        sealedRecord: null,
        keyEnvelope: null,
        loginEpoch: cur.loginEpoch + 1,
        updatedAt: now,
        sealedJournal,
      };
      if (await this.#store.compareAndSwap(account, cur.version, tomb)) {
        this.#ev.lockout?.();
        await this.#afterLockout?.().catch(() => undefined);
        return this.#store.get(account);
      }
      cur = await this.#store.get(account);
    }
    return cur;
  }

  #scheduleLockCheck(account: string, startedAt: number): void {
    const delay = Math.max(0, startedAt + this.#ttl - this.#now()) + 50;
    const t = setTimeout(() => {
      this.#timers.delete(t);
      void this.status(account).catch(() => undefined);
    }, delay);
    t.unref();
    this.#timers.add(t);
  }
}
