/**
 * An in-memory Storage for unit tests and adversarial tests of the engine.
 *
 * Browser-safe. Data is copied in and out, so callers may reuse their buffers and a test
 * that keeps a returned array cannot change what is stored by accident — only the
 * explicit test hooks ({@link MemoryStorage.tamper}, {@link MemoryStorage.raw},
 * {@link MemoryStorage.injectFault}) can.
 */
import { MissingObjectError } from '../errors.js';
import { assertListPrefix, assertObjectName, assertRange, type Storage } from './storage.js';

/** The Storage operations a fault hook sees. */
export type StorageOperation = 'put' | 'get' | 'getRange' | 'stat' | 'list' | 'delete';

/**
 * A fault hook: return (or throw) an error to make the operation fail before it touches
 * the data, or `undefined` to let it run.
 */
export type FaultHook = (op: StorageOperation, name: string) => Error | undefined;

/** A Storage that keeps every object in a Map. Never durable; for tests. */
export class MemoryStorage implements Storage {
  /** Always `memory:` followed by an instance number, for messages. */
  readonly location: string;
  private readonly objects = new Map<string, Uint8Array>();
  private fault: FaultHook | undefined;
  private static instances = 0;

  constructor() {
    MemoryStorage.instances += 1;
    this.location = `memory:${MemoryStorage.instances}`;
  }

  /**
   * Store a copy of `data`.
   * @throws TypeError on an invalid object name.
   */
  async put(name: string, data: Uint8Array): Promise<void> {
    assertObjectName(name);
    this.check('put', name);
    this.objects.set(name, data.slice());
  }

  /**
   * A copy of the object.
   * @throws MissingObjectError when no object has that name.
   * @throws TypeError on an invalid object name.
   */
  async get(name: string): Promise<Uint8Array> {
    assertObjectName(name);
    this.check('get', name);
    return this.lookup(name).slice();
  }

  /**
   * A copy of up to `length` bytes at `offset`.
   * @throws MissingObjectError when no object has that name.
   * @throws TypeError on an invalid object name; RangeError on a bad offset or length.
   */
  async getRange(name: string, offset: number, length: number): Promise<Uint8Array> {
    assertObjectName(name);
    assertRange(offset, length);
    this.check('getRange', name);
    const data = this.lookup(name);
    return data.slice(Math.min(offset, data.length), Math.min(offset + length, data.length));
  }

  /**
   * Size of an object, or `undefined`.
   * @throws TypeError on an invalid object name.
   */
  async stat(name: string): Promise<{ size: number } | undefined> {
    assertObjectName(name);
    this.check('stat', name);
    const data = this.objects.get(name);
    return data === undefined ? undefined : { size: data.length };
  }

  /**
   * Objects whose names start with `prefix`, as they were when the call started.
   * @throws TypeError on an invalid prefix.
   */
  async *list(prefix: string): AsyncIterable<{ name: string; size: number }> {
    assertListPrefix(prefix);
    this.check('list', prefix);
    const found: { name: string; size: number }[] = [];
    for (const [name, data] of this.objects) {
      if (name.startsWith(prefix)) found.push({ name, size: data.length });
    }
    yield* found;
  }

  /**
   * Delete an object; absent objects are fine.
   * @throws TypeError on an invalid object name.
   */
  async delete(name: string): Promise<void> {
    assertObjectName(name);
    this.check('delete', name);
    this.objects.delete(name);
  }

  /** Nothing to release. */
  async close(): Promise<void> {}

  /**
   * TEST HOOK: replace the stored bytes of `name` with `fn(copy of the bytes)`, to
   * simulate a store that alters data (flip a bit, truncate, append).
   * @throws MissingObjectError when no object has that name.
   */
  tamper(name: string, fn: (bytes: Uint8Array) => Uint8Array): void {
    this.objects.set(name, fn(this.lookup(name).slice()).slice());
  }

  /**
   * TEST HOOK: the live map of stored objects, to simulate a store that deletes, swaps,
   * renames or replays objects (e.g. keep an old `snapshots/…` and put it back later).
   * Writes to the map bypass name checks and copying.
   */
  raw(): Map<string, Uint8Array> {
    return this.objects;
  }

  /**
   * TEST HOOK: consult `hook` before every operation; an error it returns (or throws)
   * fails that operation, e.g. `new UnavailableError(...)` to simulate an outage.
   * Pass `undefined` to remove the hook.
   */
  injectFault(hook: FaultHook | undefined): void {
    this.fault = hook;
  }

  private check(op: StorageOperation, name: string): void {
    const error = this.fault?.(op, name);
    if (error !== undefined) throw error;
  }

  private lookup(name: string): Uint8Array {
    const data = this.objects.get(name);
    if (data === undefined) throw new MissingObjectError(name);
    return data;
  }
}
