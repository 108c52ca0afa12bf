/** `listSnapshots`: the verified snapshot chain, oldest first. */
import type { RepoAccess, SnapshotInfo } from '../api.js';
import { toHex } from '../../format/index.js';
import { chainNoteWarnings, loadChainNotes, type LoadedSnapshot } from '../repository/snapshots.js';
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
