/**
 * `restore`: recover what killed restores to the same target left, check the target,
 * open the repository, verify the chain, pick the snapshot, and run the restorer (which
 * writes beside the target and moves the result into place).
 */

import {
  BackvaultError,
  CorruptBackupError,
  DiskFullError,
  HINTS,
  MissingObjectError,
  NotFoundError,
  PermissionDeniedError,
  ReadOnlyError,
  TargetNotEmptyError,
  UsageError,
} from '../../errors.js';
import { PREFIX, toHex } from '../../format/index.js';
import type { CheckProblem, RestoreOptions, RestoreResult } from '../api.js';
import {
  READER_ATTEMPTS,
  damagedIndexWarning,
  indexGeneration,
  loadIndex,
  loadIndexSettled,
  type BlobIndex,
} from '../repository/indexes.js';
import { enginePlatform, filesFor } from '../platform/current.js';
import type { TargetFiles } from '../platform/types.js';
import { listPacks, openRepository, requireRollbackChoice } from '../repository/repository.js';
import { chainNoteWarnings, loadChainNotes, type LoadedSnapshot } from '../repository/snapshots.js';

import { codeOf } from '../restorer/merge.js';
import {
  RepositoryChangedError,
  recoverInterrupted,
  restoreSnapshot,
} from '../restorer/restorer.js';
import type { EnginePool } from '../workers/pool-types.js';
import { startPool } from '../workers/start.js';

/** Choose a snapshot by id or unique prefix (default: the head). */
export function pickSnapshot(
  chain: readonly LoadedSnapshot[],
  wanted: string | undefined,
  damaged: readonly CheckProblem[] = [],
): LoadedSnapshot {
  if (chain.length === 0)
    throw new NotFoundError('the repository has no snapshots yet', HINTS.noSnapshots);
  if (wanted === undefined) return chain[chain.length - 1] as LoadedSnapshot;
  const w = wanted.toLowerCase();
  if (!/^[0-9a-f]{1,64}$/.test(w)) throw new UsageError(`not a snapshot id: ${wanted}`);
  const found = chain.filter((s) => s.id.startsWith(w));
  const broken = damaged.find((d) => d.object.startsWith(PREFIX.snapshots + w));
  if (found.length === 0 && broken) throw new CorruptBackupError(broken.message, broken.object);
  // A snapshot a stored one names as previous existed: it was forgotten, or lost.
  const gone = chain.find((s) => s.snap.prev && toHex(s.snap.prev).startsWith(w));
  if (found.length === 0 && gone && gone.snap.prev)
    throw new MissingObjectError(PREFIX.snapshots + toHex(gone.snap.prev));
  if (found.length === 0) throw new NotFoundError(`no snapshot ${wanted}`, HINTS.noSuchSnapshot);
  if (found.length > 1) throw new UsageError(`snapshot prefix ${wanted} is ambiguous`);
  return found[0] as LoadedSnapshot;
}

async function isEmptyOrAbsent(
  fs: TargetFiles,
  target: string,
): Promise<'absent' | 'empty' | 'full' | 'not-a-directory'> {
  try {
    const st = await fs.lstat(target);
    if (st.kind !== 'dir') return 'not-a-directory';
    return (await fs.readdir(target)).length === 0 ? 'empty' : 'full';
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ENOENT') return 'absent';
    throw e;
  }
}

/** Whether directory `target` is on another file system than its parent (unknown: false). */
async function isMountPoint(fs: TargetFiles, target: string): Promise<boolean> {
  if (fs.path.dirname(target) === target) return false;
  // `target/..`, unnormalized: the folder that really holds it. Its path's parent may be a
  // symlink to another disk (`~/disk/chat`, `~/disk` -> `/mnt/disk`), whose lstat describes
  // the link, on the disk holding the link.
  const parent = `${target}${fs.path.sep}..`;
  const [t, p] = await Promise.all([fs.lstat(target), fs.lstat(parent)]);
  return t.dev !== undefined && p.dev !== undefined && t.dev !== p.dev;
}

/**
 * Restore a snapshot into `opts.target`. First cleans up what earlier restores to the same
 * target left when they were killed (see {@link recoverInterrupted}; reported in
 * `warnings`).
 * @throws TargetNotEmptyError when the target holds anything and `force` is not set.
 * @throws UsageError when the target is not a directory, or is a mount point.
 * @throws NotFoundError when the snapshot id matches nothing; UsageError when ambiguous.
 * @throws DiskFullError, ReadOnlyError, PermissionDeniedError when the target's disk is
 *   full, read-only, or refuses the path.
 * @throws WrongKeyError, CorruptBackupError, MissingObjectError, RollbackError,
 *   UnavailableError, NoRepositoryError — in every case the target is left untouched
 *   (apart from an old target put back by the cleanup above, before anything else).
 */
export async function restore(opts: RestoreOptions): Promise<RestoreResult> {
  try {
    return await restoreTo(opts);
  } catch (e) {
    throw localFailure(e, opts.target);
  }
}

/** Plain words for the system call that failed while writing the restore. */
const DOING: Readonly<Record<string, string>> = {
  open: 'could not create a file',
  write: 'could not write',
  mkdir: 'could not create a folder',
  rename: 'could not move into place',
  fsync: 'could not flush to disk',
  syncfs: 'could not flush to disk',
  utime: 'could not set a time',
  futime: 'could not set a time',
  chmod: 'could not set permissions',
  fchmod: 'could not set permissions',
  symlink: 'could not create a link',
  scandir: 'could not list a folder',
};

/**
 * The restore target's disk refusing a write, as the engine's own error with a stable code:
 * a full disk (ENOSPC, EDQUOT) is DISK_FULL, a read-only one (EROFS) READ_ONLY, a refused
 * path (EACCES, EPERM) PERMISSION_DENIED. They reached an app as Node's errors, and from
 * the worker threads as an Error without even a code (found by trying a full tmpfs).
 * Anything else, and every error of ours, is returned as it is.
 */
function localFailure(e: unknown, target: string): unknown {
  if (e instanceof BackvaultError || !(e instanceof Error)) return e;
  const err = e as { code?: unknown; syscall?: unknown; path?: unknown };
  const path = typeof err.path === 'string' ? err.path : target;
  const what =
    (typeof err.syscall === 'string' ? DOING[err.syscall] : undefined) ??
    'could not write the restore';
  switch (err.code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new DiskFullError(path, what, { cause: e });
    case 'EROFS':
      return new ReadOnlyError(path, what, { cause: e });
    case 'EACCES':
    case 'EPERM':
      return new PermissionDeniedError(path, what, { cause: e });
    default:
      return e;
  }
}

async function restoreTo(opts: RestoreOptions): Promise<RestoreResult> {
  const started = performance.now();
  requireRollbackChoice(opts);
  const files = filesFor(opts);
  const host = enginePlatform().host;
  // An empty string (an unset setting) would resolve to the current folder, and with
  // `force` the snapshot would be merged into it.
  if (typeof opts.target !== 'string' || opts.target === '')
    throw new UsageError('no restore target given (`target` is empty)');
  const target = files.out.path.resolve(opts.target);
  // Checked before the repository is read: a file where a directory should be (the target,
  // or a folder on its path) is the user's mistake, and a symlink is never followed (it
  // could point anywhere).
  let warnings: string[];
  let state: Awaited<ReturnType<typeof isEmptyOrAbsent>>;
  try {
    warnings = await recoverInterrupted(files.out, host, target);
    state = await isEmptyOrAbsent(files.out, target);
  } catch (e) {
    if (codeOf(e) !== 'ENOTDIR') throw e;
    throw new UsageError(
      `restore target's path goes through a file: ${target}`,
      HINTS.targetNotDirectory,
    );
  }
  if (state === 'not-a-directory') {
    throw new UsageError(`restore target is not a directory: ${target}`, HINTS.targetNotDirectory);
  }
  if (state === 'full' && !opts.force) throw new TargetNotEmptyError(target);
  if (state !== 'absent' && (await isMountPoint(files.out, target))) {
    // Found by trying: the last rename failed with EBUSY (an empty mount point), and a
    // forced merge with EXDEV after its journal was committed, so every later restore to
    // the target failed the same way rolling it forward. Refused before anything is written.
    throw new UsageError(`restore target is a mount point: ${target}`, HINTS.targetMountPoint);
  }
  const repo = await openRepository(opts);
  // The threads start while the snapshots and the index load: on the 1 GB bench chat each
  // takes ~40-70 ms, one after the other before. An error (the `workers` option) surfaces
  // where the restorer awaits it; a failure before that closes the threads.
  let starting: Promise<EnginePool> | undefined = startPool(opts.workers, repo.keys, {}, files);
  starting.catch(() => {});
  // A restore takes no lock (read-only credentials restore too), so a prune may replace
  // the packs it is reading. A blob that went missing while the index changed is that, not
  // damage: the restore starts again on the new index, for the snapshot it picked first.
  let wanted = opts.snapshotId;
  for (let attempt = 1; ; attempt++) {
    const pool = starting ?? startPool(opts.workers, repo.keys, {}, files);
    pool.catch(() => {});
    starting = undefined;
    let generation: string;
    let snap: LoadedSnapshot;
    let index: BlobIndex;
    const noted: string[] = [];
    try {
      const { chain, notes: chainNotes } = await loadChainNotes(repo);
      noted.push(...chainNoteWarnings(chainNotes));
      snap = pickSnapshot(chain, wanted, chainNotes.damaged);
      // A blob that a later backup stored again because its first pack was lost is read
      // from the pack that still exists.
      ({ index, generation } = await loadIndexSettled(repo, async () =>
        loadIndex(repo, undefined, {
          stored: await listPacks(repo.storage),
          lost: 'demote',
          // Salvage: a damaged index object costs nothing while the packs it lists are
          // intact (they are read by their headers). Without `partial` it stays CORRUPT, as
          // any damage a restore meets.
          skipDamaged: opts.partial === true,
        }),
      ));
      if (index.damagedIndexes.length > 0)
        noted.push(
          damagedIndexWarning(index.damagedIndexes, 'a prune or the next backup repairs it'),
        );
    } catch (e) {
      await pool.then(
        (p) => p.close(),
        () => {},
      );
      // A damaged index object: `partial` restores everything its intact packs hold.
      if (
        !opts.partial &&
        e instanceof CorruptBackupError &&
        e.object?.startsWith(PREFIX.index) === true
      )
        (e as { hint: string }).hint = `${e.hint} ${HINTS.partial}`;
      throw e;
    }
    wanted = snap.id;
    const changed = async (): Promise<boolean> =>
      attempt < READER_ATTEMPTS &&
      (await indexGeneration(repo).catch(() => generation)) !== generation;
    let placed: Awaited<ReturnType<typeof restoreSnapshot>>;
    try {
      placed = await restoreSnapshot(
        repo,
        index,
        snap.snap,
        opts,
        target,
        state,
        files,
        host,
        pool,
        changed,
      );
    } catch (e) {
      if (
        e instanceof RepositoryChangedError ||
        (e instanceof BackvaultError &&
          (e.code === 'MISSING_OBJECT' || e.code === 'CORRUPT') &&
          !opts.signal?.aborted &&
          (await changed()))
      )
        continue;
      throw e;
    }
    warnings.push(...noted);
    if (attempt > 1)
      warnings.push(
        `the repository changed while it was read (a prune replaced packs): the restore started again${attempt > 2 ? ` (${attempt - 1} times)` : ''}`,
      );
    return restored(placed, snap, warnings, started);
  }
}

/** The result of a restore that is in place. */
function restored(
  placed: Awaited<ReturnType<typeof restoreSnapshot>>,
  snap: LoadedSnapshot,
  warnings: string[],
  started: number,
): RestoreResult {
  const { run } = placed;
  for (const rel of placed.staleCompanions)
    warnings.push(
      `removed ${rel} from the target: it belonged to the database the snapshot replaced, and SQLite would have replayed it over the restored one`,
    );
  return {
    snapshotId: snap.id,
    seq: snap.snap.seq,
    files: run.files,
    dirs: run.dirs.length,
    bytes: run.bytes,
    kept: placed.kept,
    deleted: placed.deleted,
    replaced: placed.replaced,
    damaged: [...run.damaged].map(([path, reason]) => ({ path, reason })),
    warnings,
    seconds: (performance.now() - started) / 1000,
    workers: placed.workers,
  };
}
