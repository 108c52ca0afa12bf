/**
 * Reading from packs: one sealed blob by its index entry, a pack's sealed header, and a
 * tree blob (verified and decoded).
 */

import { CorruptBackupError, HINTS, MissingObjectError } from '../../errors.js';
import {
  ObjectKind,
  decodePackHeader,
  decodeTree,
  objectAd,
  packName,
  packTrailer,
  toHex,
  type BlobEntry,
  type TreeEntry,
} from '../../format/index.js';
import { openBlob } from './blob-codec.js';
import { type IndexedBlob } from './blob-index.js';
import { open } from './keys.js';

import { Repo } from './repository.js';

import { BlobIndex } from './indexes.js';

/**
 * Read one blob's sealed bytes from its pack.
 * @throws CorruptBackupError when the pack is shorter than the index says.
 * @throws MissingObjectError when the pack is gone.
 */
export async function readSealedBlob(repo: Repo, at: IndexedBlob): Promise<Uint8Array> {
  const name = packName(at.packId);
  const b = await repo.storage.getRange(name, at.entry.offset, at.entry.length);
  if (b.length !== at.entry.length) throw new CorruptBackupError('pack is truncated', name);
  return b;
}

/**
 * Read, verify and decode the tree blob `id`.
 * @throws MissingObjectError when the index does not know it or its pack is gone.
 * @throws CorruptBackupError on any verification failure.
 */
export async function readTree(repo: Repo, index: BlobIndex, id: Uint8Array): Promise<TreeEntry[]> {
  const hex = toHex(id);
  const at = index.blobs.get(hex, ObjectKind.TREE_BLOB);
  if (!at) {
    if (index.blobs.has(hex, ObjectKind.DATA_BLOB)) {
      // Written by backvault 0.1, which deduplicated by id alone: a file chunk with the
      // same bytes as this tree stood in for it. The tree was never stored as a tree.
      throw new MissingObjectError(`tree/${hex}`, HINTS.treeAsChunk);
    }
    throw new MissingObjectError(`blob/${hex}`);
  }
  const name = packName(at.packId);
  const plain = openBlob(repo.keys, at.entry, await readSealedBlob(repo, at), name);
  return decodeTree(plain, name);
}

/**
 * Read a pack's header (from the whole pack when given, else by ranges).
 * @throws CorruptBackupError / MissingObjectError / UnavailableError.
 */
export async function readPackHeader(
  repo: Repo,
  name: string,
  size: number,
  whole?: Uint8Array,
): Promise<{ entries: BlobEntry[]; bytesRead: number }> {
  let bytesRead = 0;
  const range = async (off: number, len: number): Promise<Uint8Array> => {
    if (whole) return whole.subarray(off, off + len);
    const b = await repo.storage.getRange(name, off, len);
    bytesRead += b.length;
    return b;
  };
  const { headerOffset, headerLength } = packTrailer(
    size,
    await range(Math.max(0, size - 4), 4),
    name,
  );
  const sealed = await range(headerOffset, headerLength);
  const plain = open(
    repo.keys.meta,
    objectAd(ObjectKind.PACK_HEADER, repo.keys.repoId),
    sealed,
    name,
  );
  return { entries: decodePackHeader(plain, headerOffset, name), bytesRead };
}
