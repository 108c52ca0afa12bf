/** `listSnapshots`: the verified snapshot chain, oldest first. */
import type { RepoAccess, SnapshotInfo } from '../api.js';
import { toHex } from '../../format/index.js';
import { UsageError } from '../../errors.js';
import {
  chainNoteWarnings,
  loadChainNotes,
  loadSnapshots,
  throwProblem,
  verifyChain,
  type LoadedSnapshot,
} from '../repository/snapshots.js';
import { acceptSeenHead, readSeenHead, type SeenHead } from '../repository/state.js';
import { openRepository } from '../repository/repository.js';

/**
 * List snapshots after verifying the chain (and, with a state file, that the store did not
 * roll back); remembers the head in the state file.
 * @throws WrongKeyError, NoRepositoryError, RollbackError, CorruptBackupError,
 *   MissingObjectError, UnavailableError.
 */
export async function listSnapshots(
  opts: RepoAccess & {
    /** Told about snapshots that are gone (forgotten or lost) or damaged; the rest list. */
    onWarning?: (message: string) => void;
  },
): Promise<SnapshotInfo[]> {
  const repo = await openRepository(opts);
  const { chain, notes } = await loadChainNotes(repo);
  for (const w of chainNoteWarnings(notes, { gaps: true })) opts.onWarning?.(w);
  return chain.map(snapshotInfo);
}

/** The public description of a verified snapshot. */
export function snapshotInfo(s: LoadedSnapshot): SnapshotInfo {
  return {
    id: s.id,
    seq: s.snap.seq,
    time: new Date(s.snap.timeMs).toISOString(),
    hostname: s.snap.hostname,
    files: s.snap.files,
    bytes: s.snap.bytes,
    prev: s.snap.prev ? toHex(s.snap.prev) : null,
    partial: s.snap.partial ?? false,
    skipped: s.snap.skipped ?? 0,
  };
}

/** What {@link acceptRollback} did. */
export interface AcceptRollbackResult {
  /** False when the device had already seen exactly this head. */
  changed: boolean;
  /** What the device had seen before, if anything. */
  seen: SeenHead | undefined;
  /** The store's latest snapshot, now the device's seen head. */
  head: SeenHead;
}

/**
 * Accept that the store's latest snapshot is older than one this device has seen (a
 * deliberate restore of the store from an older copy): after this, `RollbackError` no longer
 * fires for it. `pick` chooses, from the verified chain (oldest first), the snapshot the user
 * named; only the chain's latest snapshot can be accepted.
 * @throws UsageError when the picked snapshot is not the latest or the chain is empty;
 *   CorruptBackupError / MissingObjectError for a damaged or forked chain; WrongKeyError,
 *   NoRepositoryError, UnavailableError.
 */
export async function acceptRollback(
  opts: RepoAccess & { statePath: string; pick: (chain: SnapshotInfo[]) => SnapshotInfo },
): Promise<AcceptRollbackResult> {
  const repo = await openRepository({ ...opts, statePath: undefined, rollbackProtection: false });
  const { chain, problems } = verifyChain(await loadSnapshots(repo), undefined);
  // A damaged or forked chain is not a rollback to accept.
  throwProblem(problems);
  const last = chain[chain.length - 1];
  if (!last) throw new UsageError('the repository has no snapshots');
  const picked = opts.pick(chain.map(snapshotInfo));
  if (picked.id !== last.id) {
    throw new UsageError(
      `snapshot ${picked.id.slice(0, 8)} (seq ${picked.seq}) is not the store's latest; its latest is ${last.id.slice(0, 8)} (seq ${last.snap.seq})`,
      'Name the latest snapshot: only that can be accepted.',
    );
  }
  const seen = await readSeenHead(opts.statePath, repo.repoIdHex);
  const head = { seq: last.snap.seq, snapshot: last.id };
  if (seen && seen.seq === head.seq && seen.snapshot === head.snapshot) {
    return { changed: false, seen, head };
  }
  await acceptSeenHead(opts.statePath, repo.repoIdHex, head);
  return { changed: true, seen, head };
}
