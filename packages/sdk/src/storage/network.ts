/**
 * A phone's network: the wrappers that let a backup ride out outages, keep to a bandwidth
 * budget and pause, composed in one place for the CLI and the SDK.
 *
 *   withRetry( withGate( withBandwidthLimit( store ) ) )
 *
 * Retry is outermost so every try passes the gate again (a paused backup's retries wait
 * too) and pays for its bytes again (they are sent again). The gate sits before the
 * limiter, so a paused request holds no bandwidth.
 *
 * Browser-safe.
 */
import { UsageError, throwIfAborted } from '../errors.js';
import { BackupControl, withGate } from './gate.js';
import { withRetry, withoutRetry, type StoreEvent } from './retry.js';
import type { Storage } from './storage.js';
import { withBandwidthLimit } from './throttle.js';

/** Default `retryFor` of a backup: a phone loses its network for minutes. */
export const BACKUP_RETRY_FOR_MS = 15 * 60_000;
/** Default `retryFor` of interactive operations (restore, check, snapshots, …). */
export const INTERACTIVE_RETRY_FOR_MS = 60_000;

/** The network options of every engine operation (SDK) and of the CLI's flags. */
export interface NetworkOptions {
  /**
   * How long to keep retrying an unreachable store: ms, or a duration such as `30s`,
   * `15m`, `1h`, `1h30m`; 0 = no retry. Default: 15 min for a backup, 1 min for other
   * operations, when any network option is given; otherwise the store is used as given
   * (`openStorage`'s S3 store retries for 1 min).
   */
  retryFor?: number | string;
  /**
   * Stops the operation: waits (for the store, the gate, the bandwidth budget) end at once,
   * no new storage request starts but a delete (its lock's removal), requests in flight are
   * cancelled where the store can ({@link Storage.withSignal}: S3, local reads), and the
   * operation rejects with `signal.reason`.
   */
  signal?: AbortSignal;
  /** Upload limit in KiB/s (restic's `--limit-upload`); 0 or absent = none. */
  limitUpload?: number;
  /** Download limit in KiB/s (restic's `--limit-download`); 0 or absent = none. */
  limitDownload?: number;
  /** Pause and resume the operation between storage requests (see {@link BackupControl}). */
  control?: BackupControl;
  /** Told when the store becomes unreachable (before every wait) and reachable again. */
  onStoreEvent?: (event: StoreEvent) => void;
}

/** What the progress callback says about the store while it is not simply working. */
export type StoreStatus =
  | {
      state: 'unreachable';
      /** A short tag: `ECONNREFUSED`, `SlowDown, HTTP 503`, `timeout`. */
      reason: string;
      /** When the next try starts (ms since the epoch). */
      nextTryAt: number;
      /** When the operation gives up (ms since the epoch). */
      giveUpAt: number;
      /** When the outage started (ms since the epoch). */
      since: number;
    }
  | { state: 'paused' };

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parse a retry duration: `0`, or one or more `<number><unit>` with unit `ms`, `s`, `m`,
 * `h` (`30s`, `15m`, `1h30m`). At most 24 h.
 * @param name - how messages name the value (the SDK's `retryFor`; the CLI passes its flag).
 * @throws UsageError on anything else.
 */
export function parseRetryFor(text: string, name = 'retryFor'): number {
  const t = text.trim();
  if (t === '0') return 0;
  const parts = /^(?:\d{1,9}(?:ms|s|m|h))+$/.test(t) ? t.match(/\d+(?:ms|s|m|h)/g) : null;
  if (!parts) {
    throw new UsageError(
      `invalid ${name} duration "${text.slice(0, 32)}"`,
      'Give a duration such as 30s, 15m, 1h or 1h30m; 0 disables retries.',
    );
  }
  let ms = 0;
  for (const p of parts) {
    const [, n, unit] = /^(\d+)(ms|s|m|h)$/.exec(p) ?? [];
    ms += Number(n) * (UNIT_MS[unit ?? 's'] ?? 1000);
  }
  if (ms > 24 * 3_600_000) throw new UsageError(`${name} is at most 24h`);
  return ms;
}

/**
 * `retryFor` in ms from a number of ms or a duration string.
 * @param name - how messages name the value (`retryFor`, or the SDK's `retryLock`).
 * @throws UsageError on a malformed duration or a negative or non-finite number.
 */
export function retryForMs(value: number | string, name = 'retryFor'): number {
  if (typeof value === 'string') return parseRetryFor(value, name);
  if (!Number.isFinite(value) || value < 0) {
    throw new UsageError(`${name} must be a non-negative number of milliseconds`);
  }
  return value;
}

/**
 * Parse a `--limit-upload` / `--limit-download` value: a positive number of KiB/s.
 * @throws UsageError otherwise.
 */
export function parseRateLimit(flag: string, text: string): number {
  const n = Number(text.trim());
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !(n > 0)) {
    throw new UsageError(
      `invalid ${flag} "${text.slice(0, 32)}"`,
      `Give the limit in KiB/s, e.g. ${flag} 2048 for 2 MiB/s.`,
    );
  }
  return n;
}

/** Whether any network option is set (otherwise the SDK leaves the store as given). */
export function hasNetworkOptions(o: NetworkOptions): boolean {
  return (
    o.retryFor !== undefined ||
    o.signal !== undefined ||
    o.limitUpload !== undefined ||
    o.limitDownload !== undefined ||
    o.control !== undefined ||
    o.onStoreEvent !== undefined
  );
}

/**
 * Wrap `storage` in the retry, gate and bandwidth wrappers that `options` ask for (see
 * the module comment). A store that already retries (from `openStorage`) gets the new
 * retry policy instead of a second one.
 * @throws UsageError on a malformed `retryFor` or limit.
 */
export function withNetwork(
  storage: Storage,
  options: NetworkOptions,
  defaultRetryForMs: number = INTERACTIVE_RETRY_FOR_MS,
): Storage {
  const retryFor =
    options.retryFor === undefined ? defaultRetryForMs : retryForMs(options.retryFor);
  let s = withoutRetry(storage);
  // Requests already in flight are cancelled too where the store can (S3, local reads).
  if (options.signal && s.withSignal) s = s.withSignal(options.signal);
  try {
    s = withBandwidthLimit(s, {
      ...(options.limitUpload !== undefined ? { limitUpload: options.limitUpload } : {}),
      ...(options.limitDownload !== undefined ? { limitDownload: options.limitDownload } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  if (options.control) s = withGate(s, options.control, options.signal);
  return withRetry(s, {
    retryFor,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onStoreEvent ? { onEvent: options.onStoreEvent } : {}),
  });
}

/** The least a progress report has, for {@link networked}. */
export interface ProgressLike {
  phase: string;
  bytesDone: number;
  filesDone: number;
  store?: StoreStatus;
}

/**
 * The SDK's side of the network options: `fn` (an engine operation taking a store and an
 * optional progress callback) gets its store wrapped by {@link withNetwork}, and its
 * progress callback also hears about the store: while it is unreachable or paused, every
 * report carries `store`, and one report is sent at each change. After an abort the
 * operation rejects with `signal.reason`. Without any network option `fn` runs unchanged.
 */
export function networked<O extends NetworkOptions & { storage: Storage }, R>(
  fn: (opts: O) => Promise<R>,
  phase: string,
  defaultRetryForMs: number,
): (opts: O) => Promise<R> {
  type P = ProgressLike;
  return async (opts: O): Promise<R> => {
    // From JavaScript anything can arrive: say what was expected, not "cannot read 'signal'".
    if (typeof opts !== 'object' || opts === null) {
      throw new UsageError(
        `${phase === 'scan' ? 'listSnapshots' : phase}() takes an options object`,
      );
    }
    if (typeof opts.storage !== 'object' || opts.storage === null) {
      throw new UsageError(
        `${phase === 'scan' ? 'listSnapshots' : phase}() needs \`storage\`: the store (a Storage)`,
      );
    }
    // Aborted before it started: nothing is read or written.
    throwIfAborted(opts.signal);
    if (!hasNetworkOptions(opts)) return fn(opts);
    const report = (opts as { onProgress?: (p: P) => void }).onProgress;
    let last: P = { phase, bytesDone: 0, filesDone: 0 };
    let store: StoreStatus | undefined;
    const emit = (): void => {
      if (!report) return;
      const { store: _old, ...rest } = last;
      void _old;
      report(store ? { ...rest, store } : rest);
    };
    const onStoreEvent = (e: StoreEvent): void => {
      store =
        e.type === 'unreachable'
          ? {
              state: 'unreachable',
              reason: e.reason,
              nextTryAt: e.nextTryAt,
              giveUpAt: e.giveUpAt,
              since: e.since,
            }
          : opts.control?.paused
            ? { state: 'paused' }
            : undefined;
      emit();
      opts.onStoreEvent?.(e);
    };
    const unsubscribe = opts.control?.onChange((paused) => {
      if (paused) store = { state: 'paused' };
      else if (store?.state === 'paused') store = undefined;
      emit();
    });
    const storage = withNetwork(opts.storage, { ...opts, onStoreEvent }, defaultRetryForMs);
    try {
      return await fn({
        ...opts,
        storage,
        ...(report
          ? {
              onProgress: (p: P) => {
                last = p;
                emit();
              },
            }
          : {}),
      });
    } catch (e) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw e;
    } finally {
      unsubscribe?.();
    }
  };
}
