/**
 * Bandwidth limits as a wrapper around any Storage (restic's `--limit-upload` and
 * `--limit-download`, in KiB/s), so that a backup does not eat a metered link.
 *
 * One {@link ByteRateLimiter} per direction is shared by every caller of the wrapped store,
 * so concurrent workers share one budget. It schedules bytes on a virtual clock with no
 * stored-up credit: a request for `n` bytes is given the next free interval of `n / rate`
 * seconds and waits until that interval has elapsed before it goes out (pay first). An
 * idle period therefore buys no burst later, and over any window the bytes sent never
 * exceed `rate × window` plus the one request in flight.
 *
 * What is metered: the bytes of object bodies, `put` (up) and `get`/`getRange` (down).
 * `stat`, `list` and `delete` carry no body and are not metered. A `get` does not know its
 * size before it answers, so it pays afterwards; a `getRange` pays for `length` first.
 *
 * The granularity is one Storage call: the adapter then sends the body as fast as the link
 * allows. With packs of a few MiB the average holds within a pack's transfer time; a
 * smoother wire would need the adapter to stream through the limiter.
 *
 * Browser-safe.
 */
import { abortableSleep } from './retry.js';
import type { Storage } from './storage.js';

/** A shared byte budget of `bytesPerSecond`. */
export class ByteRateLimiter {
  /** When the last reserved interval ends (ms, on `now`'s clock). */
  private next = 0;

  /**
   * @param bytesPerSecond - the rate; must be positive.
   * @param now - the clock in ms (default `performance.now`), injectable for tests.
   * @throws RangeError when the rate is not a positive finite number.
   */
  constructor(
    readonly bytesPerSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(bytesPerSecond > 0) || !Number.isFinite(bytesPerSecond)) {
      throw new RangeError('a bandwidth limit must be a positive number of bytes per second');
    }
  }

  /**
   * Reserve `bytes` and wait until they are paid for.
   * @throws the signal's reason when `signal` aborts while waiting.
   */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (bytes <= 0) return;
    const t = this.now();
    this.next = Math.max(t, this.next) + (bytes * 1000) / this.bytesPerSecond;
    const wait = this.next - t;
    if (wait >= 1) await abortableSleep(wait, signal);
  }
}

/** Limits of {@link withBandwidthLimit}. */
export interface BandwidthOptions {
  /** Upload limit in KiB/s (1 KiB = 1024 bytes); absent or 0 = unlimited. */
  limitUpload?: number;
  /** Download limit in KiB/s; absent or 0 = unlimited. */
  limitDownload?: number;
  /** Ends a wait for budget at once. */
  signal?: AbortSignal;
  /** The clock for the limiters (ms), injectable for tests. */
  now?: () => number;
}

/**
 * Wrap `storage` so that object bodies go up and down at no more than the given rates
 * (see the module comment). Without any limit, `storage` itself is returned.
 * @throws RangeError when a limit is negative or not a number.
 */
export function withBandwidthLimit(storage: Storage, options: BandwidthOptions): Storage {
  const limiter = (kib: number | undefined, which: string): ByteRateLimiter | undefined => {
    if (kib === undefined || kib === 0) return undefined;
    if (!(kib > 0) || !Number.isFinite(kib)) {
      throw new RangeError(`${which} must be a positive number of KiB/s`);
    }
    return new ByteRateLimiter(kib * 1024, options.now);
  };
  const up = limiter(options.limitUpload, 'limitUpload');
  const down = limiter(options.limitDownload, 'limitDownload');
  if (up === undefined && down === undefined) return storage;
  const { signal } = options;
  return {
    location: storage.location,
    async put(name, data) {
      await up?.take(data.length, signal);
      return storage.put(name, data);
    },
    async get(name) {
      const data = await storage.get(name);
      await down?.take(data.length, signal);
      return data;
    },
    async getRange(name, offset, length) {
      await down?.take(length, signal);
      return storage.getRange(name, offset, length);
    },
    stat: (name) => storage.stat(name),
    list: (prefix) => storage.list(prefix),
    delete: (name) => storage.delete(name),
    close: () => storage.close(),
    // Restore's workers read local files directly: a local store needs no download limit.
    ...(storage.localPath && down === undefined
      ? { localPath: storage.localPath.bind(storage) }
      : {}),
    ...(storage.cleanupTemp
      ? {
          cleanupTemp: (olderThanMs?: number) =>
            (storage.cleanupTemp as (ms?: number) => Promise<number>).call(storage, olderThanMs),
        }
      : {}),
  };
}
