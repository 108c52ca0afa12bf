/** Walking every tree reachable from a set of snapshots (check and prune). */
import { CorruptBackupError, MissingObjectError } from '../../errors.js';
import { EntryType, ObjectKind, packName, toHex } from '../../format/index.js';
import { readTree } from './packs.js';
import { type BlobIndex } from './indexes.js';
import { type Repo } from './repository.js';

/** Called for every file chunk id a tree names. */
export type ChunkVisitor = (idHex: string) => void;

/**
 * Visit every tree once (by id) below `roots`, verifying each; `onTree` and `onChunk` see
 * every tree and chunk id. Also checks that every named chunk is in the index and that
 * each file's chunk sizes add up to its size.
 * @param onError when given, a failing tree is reported and skipped instead of thrown; it
 *   also gets the position in `roots` of the root the tree was first reached from.
 * @throws MissingObjectError / CorruptBackupError when `onError` is not given.
 */
export async function walkTrees(
  repo: Repo,
  index: BlobIndex,
  roots: readonly Uint8Array[],
  onTree: (idHex: string) => void,
  onChunk: ChunkVisitor,
  onError?: (e: unknown, root: number) => void,
): Promise<void> {
  const seen = new Set<string>();
  // Walked from the first root on, so a problem is reported under the oldest snapshot.
  const stack = roots.map((id, root) => ({ id, root })).reverse();
  while (stack.length > 0) {
    const { id, root } = stack.pop() as { id: Uint8Array; root: number };
    const hex = toHex(id);
    if (seen.has(hex)) continue;
    seen.add(hex);
    onTree(hex);
    try {
      const entries = await readTree(repo, index, id);
      const treeObject = packName(
        (index.blobs.get(hex, ObjectKind.TREE_BLOB) as { packId: string }).packId,
      );
      for (const e of entries) {
        if (e.type === EntryType.DIR) stack.push({ id: e.subtree, root });
        else if (e.type === EntryType.FILE) {
          let sum = 0;
          for (const c of e.chunks) {
            const ch = toHex(c);
            onChunk(ch);
            const at = index.blobs.get(ch, ObjectKind.DATA_BLOB);
            if (!at) throw new MissingObjectError(`blob/${ch}`);
            sum += at.entry.rawLength;
          }
          if (sum !== e.size)
            throw new CorruptBackupError('file size does not match its chunks', treeObject);
        }
      }
    } catch (e) {
      if (onError) onError(e, root);
      else throw e;
    }
  }
}
