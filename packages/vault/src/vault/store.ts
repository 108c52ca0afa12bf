/**
 * The vault's record store: one record per account, updated only by compare-and-swap on
 * a version. The attempt counter lives here, so the store's durability IS the guarantee
 * "at most `limit` guesses": a write reported done and then lost would be a free guess.
 *
 * Implementations: SQLite (embedded, `sqlite-store.ts`), etcd (`etcd-store.ts`, version =
 * mod revision) and the sharded router over several stores (`sharded-store.ts`). All pass
 * `test/vault/store-conformance.ts`.
 */

/** `active`: record and envelope present. `locked`: destroyed after the limit; tombstone. */
export type RecordState = 'active' | 'locked';

/** What the vault keeps per account, without the store-assigned version. */
export interface VaultRecordData {
  readonly state: RecordState;
  /** Guesses spent since the last successful login (or registration). */
  readonly failures: number;
  /** Guesses allowed before the record is destroyed. */
  readonly limit: number;
  /**
   * Bumped by every successful login and registration. Login states are bound to
   * `credentialId:loginEpoch`, so each can finish at most once.
   */
  readonly loginEpoch: number;
  /** OPAQUE credential identifier of the current registration (not secret). */
  readonly credentialId: string;
  /** HSM-sealed OPAQUE record; null once locked. */
  readonly sealedRecord: Uint8Array | null;
  /** Client-encrypted key envelope; null once locked. */
  readonly keyEnvelope: Uint8Array | null;
  /** SHA-256 verifier of the backup-key proof (kept in the tombstone too). */
  readonly keyProofVerifier: Uint8Array;
  /** When the last login start was counted (ms since epoch), or null. */
  readonly lastStartAt: number | null;
  /**
   * The account's journal, sealed by the HSM for this account (`journal.ts`): the chained
   * security event log, the latest snapshot head and the stored answers of idempotent
   * login starts. Opaque to the store. Absent/null on records written before it existed
   * (read as an empty journal). Stores return it as `null` when none was written.
   */
  readonly sealedJournal?: Uint8Array | null;
  /** Last change (ms since epoch). */
  readonly updatedAt: number;
}

/** A stored record with its version. */
export interface VaultRecord extends VaultRecordData {
  /**
   * Store-assigned, strictly increasing across every write to the account, including
   * delete and re-create (no ABA): a CAS against an old version can never succeed.
   * Always ≥ 1.
   */
  readonly version: number;
}

/** The version to pass to {@link VaultStore.compareAndSwap} to create a record. */
export const ABSENT = 0;

/** Options of {@link VaultStore.get}. */
export interface GetOptions {
  /**
   * Default `true`: the read is linearizable. `false` allows a possibly stale answer (on
   * etcd: the record as this node itself last wrote it, if recently, else a serializable
   * read served by the member the node talks to without a quorum round trip): it may miss
   * writes committed shortly before, but it never shows a write that did not commit, and
   * its `version` is one the record really had.
   *
   * Use `false` ONLY for a read whose result is confirmed by a following
   * {@link VaultStore.compareAndSwap} / {@link VaultStore.compareAndDelete} against the
   * version read: a stale version makes that CAS return false (versions never repeat),
   * and the caller must then re-read linearizably. Anything answered or decided without
   * such a CAS (not found, locked, attempts left, an error) must come from a
   * linearizable read. Implementations may ignore the option and always read
   * linearizably (SQLite does: its reads are local and current anyway).
   */
  readonly linearizable?: boolean;
}

/**
 * Contract (every implementation):
 * - `get` is linearizable unless asked otherwise ({@link GetOptions.linearizable}): it
 *   reflects every CAS that returned before it was called.
 * - `compareAndSwap` and `compareAndDelete` are atomic and do not return `true` before
 *   the write is durable (fsynced; on a replicated store, committed by a majority).
 *   If durability cannot be confirmed they throw `UnavailableError` — never `true`.
 * - Of any number of concurrent CAS calls with the same expected version, at most one
 *   returns `true`.
 * - Byte arrays are returned as stored, never aliased to caller buffers.
 * - Methods are async and safe to call concurrently.
 */
export interface VaultStore {
  /** The account's record, or undefined when it has none. */
  get(accountId: string, options?: GetOptions): Promise<VaultRecord | undefined>;

  /**
   * Writes `next` if the current version equals `expectedVersion` ({@link ABSENT} = no
   * record). Returns false (writing nothing) otherwise.
   * @throws UnavailableError if the outcome is not known to be durable.
   */
  compareAndSwap(
    accountId: string,
    expectedVersion: number,
    next: VaultRecordData,
  ): Promise<boolean>;

  /**
   * Deletes the record if its version equals `expectedVersion`. Returns false otherwise.
   * @throws UnavailableError if the outcome is not known to be durable.
   */
  compareAndDelete(accountId: string, expectedVersion: number): Promise<boolean>;

  /** Closes the store; pending calls settle first. */
  close(): Promise<void>;
}
