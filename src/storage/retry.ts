/**
 * Retries as a wrapper around any Storage, so adapters stay simple and every adapter
 * retries the same way.
 *
 * Only {@link UnavailableError} is retried: it is the one error that says "the store
 * failed transiently". A MissingObjectError, a usage error or an integrity error would
 * fail the same way again. Retrying `put` and `delete` is safe because the Storage
 * contract makes them idempotent.
 *
 * Browser-safe.
 */
import { UnavailableError } from '../errors.js';
import type { Storage } from './storage.js';

/** How {@link withRetry} retries. */
export interface RetryOptions {
  /** Total tries per operation, the first included (default 5; 1 disables retries). */
  attempts?: number;
  /** Upper bound of the first backoff in ms; doubles on every retry (default 200). */
  baseDelayMs?: number;
  /** Cap on any single backoff in ms (default 5000). */
  maxDelayMs?: number;
  /** Waits `ms` milliseconds; injectable so tests need not wait (default: setTimeout). */
  sleep?: (ms: number) => Promise<void>;
  /** A number in [0, 1) for the jitter; injectable for deterministic tests (default Math.random). */
  random?: () => number;
  /** Told about every retry before its backoff, e.g. to log or count it. */
  onRetry?: (info: { operation: string; attempt: number; delayMs: number; error: unknown }) => void;
}

const defaultSleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

/**
 * Wrap `storage` so that operations failing with UnavailableError are retried with
 * exponential backoff and full jitter (each wait is uniform in [0, min(max, base·2^n))),
 * which spreads the retries of many clients after an outage. After the last attempt
 * the last UnavailableError is thrown. `list` resumes after a failure without yielding
 * any name twice. `close` is passed through once.
 * @throws RangeError when `attempts` is not an integer ≥ 1 or a delay is negative.
 */
export function withRetry(storage: Storage, options: RetryOptions = {}): Storage {
  const attempts = options.attempts ?? 5;
  const baseDelayMs = options.baseDelayMs ?? 200;
  const maxDelayMs = options.maxDelayMs ?? 5000;
  const sleep = options.sleep ?? defaultSleep;
  const random = options.random ?? Math.random;
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new RangeError('retry attempts must be an integer >= 1');
  }
  if (!(baseDelayMs >= 0) || !(maxDelayMs >= 0)) {
    throw new RangeError('retry delays must be >= 0');
  }

  /** Backoff before retry number `retry` (1-based). */
  const backoff = (retry: number): number =>
    Math.floor(random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (retry - 1)));

  async function pause(operation: string, attempt: number, error: unknown): Promise<void> {
    const delayMs = backoff(attempt);
    options.onRetry?.({ operation, attempt, delayMs, error });
    await sleep(delayMs);
  }

  async function run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        if (!(error instanceof UnavailableError) || attempt >= attempts) throw error;
        await pause(operation, attempt, error);
      }
    }
  }

  async function* list(prefix: string): AsyncIterable<{ name: string; size: number }> {
    // A listing that fails half-way is started again; names already handed out are
    // skipped so the caller sees each object once, as the contract promises.
    const seen = new Set<string>();
    for (let attempt = 1; ; attempt++) {
      try {
        for await (const entry of storage.list(prefix)) {
          if (seen.has(entry.name)) continue;
          seen.add(entry.name);
          yield entry;
        }
        return;
      } catch (error) {
        if (!(error instanceof UnavailableError) || attempt >= attempts) throw error;
        await pause('list', attempt, error);
      }
    }
  }

  return {
    location: storage.location,
    put: (name, data) => run('put', () => storage.put(name, data)),
    get: (name) => run('get', () => storage.get(name)),
    getRange: (name, offset, length) =>
      run('getRange', () => storage.getRange(name, offset, length)),
    stat: (name) => run('stat', () => storage.stat(name)),
    list,
    delete: (name) => run('delete', () => storage.delete(name)),
    close: () => storage.close(),
    // A local file is read directly: its failures are not transient network errors.
    ...(storage.localPath ? { localPath: storage.localPath.bind(storage) } : {}),
    ...(storage.cleanupTemp
      ? {
          cleanupTemp: (olderThanMs?: number) =>
            run('cleanupTemp', () =>
              (storage.cleanupTemp as (ms?: number) => Promise<number>)(olderThanMs),
            ),
        }
      : {}),
  };
}
