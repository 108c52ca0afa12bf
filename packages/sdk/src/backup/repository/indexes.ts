/**
 * The blob index: every index object read into one map (blob kind + id -> pack and
 * place), with lost packs dropped or demoted and orphan packs adopted (resume); and
 * writing a new index object.
 */

import { BackvaultError } from '../../errors.js';
import {
  BLOB_ENTRY_BYTES,
  ObjectKind,
  PREFIX,
  SEAL_OVERHEAD,
  decodeIndex,
  FORMAT_VERSION,
  encodePackHeader,
  objectAd,
  packName,
  toHex,
  type BlobEntry,
  type IndexPack,
} from '../../format/index.js';
import type { CheckProblem } from '../api.js';
import { BlobIndexBuilder, type CompactBlobMap } from './blob-index.js';
import { seal, sha256Hex } from './keys.js';

import { type Repo, forEachSealed, listAll, mapLimit } from './repository.js';

import { readPackHeader } from './packs.js';

/** The blob index of a repository: blob id (hex) to location. */
export interface BlobIndex {
  blobs: CompactBlobMap;
  /** Names of the index objects read. */
  indexNames: string[];
  /** Pack ids (hex) named by any index. */
  packs: Set<string>;
  /**
   * Pack ids (hex) named by an index but absent from the store or too short for the blobs
   * listed in them (only when `loadIndex` was given the stored packs).
   */
  lostPacks: string[];
  /** Packs no index named whose blobs were adopted (`adoptOrphans`), with their entries. */
  adopted: { packId: string; entries: BlobEntry[]; size: number }[];
  /**
   * Index objects that failed verification (or vanished while listed) and were skipped
   * (`onProblem` given, or `skipDamaged`).
   */
  damagedIndexes: string[];
}

/** How `loadIndex` treats entries of lost packs (see {@link loadIndex}). */
export interface PackPresence {
  /** Every stored pack: id (hex) -> size, from one listing of `data/`. */
  stored: ReadonlyMap<string, number>;
  /**
   * `drop`: leave their entries out (a backup must not deduplicate against them);
   * `demote`: use them only for blobs no healthy pack holds (restore, prune: a blob stored
   * again by a later backup is read from its new pack; otherwise the error stays what it
   * was, MISSING_OBJECT or CORRUPT).
   */
  lost: 'drop' | 'demote';
  /**
   * Adopt stored packs that no index names (a backup interrupted before its index: a
   * Ctrl-C, a kill -9, a lost network): their headers are read and authenticated and their
   * blobs join the map, so a backup resumes instead of uploading them again. It must list
   * them in its own index (see `adopted`). Only for a holder of the exclusive lock: no
   * other backup's packs-in-progress can be among them.
   */
  adoptOrphans?: boolean;
  /**
   * Skip an index object that fails verification (a flipped bit in the store) instead of
   * throwing, name it in `damagedIndexes`, and adopt the packs no other index names, as
   * `adoptOrphans` does: every pack names its blobs in its own authenticated header, so a
   * damaged index costs nothing while its packs are intact (a pack whose header is damaged
   * too stays unknown: what needs it is MISSING_OBJECT). Each blob read is still verified.
   */
  skipDamaged?: boolean;
}

/**
 * Smallest size of a pack holding a blob that ends at `extent`: the sealed header (with at
 * least one entry) and the 4-byte trailer follow the last blob.
 */
const PACK_TAIL_MIN = SEAL_OVERHEAD + 5 + BLOB_ENTRY_BYTES + 4;

/**
 * Load every index object into one map.
 * @param onProblem when given, a bad index object is reported and skipped instead of thrown.
 * @param presence when given, entries of packs that are absent or too short are dropped or
 *   demoted (see {@link PackPresence}) and the packs reported in `lostPacks`.
 * @throws CorruptBackupError / MissingObjectError / UnavailableError.
 */
export async function loadIndex(
  repo: Repo,
  onProblem?: (p: CheckProblem) => void,
  presence?: PackPresence,
): Promise<BlobIndex> {
  const builder = new BlobIndexBuilder();
  const indexNames: string[] = [];
  const packSet = new Set<string>();
  const damagedIndexes: string[] = [];
  const report =
    onProblem || presence?.skipDamaged
      ? (p: CheckProblem): void => {
          damagedIndexes.push(p.object);
          onProblem?.(p);
        }
      : undefined;
  await forEachSealed(repo, PREFIX.index, ObjectKind.INDEX, report, (name, plain) => {
    const packs = decodeIndex(plain, name);
    indexNames.push(name);
    for (const p of packs) {
      const packId = toHex(p.packId);
      packSet.add(packId);
      for (const entry of p.blobs) builder.add(packId, entry);
    }
  });
  const adopted: BlobIndex['adopted'] = [];
  if (presence?.adoptOrphans || (presence?.skipDamaged && damagedIndexes.length > 0)) {
    const orphans = [...presence.stored].filter(([id]) => !packSet.has(id));
    await mapLimit(orphans, 8, async ([packId, size]) => {
      try {
        const { entries } = await readPackHeader(repo, packName(packId), size);
        adopted.push({ packId, entries, size });
      } catch (e) {
        // A pack whose header does not authenticate is not used; check reports it, and
        // prune removes it like any pack no index names.
        if (e instanceof BackvaultError && (e.code === 'CORRUPT' || e.code === 'MISSING_OBJECT'))
          return;
        throw e;
      }
    });
    for (const a of adopted) {
      packSet.add(a.packId);
      for (const entry of a.entries) builder.add(a.packId, entry);
    }
  }
  const lostPacks: string[] = [];
  if (presence) {
    for (const [packId, extent] of builder.packExtents()) {
      const size = presence.stored.get(packId);
      if (size === undefined || size < extent + PACK_TAIL_MIN) lostPacks.push(packId);
    }
  }
  const lost = new Set(lostPacks);
  const blobs = builder.finish(
    presence?.lost === 'drop' ? { drop: lost } : presence ? { demote: lost } : {},
  );
  return { blobs, indexNames, packs: packSet, lostPacks, adopted, damagedIndexes };
}

/**
 * A pack's index record with its blob entries already encoded (PackMessage.index): u32
 * count, then BLOB_ENTRY_BYTES per blob, exactly as encodeIndex writes them after the pack
 * id. A backup keeps these, not BlobEntry objects, until it writes its index.
 */
export interface EncodedIndexPack {
  packId: Uint8Array;
  index: Uint8Array;
}

/**
 * The plaintext of an index object: the same bytes as format's encodeIndex, from packs given
 * either way (a pack header's entries encode like an index's: encodePackHeader without its
 * version byte).
 */
export function encodeIndexRecords(packs: readonly (IndexPack | EncodedIndexPack)[]): Uint8Array {
  const records = packs.map((p) => ({
    packId: p.packId,
    index: 'index' in p ? p.index : encodePackHeader(p.blobs).subarray(1),
  }));
  let size = 5;
  for (const r of records) size += r.packId.length + r.index.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = FORMAT_VERSION;
  view.setUint32(1, records.length, true);
  let at = 5;
  for (const r of records) {
    out.set(r.packId, at);
    out.set(r.index, at + r.packId.length);
    at += r.packId.length + r.index.length;
  }
  return out;
}

/**
 * Seal and store a new index object listing `packs` (their blobs at their places). Only
 * durable packs may be listed: the index is what makes their blobs reachable.
 * @returns the object's name and stored size.
 * @throws UnavailableError from the store.
 */
export async function storeIndex(
  repo: Repo,
  packs: readonly (IndexPack | EncodedIndexPack)[],
): Promise<{ name: string; size: number }> {
  const sealed = seal(
    repo.keys.meta,
    objectAd(ObjectKind.INDEX, repo.keys.repoId),
    encodeIndexRecords(packs),
  );
  const name = PREFIX.index + sha256Hex(sealed);
  await repo.storage.put(name, sealed);
  return { name, size: sealed.length };
}

/** The warning for index objects `loadIndex` skipped as damaged (`skipDamaged`). */
export function damagedIndexWarning(names: readonly string[], repaired: string): string {
  return `${names.length === 1 ? 'an index object is' : `${names.length} index objects are`} damaged (${names.join(', ')}): the packs only ${names.length === 1 ? 'it lists' : 'they list'} were read by their own headers instead; ${repaired}`;
}

/**
 * The names of the index objects, sorted and joined: what a reader compares before and
 * after it met a missing pack. A prune writes its new index and deletes the old ones before
 * it deletes a pack, so a pack that went missing under a reader because a prune replaced it
 * always comes with a changed listing; damage does not.
 * @throws UnavailableError from the store.
 */
export async function indexGeneration(repo: Pick<Repo, 'storage'>): Promise<string> {
  return (await listAll(repo.storage, PREFIX.index))
    .map((o) => o.name)
    .sort()
    .join('\n');
}

/**
 * How often a restore or a check starts again when the repository changed under it (a
 * prune replaced what it was reading): a prune running again and again beside a reader
 * is not waited out for ever.
 */
export const READER_ATTEMPTS = 3;

/**
 * `load` (a {@link loadIndex} call), again when an index object vanished between the
 * listing and its read while the listing changed: a prune replaced it.
 * @returns the index and the {@link indexGeneration} it was loaded from.
 */
export async function loadIndexSettled(
  repo: Pick<Repo, 'storage'>,
  load: () => Promise<BlobIndex>,
): Promise<{ index: BlobIndex; generation: string }> {
  for (let attempt = 1; ; attempt++) {
    const generation = await indexGeneration(repo);
    try {
      return { index: await load(), generation };
    } catch (e) {
      if (
        attempt >= READER_ATTEMPTS ||
        !(e instanceof BackvaultError && e.code === 'MISSING_OBJECT') ||
        (await indexGeneration(repo).catch(() => generation)) === generation
      )
        throw e;
    }
  }
}
