/**
 * Choosing where an operation's jobs run: the platform's worker threads, or the calling
 * thread (in-thread.ts) for `workers: 0`, for files only this thread can read, on platforms
 * without threads, and — with one warning per process — when the threads cannot start (a
 * bundled app shipped without the worker entry). Both run workers/jobs.ts.
 */
import { UsageError } from '../../errors.js';
import type { RepoKeys } from '../repository/keys.js';
import { enginePlatform } from '../platform/current.js';
import type { EngineFiles } from '../platform/types.js';
import { InThreadPool } from './in-thread.js';
import type { EnginePool, PackFileRange, PoolOptions } from './pool-types.js';

/**
 * Start the pool of an operation.
 * @param workers the caller's `workers` option (undefined: one per core where threads
 *   exist; 0: the calling thread).
 * @param files the operation's files: threads read and write through the platform's own
 *   files only, so other files (MemoryFiles on Node) run in the calling thread.
 */
export async function startPool(
  workers: number | undefined,
  keys: RepoKeys,
  options: PoolOptions,
  files: EngineFiles,
  readPackRange?: (src: PackFileRange, object: string) => Promise<Uint8Array>,
): Promise<EnginePool> {
  const platform = enginePlatform();
  const inThread = (): EnginePool =>
    new InThreadPool(keys, options, files, platform.host, readPackRange);
  const factory = platform.workers;
  if (workers !== undefined && (!Number.isSafeInteger(workers) || workers < 0))
    throw new UsageError('workers must be a whole number, 0 or more (0: the calling thread)');
  if (!factory || workers === 0 || files !== platform.files) return inThread();
  const size = Math.max(1, workers ?? factory.defaultWorkers());
  try {
    return await factory.start(size, keys, options);
  } catch (e) {
    platform.onFallback?.(
      `backvault: worker threads could not start (${String((e as Error)?.message ?? e).split('\n')[0]}); running in the calling thread. A bundled app ships the worker entry beside its bundle (README, "Bundling"), or passes workers: 0 to say so.`,
    );
    return inThread();
  }
}
