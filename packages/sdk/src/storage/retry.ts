/**
 * Retries as a wrapper around any Storage, so adapters stay simple and every adapter
 * retries the same way.
 *
 * Retry by a deadline, not a count: an operation that fails transiently is tried again
 * with capped, jittered exponential backoff until `retryFor` milliseconds have passed
 * since its first failure (a phone loses its network for minutes, not for three seconds).
 * What is transient is decided in one place, {@link classifyStoreFailure}: refused
 * credentials, a missing bucket, a full disk, a read-only or forbidden path fail at once
 * with their own error.
 *
 * Retrying is safe because of the Storage contract: `put` is atomic and idempotent (a put
 * retried after its response was lost writes the same bytes under the same name again;
 * the engine only overwrites mutable names it documents, with a fresh whole object), and
 * `delete` is idempotent (deleting what a lost response already deleted succeeds). Reads,
 * `stat` and `list` change nothing; a `list` is resumed without repeating a name.
 *
 * The wrapper tells its caller about an outage through `onEvent`: `unreachable` before
 * every wait (with the reason, when the next try is and when it will give up), and
 * `reachable` once the first operation succeeds again. An `AbortSignal` stops the
 * operation: every wait ends at once and the waiting operations reject with
 * `signal.reason`; after it no new request starts (same rejection), except `delete`, which
 * gets one try so that the aborted operation can still remove its lock.
 *
 * Browser-safe.
 */
import { UnavailableError } from '../errors.js';
import { classifyStoreFailure } from './failure.js';
import type { Storage } from './storage.js';

/** Default `retryFor` of {@link withRetry}: one minute. */
export const DEFAULT_RETRY_FOR_MS = 60_000;

/** What the retry wrapper tells its caller about the store's reachability. */
export type StoreEvent =
  | {
      type: 'unreachable';
      /** The operation that failed (`put`, `get`, …). */
      operation: string;
      /** A short tag for messages: `ECONNREFUSED`, `SlowDown, HTTP 503`, `timeout`. */
      reason: string;
      /** How many tries of this operation failed so far. */
      attempt: number;
      /** Wait before the next try, in ms. */
      retryInMs: number;
      /** When the next try starts (ms since the epoch). */
      nextTryAt: number;
      /** When this operation gives up (ms since the epoch). */
      giveUpAt: number;
      /** When the outage started: the first failure since the store last answered. */
      since: number;
      /** The failure (an UnavailableError with its cause). */
      error: unknown;
    }
  | {
      type: 'reachable';
      /** How long the store was unreachable, in ms. */
      downForMs: number;
    };

/** How {@link withRetry} retries. */
export interface RetryOptions {
  /**
   * How long to keep trying an operation after its first failure, in ms (default
   * {@link DEFAULT_RETRY_FOR_MS}); 0 makes one try only.
   */
  retryFor?: number;
  /** An extra cap on tries per operation, the first included (default: none). */
  attempts?: number;
  /** Upper bound of the first backoff in ms; doubles on every retry (default 200). */
  baseDelayMs?: number;
  /** Cap on any single backoff in ms (default 15 000). */
  maxDelayMs?: number;
  /** Stops the operation: ends every wait at once, and starts no new request but a delete (see the module comment). */
  signal?: AbortSignal;
  /** Told when the store becomes unreachable (before every wait) and reachable again. */
  onEvent?: (event: StoreEvent) => void;
  /** Waits `ms` milliseconds; injectable so tests need not wait (default: setTimeout). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** A number in [0, 1) for the jitter; injectable for deterministic tests (default Math.random). */
  random?: () => number;
  /** The clock (ms since the epoch); injectable for tests (default Date.now). */
  now?: () => number;
  /** Told about every retry before its backoff, e.g. to log or count it. */
  onRetry?: (info: { operation: string; attempt: number; delayMs: number; error: unknown }) => void;
}

/** The store a retry wrapper wraps, so that wrapping it again replaces its policy. */
const INNER = Symbol('backvault.retry.inner');

/** Sleep that ends early, rejecting with the signal's reason, when `signal` aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The store under a retry wrapper, or `storage` itself when it is not one. */
export function withoutRetry(storage: Storage): Storage {
  return (storage as { [INNER]?: Storage })[INNER] ?? storage;
}

/**
 * Wrap `storage` so that transient failures are retried for up to `retryFor` ms with
 * exponential backoff and full jitter (each wait is uniform in [0, min(max, base·2^n))),
 * which spreads the retries of many clients after an outage; the last wait is cut so the
 * last try happens at the deadline. Then the last UnavailableError is thrown, saying how
 * long it tried. Failures that cannot succeed are thrown at once (see `failure.ts`).
 * `list` resumes after a failure without yielding any name twice; `close` is passed
 * through once. Wrapping a store returned by `withRetry` replaces its policy instead of
 * nesting two.
 * @throws RangeError when `retryFor` or a delay is negative or `attempts` is not an
 *   integer ≥ 1.
 */
export function withRetry(storage: Storage, options: RetryOptions = {}): Storage {
  const inner = withoutRetry(storage);
  const retryFor = options.retryFor ?? DEFAULT_RETRY_FOR_MS;
  const attempts = options.attempts ?? Infinity;
  const baseDelayMs = options.baseDelayMs ?? 200;
  const maxDelayMs = options.maxDelayMs ?? 15_000;
  const sleep = options.sleep ?? abortableSleep;
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const signal = options.signal;
  if (attempts !== Infinity && (!Number.isInteger(attempts) || attempts < 1)) {
    throw new RangeError('retry attempts must be an integer >= 1');
  }
  if (!(retryFor >= 0)) throw new RangeError('retryFor must be >= 0');
  if (!(baseDelayMs >= 0) || !(maxDelayMs >= 0)) {
    throw new RangeError('retry delays must be >= 0');
  }

  /** Start of the current outage: the first failure since the store last answered. */
  let outageSince: number | undefined;

  /**
   * The store answered a try started at `startedAt`. Only a try started once the outage was
   * seen ends it: the answer to a request sent before (a response already on its way when
   * the server went down) says nothing about the store now, and ended each outage at once
   * with a "reachable" a few ms long, the real outage then starting again.
   */
  const answered = (startedAt: number): void => {
    if (outageSince === undefined || startedAt < outageSince) return;
    const downForMs = now() - outageSince;
    outageSince = undefined;
    options.onEvent?.({ type: 'reachable', downForMs });
  };

  /**
   * After failure number `attempt` of an operation first failed at `firstFailure`: wait
   * and return, or throw what the caller should see.
   */
  async function afterFailure(
    operation: string,
    attempt: number,
    firstFailure: number,
    error: unknown,
  ): Promise<void> {
    // A request the abort cancelled (or any failure after it): the abort is the answer.
    if (signal?.aborted && operation !== 'delete') throw signal.reason;
    const verdict = classifyStoreFailure(error, inner.location);
    if (!verdict.retry) throw verdict.error;
    const t = now();
    const giveUpAt = firstFailure + retryFor;
    if (signal?.aborted || attempt >= attempts || t >= giveUpAt) {
      if (retryFor === 0 || attempt >= attempts) throw error;
      const message = error instanceof Error ? error.message : String(error);
      throw new UnavailableError(
        `${message} (still unreachable after retrying for ${formatWait(t - firstFailure)})`,
        { cause: error },
      );
    }
    outageSince ??= firstFailure;
    const backoff = Math.floor(random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)));
    const delayMs = Math.max(0, Math.min(backoff, giveUpAt - t));
    options.onRetry?.({ operation, attempt, delayMs, error });
    options.onEvent?.({
      type: 'unreachable',
      operation,
      reason: verdict.reason,
      attempt,
      retryInMs: delayMs,
      nextTryAt: t + delayMs,
      giveUpAt,
      since: outageSince,
      error,
    });
    await sleep(delayMs, signal);
  }

  async function run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    let firstFailure: number | undefined;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted && operation !== 'delete') throw signal.reason;
      const startedAt = now();
      try {
        const result = await fn();
        answered(startedAt);
        return result;
      } catch (error) {
        firstFailure ??= now();
        await afterFailure(operation, attempt, firstFailure, error);
      }
    }
  }

  async function* list(prefix: string): AsyncIterable<{ name: string; size: number }> {
    // A listing that fails half-way is started again; names already handed out are
    // skipped so the caller sees each object once, as the contract promises.
    const seen = new Set<string>();
    let firstFailure: number | undefined;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw signal.reason;
      const startedAt = now();
      try {
        for await (const entry of inner.list(prefix)) {
          answered(startedAt);
          if (seen.has(entry.name)) continue;
          seen.add(entry.name);
          yield entry;
        }
        answered(startedAt);
        return;
      } catch (error) {
        firstFailure ??= now();
        await afterFailure('list', attempt, firstFailure, error);
      }
    }
  }

  const wrapped: Storage & { [INNER]: Storage } = {
    [INNER]: inner,
    location: inner.location,
    put: (name, data) => run('put', () => inner.put(name, data)),
    get: (name) => run('get', () => inner.get(name)),
    getRange: (name, offset, length) => run('getRange', () => inner.getRange(name, offset, length)),
    stat: (name) => run('stat', () => inner.stat(name)),
    list,
    delete: (name) => run('delete', () => inner.delete(name)),
    close: () => inner.close(),
    // A local file is read directly: its failures are not transient network errors.
    ...(inner.localPath ? { localPath: inner.localPath.bind(inner) } : {}),
    ...(inner.cleanupTemp
      ? {
          cleanupTemp: (olderThanMs?: number) =>
            run('cleanupTemp', () =>
              (inner.cleanupTemp as (ms?: number) => Promise<number>).call(inner, olderThanMs),
            ),
        }
      : {}),
  };
  return wrapped;
}

/** `850 ms`, `42 s`, `15 min`: a wait for messages. */
export function formatWait(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 2 * 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}
