/**
 * The one interface every cloud store implements (local directory, S3, memory).
 *
 * The store is untrusted: the engine authenticates everything it reads. This interface
 * only promises durability and atomicity of writes, and distinguishes "absent" from
 * "unreachable" so that the engine can tell a missing object from an outage.
 *
 * Object names are relative paths of lowercase ASCII letters, digits, `/`, `-`, `_`, `.`
 * (see `assertObjectName` (backvault/storage)); e.g. `config`, `data/3f/3f2a…`, `snapshots/…`.
 * A name must never also be a "directory" of another name (`a` and `a/b` cannot both
 * exist): a local directory cannot hold both, so the engine never uses such names.
 *
 * Every method validates its arguments first and rejects with a TypeError or RangeError
 * on a bad name, prefix or range: those are programming errors, not store failures.
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
   * (the engine treats that as corruption): an empty array when `offset` is at or beyond
   * the end. Reads only the range, not the whole object.
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
   * Every object whose name starts with `prefix` (e.g. `data/`; `''` for all), in no
   * particular order, each once. A plain string prefix: `data` also matches `database`.
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

  /**
   * Optional. When object `name` is a plain file on this machine, its path, so that a reader
   * that opens files itself (restore's worker threads) can read ranges without copying them
   * through this interface and across threads. Such a reader keeps `getRange`'s contract:
   * no file is a missing object, a short read is a truncated object. Stores that are not
   * local files do not implement it.
   * @throws TypeError on an invalid object name.
   */
  localPath?(name: string): string;

  /**
   * Optional. Remove what interrupted writes left behind (temporary files of a local
   * directory, unfinished multipart uploads of S3) that are older than `olderThanMs`, so
   * writes in progress are never touched. Never removes an object.
   * @returns how many leftovers were removed.
   * @throws UnavailableError when the store cannot be reached.
   */
  cleanupTemp?(olderThanMs?: number): Promise<number>;

  /**
   * Optional. A view of this store (same objects, same connections) whose requests are
   * cancelled when `signal` aborts, rejecting with `signal.reason`: an S3 request in flight
   * is aborted, a local read stops between chunks. The engine uses it for an operation's
   * `signal` (see `network.ts`), so that an abort stops within a second even while a large
   * object is on the wire. Closing the view closes this store.
   */
  withSignal?(signal: AbortSignal): Storage;
}

/**
 * {@link Storage.withSignal} for a store whose requests consult `this.signal` (the Node
 * adapters, LocalStorage and S3Storage, each with a `private signal` field): a view whose
 * prototype is `store` — so it shares its state, client and connections, and closing it
 * closes `store` — with its own `signal`. Not part of the public API.
 */
export function signalView<T extends Storage>(store: T, signal: AbortSignal): T {
  const view = Object.create(store) as T;
  // Defined, not assigned: the view's own property, whatever `store` holds.
  Object.defineProperty(view, 'signal', { value: signal, enumerable: true });
  return view;
}

const NAME = /^[a-z0-9_.-]+(\/[a-z0-9_.-]+)*$/;

/**
 * Reject object names that could escape a directory or confuse a store.
 * @throws UsageError-like TypeError on a bad name (a programming error, not user input).
 */
export function assertObjectName(name: string): void {
  if (!isObjectName(name)) {
    throw new TypeError(`invalid storage object name: ${JSON.stringify(name)}`);
  }
}

/**
 * Whether `name` is a valid object name (what listings skip otherwise: temporary files,
 * foreign files in a shared directory or bucket).
 */
export function isObjectName(name: string): boolean {
  return (
    NAME.test(name) && !name.split('/').some((p) => p === '.' || p === '..') && name.length <= 512
  );
}

/**
 * Reject a `list` prefix that is not `''` or the start of a valid object name (a trailing
 * `/` is allowed: `data/`).
 * @throws TypeError on a bad prefix (a programming error).
 */
export function assertListPrefix(prefix: string): void {
  if (prefix === '') return;
  assertObjectName(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}

/**
 * Reject a `getRange` offset or length that is not a non-negative safe integer.
 * @throws RangeError on a bad offset or length (a programming error).
 */
export function assertRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new RangeError(`invalid range offset: ${offset}`);
  }
  if (!Number.isSafeInteger(length) || length < 0 || !Number.isSafeInteger(offset + length)) {
    throw new RangeError(`invalid range length: ${length}`);
  }
}
