/**
 * `prune`: take the repository's exclusive lock and remove what no snapshot needs
 * (repository/prune.ts does the work, crash-safe by ordering).
 */
import type { PruneResult, Progress, RepoAccess } from '../api.js';
import { RepoLock } from '../repository/lock.js';
import { pruneLocked } from '../repository/prune.js';
import { openRepository } from '../repository/repository.js';

/**
 * Prune unreferenced data, holding the repository's exclusive lock.
 * @throws ConflictError when a backup or another prune holds the repository's lock
 *   (nothing is deleted then), or when this prune lost its lock (stopped for longer than a
 *   lock lives): it stops before the next deletion.
 * @throws WrongKeyError, NoRepositoryError, RollbackError, CorruptBackupError,
 *   MissingObjectError (nothing is deleted then), UnavailableError.
 */
export async function prune(
  opts: RepoAccess & { onProgress?: (p: Progress) => void },
): Promise<PruneResult> {
  const started = performance.now();
  const repo = await openRepository(opts);
  const lock = await RepoLock.acquire(repo, 'prune', true);
  try {
    return await pruneLocked(opts, repo, lock, started);
  } finally {
    await lock.release();
  }
}
