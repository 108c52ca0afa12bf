/**
 * Pruning: remove packs and indexes that no snapshot needs, and repack packs that hold both
 * used and unused blobs.
 *
 * Crash-safe by ordering: (1) used blobs of partly used packs are copied (still sealed,
 * after verification) into new packs, durably; (2) one new index listing every used blob
 * at its final place is written, durably; (3) only then are the old indexes deleted, and
 * (4) then the packs no longer named by the new index. A crash before (3) leaves extra but
 * valid objects; after (3), packs not in any index, which the next prune deletes. At no
 * point does a snapshot name a blob that no durable index can find.
 *
 * Prune refuses to run on a repository whose chain or trees fail verification (it would
 * otherwise delete what it cannot see); a damaged index object is replaced (its packs are
 * read by their headers), and a pack holding a damaged data blob a snapshot uses is left
 * as it was (see the repack loop), and while a backup of the same repository
 * holds its lock (that backup's new packs are not yet indexed): see lock.ts. Before each
 * deletion it checks that its lock is still held (RepoLock.assertHeld), as forget does: a
 * prune stopped long enough for its lock to go stale (a suspended laptop) may wake up after
 * another device's backup cleared the lock and committed a snapshot that deduplicated
 * against blobs this prune had planned to free; deleting them then loses that snapshot's
 * data (test/backup/lock.test.ts).
 */
import { BackvaultError, throwIfAborted } from '../../errors.js';
import { ObjectKind, fromHex, packName, toHex, type IndexPack } from '../../format/index.js';
import type { Progress, PruneResult, RepoAccess } from '../api.js';
import { openBlob } from './blob-codec.js';
import { loadIndex, storeIndex } from './indexes.js';
import type { RepoLock } from './lock.js';
import { PackWriter } from './pack-writer.js';
import { readPackHeader, readSealedBlob } from './packs.js';
import { listPacks, type IndexedBlob, type Repo } from './repository.js';
import { loadChainNotes } from './snapshots.js';
import { walkTrees } from './tree-walk.js';

/** Temporary leftovers younger than this are not removed (a write may still be under way). */
const TEMP_MIN_AGE_MS = 60_000;

/**
 * {@link prune} for a caller that already holds the repository's exclusive lock (forget
 * with `--prune` runs it under its own lock, so no backup can slip in between).
 * @param lock the caller's exclusive lock: checked before every deletion.
 * @param started `performance.now()` at the start, for `seconds`.
 * @throws as {@link prune}; ConflictError when the lock was lost (before the next deletion).
 */
export async function pruneLocked(
  opts: RepoAccess & { onProgress?: (p: Progress) => void },
  repo: Repo,
  lock: RepoLock,
  started: number,
): Promise<PruneResult> {
  // Strict: a snapshot object that cannot be read must not lose its data to this prune.
  const { chain } = await loadChainNotes(repo, true);
  // Listed before the index is read: a blob a later backup stored again (its first pack was
  // lost) is then kept from its new pack, and the lost pack drops out of the new index.
  const sizes = await listPacks(repo.storage);
  // A damaged index object is skipped, its packs adopted by their authenticated headers:
  // the new index then lists every used blob, and the damaged object is deleted with the
  // old indexes. A used blob that no index and no pack header names still stops the prune
  // (the tree walk below: MISSING_OBJECT) before anything is deleted.
  const index = await loadIndex(repo, undefined, {
    stored: sizes,
    lost: 'demote',
    skipDamaged: true,
  });

  const used = new Set<string>();
  await walkTrees(
    repo,
    index,
    chain.map((s) => s.snap.rootTree),
    // Keyed by kind and id: a chunk and a tree with the same bytes are two blobs.
    (t) => used.add(`${ObjectKind.TREE_BLOB}:${t}`),
    (c) => used.add(`${ObjectKind.DATA_BLOB}:${c}`),
  );

  // Per pack: the used blobs whose canonical location (the one the index map chose) is here.
  const perPack = new Map<string, { total: number; used: IndexedBlob[] }>();
  for (const packId of index.packs) perPack.set(packId, { total: 0, used: [] });
  // Count every entry of every index, including duplicates the map dropped.
  const totals = new Map<string, number>();
  for (const [hex, at] of index.blobs) {
    const p = perPack.get(at.packId) as { total: number; used: IndexedBlob[] };
    if (used.has(`${at.entry.kind}:${hex}`)) p.used.push(at);
    totals.set(at.packId, (totals.get(at.packId) ?? 0) + 1);
  }

  const keep: IndexPack[] = [];
  const repack: { packId: string; used: IndexedBlob[] }[] = [];
  const signal = opts.signal;
  for (const [packId, p] of perPack) {
    throwIfAborted(signal);
    if (p.used.length === 0) continue;
    // Packs whose header lists more blobs than the index keeps are rewritten too, and so
    // are packs whose header is damaged (their blobs are verified one by one below).
    if (p.used.length === totals.get(packId) && sizes.has(packId)) {
      const headerCount = await countHeader(repo, packId, sizes.get(packId) as number);
      if (headerCount === p.used.length) {
        keep.push({
          packId: fromHex(packId),
          blobs: p.used.map((u) => u.entry),
        });
        continue;
      }
    }
    repack.push({ packId, used: p.used });
  }

  const writer = new PackWriter(repo.storage, repo.keys);
  let packsRepacked = 0;
  const damagedPacks: string[] = [];
  for (const { packId, used } of repack) {
    // Verify every used blob of the pack before copying any: never carry corrupt data into
    // a new pack. A pack with a used blob that fails (or that is gone) stays exactly as it
    // was, listed as before: refusing the whole prune freed nothing, for good (every later
    // prune met the same blob), while leaving the pack makes nothing worse — check and
    // restore --partial see the same damage (test/backup/salvage.test.ts). A pack holds at
    // most 128 MiB; what the blobs of one are held for is what the writer buffers anyway.
    const copies: { at: IndexedBlob; sealed: Uint8Array }[] = [];
    try {
      for (const at of used) {
        throwIfAborted(signal);
        const sealed = await readSealedBlob(repo, at);
        openBlob(repo.keys, at.entry, sealed, packName(at.packId));
        copies.push({ at, sealed });
      }
    } catch (e) {
      if (!(e instanceof BackvaultError && (e.code === 'CORRUPT' || e.code === 'MISSING_OBJECT')))
        throw e;
      keep.push({ packId: fromHex(packId), blobs: used.map((u) => u.entry) });
      damagedPacks.push(packName(packId));
      continue;
    }
    for (const { at, sealed } of copies) {
      await writer.add(at.entry.kind, {
        id: at.entry.id,
        compression: at.entry.compression,
        rawLength: at.entry.rawLength,
        sealed,
      });
    }
    packsRepacked += 1;
  }
  await writer.flush();
  const newPacks = [...keep, ...writer.packs];
  const keptIds = new Set(newPacks.map((p) => toHex(p.packId)));
  const deletePacks = [...sizes.keys()].filter((id) => !keptIds.has(id));

  let indexesDeleted = 0;
  let bytesFreed = 0;
  const nothingToDo =
    deletePacks.length === 0 &&
    packsRepacked === 0 &&
    index.indexNames.length <= 1 &&
    index.damagedIndexes.length === 0 &&
    index.adopted.length === 0;
  if (!nothingToDo) {
    const { name: newName } = await storeIndex(repo, newPacks);
    // Abort and the lock: checked before every deletion (a delete is still sent after an
    // abort, for a lock's removal). Stopping between any two steps is safe: see the module
    // comment. A lost lock means another holder may already rely on what we would delete.
    for (const name of [...index.indexNames, ...index.damagedIndexes]) {
      throwIfAborted(signal);
      if (name === newName) continue;
      await lock.assertHeld();
      await repo.storage.delete(name);
      indexesDeleted += 1;
    }
    for (const id of deletePacks) {
      throwIfAborted(signal);
      await lock.assertHeld();
      await repo.storage.delete(packName(id));
      bytesFreed += sizes.get(id) as number;
    }
  }
  // Leftovers of interrupted writes (temp files, unfinished uploads). Under the exclusive
  // lock no backup of this repository writes; the age margin spares a write of our own
  // (a lock refresh) and one of a process that lost its lock.
  // (A new holder's uploads in progress would be among them: the lock is checked first.)
  if (repo.storage.cleanupTemp) await lock.assertHeld();
  const tempRemoved = (await repo.storage.cleanupTemp?.(TEMP_MIN_AGE_MS)) ?? 0;
  opts.onProgress?.({ phase: 'prune', bytesDone: bytesFreed, filesDone: deletePacks.length });
  return {
    packsDeleted: nothingToDo ? 0 : deletePacks.length,
    indexesDeleted,
    bytesFreed,
    tempRemoved,
    packsRepacked,
    damagedPacks,
    seconds: (performance.now() - started) / 1000,
  };
}

async function countHeader(repo: Repo, packId: string, size: number): Promise<number> {
  try {
    return (await readPackHeader(repo, packName(packId), size)).entries.length;
  } catch (e) {
    // A damaged header: the pack is repacked, each blob verified on its own.
    if (e instanceof BackvaultError && e.code === 'CORRUPT') return -1;
    throw e;
  }
}
