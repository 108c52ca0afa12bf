/**
 * `check` with `repair`: the index forgets the blobs the check found damaged, so that the
 * next backup stores them again.
 *
 * Why it is needed: a backup deduplicates every chunk against the index. A blob whose bytes
 * the store altered (one flipped bit) stays in the index, so every later backup of the same
 * content refers to it again, and each new snapshot is damaged at that file while the backup
 * says it was saved. Blob ids depend on the content only (SPEC.md §6): once the index no
 * longer lists the damaged copy, the next backup that reads the same content stores it anew
 * under the same id, and every snapshot that used it, old ones included, restores again.
 * A backup also takes an unchanged file over from its parent without reading it only when
 * every chunk of it is in the index (backup.ts), so a dropped chunk makes it read the file.
 *
 * What it writes, under the exclusive lock (no backup or prune runs meanwhile): one new
 * index object listing every blob of the current indexes except those in damaged or lost
 * packs found by the check, then the old index objects are deleted (the lock checked before
 * each deletion). Stopping at any point leaves a valid repository: before the deletions the
 * old indexes still list everything (the union is what a reader sees); after, the damaged
 * blobs are simply unknown. The damaged pack itself is left in place: its intact blobs stay
 * listed, and a prune rewrites it without the damaged one once nothing uses that (SPEC.md
 * §14, "Repair"). Nothing in the store is ever deleted that a snapshot could still read.
 */
import { throwIfAborted } from '../../errors.js';
import { fromHex, type BlobEntry, type IndexPack } from '../../format/index.js';
import type { CheckRepair } from '../api.js';
import { loadIndex, storeIndex } from '../repository/indexes.js';
import { RepoLock } from '../repository/lock.js';
import { listPacks, type Repo } from '../repository/repository.js';

/**
 * Rewrite the index without the blobs the check found damaged: `badBlobs` holds
 * `packId/kind:id` of single blobs that failed verification, `badPacks` pack ids that are
 * gone or unreadable as a whole.
 * @throws ConflictError when a backup or prune holds the repository's lock (nothing is
 *   written then), or when the lock is lost before a deletion; UnavailableError.
 */
export async function repairIndex(
  repo: Repo,
  badBlobs: ReadonlySet<string>,
  badPacks: ReadonlySet<string>,
  signal?: AbortSignal,
): Promise<CheckRepair> {
  const lock = await RepoLock.acquire(repo, 'repair', true);
  try {
    // Read again under the lock: a backup may have added an index since the check read it.
    // Entries of lost packs are kept here (demoted behind any other copy) so that those of
    // `badPacks` are counted as they are dropped below.
    const index = await loadIndex(repo, undefined, {
      stored: await listPacks(repo.storage),
      lost: 'demote',
      skipDamaged: true,
    });
    const perPack = new Map<string, BlobEntry[]>();
    let blobsDropped = 0;
    const packsDropped = new Set<string>();
    for (const [hex, at] of index.blobs) {
      if (badPacks.has(at.packId)) {
        packsDropped.add(at.packId);
        blobsDropped += 1;
        continue;
      }
      if (badBlobs.has(`${at.packId}/${at.entry.kind}:${hex}`)) {
        blobsDropped += 1;
        continue;
      }
      const list = perPack.get(at.packId) ?? [];
      list.push(at.entry);
      perPack.set(at.packId, list);
    }
    const old = [...index.indexNames, ...index.damagedIndexes];
    if (blobsDropped === 0 && index.damagedIndexes.length === 0) {
      return { blobsDropped: 0, packsDropped: 0, indexesReplaced: 0 };
    }
    throwIfAborted(signal);
    const packs: IndexPack[] = [...perPack].map(([packId, blobs]) => ({
      packId: fromHex(packId),
      blobs,
    }));
    const { name } = await storeIndex(repo, packs);
    let indexesReplaced = 0;
    for (const o of old) {
      if (o === name) continue;
      await lock.assertHeld();
      await repo.storage.delete(o);
      indexesReplaced += 1;
    }
    return { blobsDropped, packsDropped: packsDropped.size, indexesReplaced };
  } finally {
    await lock.release();
  }
}
