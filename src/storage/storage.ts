/**
 * The one interface every cloud store implements (local directory, S3, memory).
 *
 * The store is untrusted: the engine authenticates everything it reads. This interface
 * only promises durability and atomicity of writes, and distinguishes "absent" from
 * "unreachable" so that the engine can tell a missing object from an outage.
 *
 * Object names are relative paths of lowercase ASCII letters, digits, `/`, `-`, `_`, `.`
 * (see {@link assertObjectName}); e.g. `config`, `data/3f/3f2a…`, `snapshots/…`.
 *
 * Retry, rate limiting and metrics are wrappers around a Storage (see `retry.ts`), not
 * flags inside each implementation.
 */
export interface Storage {
  /** A human-readable location for messages (never contains credentials). */
  readonly location: string;

  /**
   * Store `data` under `name`.
   * - Atomic: a concurrent or later reader sees either no object or all of `data`, never a part.
   * - Durable: must not resolve before the object survives a crash of this process and of
   *   the machine (fsync for files; a 200 from S3).
   * - Idempotent: writing the same bytes to the same name again succeeds.
   * - Overwrites an existing object of that name (the engine only does so with identical
   *   content, except for explicitly mutable names it documents).
   * @throws UnavailableError when the store cannot be reached or fails transiently.
   */
  put(name: string, data: Uint8Array): Promise<void>;

  /**
   * Read a whole object.
   * @throws MissingObjectError when no object has that name.
   * @throws UnavailableError when the store cannot be reached or fails transiently.
   */
  get(name: string): Promise<Uint8Array>;

  /**
   * Read `length` bytes at `offset`. Returns fewer bytes only when the object is shorter
   * (the engine treats that as corruption).
   * @throws MissingObjectError when no object has that name.
   * @throws UnavailableError when the store cannot be reached or fails transiently.
   */
  getRange(name: string, offset: number, length: number): Promise<Uint8Array>;

  /**
   * Size of an object, or `undefined` when it does not exist.
   * @throws UnavailableError when the store cannot be reached or fails transiently.
   */
  stat(name: string): Promise<{ size: number } | undefined>;

  /**
   * Every object whose name starts with `prefix` (e.g. `data/`), in no particular order.
   * Objects written before the call started are listed; concurrent writes may or may not be.
   * @throws UnavailableError when the store cannot be reached or fails transiently.
   */
  list(prefix: string): AsyncIterable<{ name: string; size: number }>;

  /**
   * Delete an object. Idempotent: deleting an absent object succeeds.
   * @throws UnavailableError when the store cannot be reached or fails transiently.
   */
  delete(name: string): Promise<void>;

  /** Release connections and handles. The instance must not be used afterwards. */
  close(): Promise<void>;
}

const NAME = /^[a-z0-9_.-]+(\/[a-z0-9_.-]+)*$/;

/**
 * Reject object names that could escape a directory or confuse a store.
 * @throws UsageError-like TypeError on a bad name (a programming error, not user input).
 */
export function assertObjectName(name: string): void {
  if (
    !NAME.test(name) ||
    name.split('/').some((p) => p === '.' || p === '..') ||
    name.length > 512
  ) {
    throw new TypeError(`invalid storage object name: ${JSON.stringify(name)}`);
  }
}
