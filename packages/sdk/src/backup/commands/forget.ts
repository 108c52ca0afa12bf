/**
 * `forget`: delete the snapshot objects a retention policy does not keep, optionally
 * followed by `prune` to free their data. SPEC.md §14 "Forget".
 *
 * Safe against concurrent writers: forget holds the repository's exclusive lock from before
 * it reads the chain until after its last deletion (and its prune), so a backup or prune of
 * the same repository either finished before (its snapshot is part of the plan) or fails
 * with CONFLICT without committing anything, and vice versa.
 *
 * Crash-safe by ordering: the policy is decided on the whole verified chain first, then the
 * snapshots to remove are deleted one by one, oldest first; the head is never among them.
 * A crash after any deletion leaves a chain whose stored snapshots are all valid and whose
 * missing older ones are a gap (SPEC.md §11), which blocks nothing; running forget again
 * finishes the job. Deleting a snapshot object only makes its data unreferenced: prune is
 * what frees it, with its own crash guarantees. With `prune`, prune runs even when nothing
 * was left to delete, so the same command run again after a crash finishes the job.
 */
import { InternalError, throwIfAborted } from '../../errors.js';
import { PREFIX } from '../../format/index.js';
import type { ForgetOptions, ForgetResult, ForgetSnapshot } from '../api.js';
import { RepoLock } from '../repository/lock.js';
import { pruneLocked } from '../repository/prune.js';
import { snapshotInfo } from './snapshots.js';
import { chainNoteWarnings, loadChainNotes, type LoadedSnapshot } from '../repository/snapshots.js';
import { openRepository, type Repo } from '../repository/repository.js';
import {
  applyRetentionPolicy,
  defaultTimeZone,
  validateRetentionPolicy,
  type PolicySnapshot,
} from './retention.js';

export {
  HEAD_REASON,
  MAX_KEEP,
  applyRetentionPolicy,
  defaultTimeZone,
  describeRetentionPolicy,
  formatDuration,
  parseDuration,
  validateRetentionPolicy,
  type CalendarDuration,
  type PolicyDecision,
  type PolicyOptions,
  type PolicyPlan,
  type PolicySnapshot,
  type RetentionPolicy,
} from './retention.js';

/** Reason for keeping a snapshot the policy would remove, whose previous is damaged. */
export const DAMAGED_PREV_REASON =
  'its previous snapshot is damaged (kept so that the damaged one stays provably older)';

interface ChainEntry extends PolicySnapshot {
  loaded: LoadedSnapshot;
}

function info(s: LoadedSnapshot, reasons: string[]): ForgetSnapshot {
  return { ...snapshotInfo(s), reasons };
}

/**
 * Apply a retention policy to a repository: delete the snapshots it does not keep, oldest
 * first, never the newest (the head), and with `prune` free their data.
 *
 * The policy and time zone are checked before the store is touched. A dry run reads the
 * chain without taking a lock and deletes nothing: it returns the plan a real run would
 * follow at this moment.
 *
 * @throws UsageError when the policy is malformed or keeps nothing, or the time zone is
 *   unknown (nothing is read or deleted then).
 * @throws ConflictError when a backup, prune or forget holds the repository's lock (nothing
 *   is deleted then), or when this forget lost its lock (it stops before the next deletion).
 * @throws WrongKeyError, NoRepositoryError, RollbackError, CorruptBackupError,
 *   MissingObjectError (nothing is deleted then; with `prune`, a damaged snapshot object is
 *   CORRUPT before anything is deleted, as prune would refuse it), UnavailableError (the
 *   deletions before it stand: a consistent, shorter chain).
 */
export async function forget(opts: ForgetOptions): Promise<ForgetResult> {
  const started = performance.now();
  const policy = validateRetentionPolicy(opts.policy);
  const timeZone = opts.timeZone ?? defaultTimeZone();
  // Validates the zone before the store is touched.
  applyRetentionPolicy([], policy, { timeZone });
  const repo = await openRepository(opts);
  if (opts.dryRun) return await plan(opts, repo, policy, timeZone, started, undefined);
  const lock = await RepoLock.acquire(repo, 'forget', true);
  try {
    return await plan(opts, repo, policy, timeZone, started, lock);
  } finally {
    await lock.release();
  }
}

async function plan(
  opts: ForgetOptions,
  repo: Repo,
  policy: ForgetResult['policy'],
  timeZone: string,
  started: number,
  lock: RepoLock | undefined,
): Promise<ForgetResult> {
  // With prune, every damaged snapshot is CORRUPT now, before anything is deleted (prune
  // would refuse it after the deletions otherwise).
  const { chain, notes } = await loadChainNotes(repo, opts.prune === true);
  const entries: ChainEntry[] = chain.map((s) => ({
    id: s.id,
    seq: s.snap.seq,
    timeMs: s.snap.timeMs,
    loaded: s,
  }));
  const decided = applyRetentionPolicy(entries, policy, {
    timeZone,
    ...(opts.now !== undefined ? { now: opts.now } : {}),
  });
  const bySeq = (a: ForgetSnapshot, b: ForgetSnapshot): number => a.seq - b.seq;
  const keep = decided.keep.map((d) => info(d.snapshot.loaded, d.reasons));
  const remove: ForgetSnapshot[] = [];
  // A damaged snapshot object is tolerated only while a verified snapshot names it as its
  // previous (that proves it older than the head, SPEC.md §11). Deleting that snapshot would
  // turn the damaged one into a possible head and every command into CORRUPT: keep it.
  const damaged = new Set(notes.damaged.map((d) => d.object.slice(PREFIX.snapshots.length)));
  for (const s of decided.remove) {
    const i = info(s.loaded, []);
    if (i.prev !== null && damaged.has(i.prev)) {
      keep.push({ ...i, reasons: [DAMAGED_PREV_REASON] });
    } else remove.push(i);
  }
  keep.sort(bySeq);
  remove.sort(bySeq);
  const head = chain[chain.length - 1];
  if (head && remove.some((r) => r.id === head.id)) {
    // applyRetentionPolicy always keeps the head; never act on a plan that does not.
    throw new InternalError('forget planned to remove the newest snapshot');
  }

  let removed = 0;
  if (lock) {
    for (const s of remove) {
      // A forget stopped long enough to lose its lock must not delete under a new holder.
      await lock.assertHeld();
      // A delete is still sent after an abort (for the lock's removal): check before each.
      throwIfAborted(opts.signal);
      await repo.storage.delete(PREFIX.snapshots + s.id);
      removed += 1;
      opts.onProgress?.({
        phase: 'forget',
        bytesDone: 0,
        filesDone: removed,
        filesTotal: remove.length,
      });
    }
  }
  const pruned =
    lock && opts.prune ? await pruneLocked(opts, repo, lock, performance.now()) : undefined;
  return {
    policy,
    timeZone,
    dryRun: lock === undefined,
    keep,
    remove,
    removed,
    ...(pruned ? { prune: pruned } : {}),
    warnings: chainNoteWarnings(notes),
    seconds: (performance.now() - started) / 1000,
  };
}
